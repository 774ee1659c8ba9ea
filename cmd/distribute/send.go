package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/global"
	"github.com/distribute-go/distribute/process"
)

const sendUsage = `
Usage: distribute send [--global] [flags] NODE NAME TERM

Sends TERM to the process registered as NAME on NODE, like
{NAME, NODE} ! TERM, from a short-lived hidden node, and exits 0 once NODE
has received it. TERM is one Erlang term in Erlang syntax (a final "." is
optional), for example:
  distribute send app@host inbox '{hello, <<"x">>, [1,2,3], #{k => v}}'
Pids, references, ports and funs cannot be written as text.

With --global, NAME is a global name (global:register_name/2): it is looked
up on NODE (global:whereis_name, by rpc) and the message goes to the process
that holds it, on whichever node that is, like global:send(NAME, TERM). A
name nobody holds is a failure (exit 1), as global:send raises.

"Received" means: the message went out on the connection, and the node it
went to then answered a ping sent after it on the same connection, so that
node has taken the message in. As with Erlang's !, a NAME that nothing is registered under on
NODE drops the message without an error.

The node only dials out (no EPMD registration; see distribute ping --help
for how it is named). --timeout bounds each step (EPMD check, connect,
confirmation).

Exit status: 0 when NODE received the message, 1 when it could not be sent
or confirmed, 2 for a usage error (a TERM that does not parse is one: the
message points at its line and column), 130 or 143 after SIGINT or SIGTERM.
`

func cmdSend(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("send", sendUsage, stdout, stderr)
	var cf clientFlags
	cf.register(c.fs, "distribute-<random hex>")
	asGlobal := c.fs.Bool("global", false, "NAME is a global name, looked up on NODE (global:send)")
	pos, code, done := c.parse(args)
	if done {
		return code
	}
	if len(pos) != 3 {
		return c.usageFail(fmt.Errorf("want NODE NAME TERM, got %d arguments", len(pos)))
	}
	target, name, text := pos[0], pos[1], pos[2]
	if err := validAtom(name); err != nil {
		return c.usageFail(fmt.Errorf("NAME %q: %v", name, err))
	}
	msg, err := etf.Parse(text)
	if err != nil {
		return c.usageFail(termError("TERM", text, err))
	}
	n, log, code, done := c.startClientFor(ctx, &cf, []string{target})
	if done {
		return code
	}
	defer func() { _ = n.Stop() }()
	timeout := time.Duration(cf.timeout)
	if err := connectOne(ctx, n, target, timeout); err != nil {
		return c.fail(fmt.Errorf("send to %s: %s", target, reason(err)))
	}
	via := target // the node the message goes to
	if *asGlobal {
		gctx, cancel := context.WithTimeout(ctx, timeout)
		pid, err := global.SendOn(gctx, n, target, etf.Atom(name), msg)
		cancel()
		if err != nil {
			return c.fail(fmt.Errorf("send to the global name %s: %v", name, err))
		}
		via = string(pid.Node)
	} else if err := n.Send(process.Name{Name: etf.Atom(name), Node: target}, msg); err != nil {
		return c.fail(fmt.Errorf("send to %s: %s", target, reason(err)))
	}
	// A round trip after the message proves the peer took it in: frames on a connection are
	// handled in order. Any answer will do (ergo, for one, answers the ping with nil).
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := n.PingRTT(pctx, via); err != nil && !errors.Is(err, process.ErrPang) {
		return c.fail(fmt.Errorf("send to %s: the message was queued but not confirmed: %s", via, reason(err)))
	}
	log.Debug("sent", "node", target, "name", name)
	return exitOK
}

// validAtom checks that s can be an atom (a registered name).
func validAtom(s string) error {
	switch {
	case s == "":
		return errors.New("empty name")
	case len([]rune(s)) > 255:
		return errors.New("longer than 255 characters")
	}
	return nil
}

// termError turns a parse error of a term given on the command line into a message that
// shows the text and points at the column.
func termError(what, text string, err error) error {
	var se *etf.SyntaxError
	if !errors.As(err, &se) {
		return fmt.Errorf("%s does not parse: %v", what, err)
	}
	lines := strings.Split(text, "\n")
	line := ""
	if se.Line >= 1 && se.Line <= len(lines) {
		line = lines[se.Line-1]
	}
	col := max(se.Column, 1)
	caret := strings.Repeat(" ", min(col-1, len([]rune(line)))) + "^"
	return fmt.Errorf("%s does not parse: line %d, column %d: %s\n  %s\n  %s", what, se.Line, se.Column, se.Msg, line, caret)
}

// connectOne connects n to target, after checking that target's host has an EPMD, bounded by
// timeout per step.
func connectOne(ctx context.Context, n *process.Node, target string, timeout time.Duration) error {
	_, host, _ := strings.Cut(target, "@")
	pctx, cancel := context.WithTimeout(ctx, timeout)
	err := probeEPMD(pctx, host, n.EPMDPort())
	cancel()
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return n.Connect(cctx, target)
}
