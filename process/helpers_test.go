package process_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

const testCookie = "processtestcookie"

// wait is how long a test waits for one event from a peer; generous, for a loaded machine.
const wait = 20 * time.Second

// startGo starts a Go node with processes on the EPMD at epmdPort, stopped when the test ends.
func startGo(t testing.TB, epmdPort int, opts *process.Options) *process.Node {
	t.Helper()
	var o process.Options
	if opts != nil {
		o = *opts
	}
	o.Node.EPMDPort = epmdPort
	if o.Node.ListenAddr == "" {
		o.Node.ListenAddr = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	n, err := process.Start(ctx, erltest.UniqueName("go")+"@localhost", testCookie, &o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// recv waits for one message matching match (nil: any).
func recv(t *testing.T, p *process.Process, match func(etf.Term) bool) etf.Term {
	t.Helper()
	m, err := p.ReceiveMatch(ctxFor(t, wait), match)
	require.NoError(t, err)
	return m
}

// tagged matches a tuple whose first element is the atom tag.
func tagged(tag string) func(etf.Term) bool {
	return func(m etf.Term) bool {
		tt, ok := m.(etf.Tuple)
		return ok && len(tt) > 0 && tt[0] == etf.Atom(tag)
	}
}

func tuple(t etf.Term) etf.Tuple { tt, _ := t.(etf.Tuple); return tt }

// waitDone waits for p to exit and returns its reason.
func waitDone(t *testing.T, p *process.Process) etf.Term {
	t.Helper()
	select {
	case <-p.Done():
		return p.Reason()
	case <-time.After(wait):
		t.Fatalf("process %v did not exit within %v", p.Pid(), wait)
		return nil
	}
}

// peerEnv is a Go node and a real erl node, connected: inbox is a Go process registered as inbox;
// shell is the pid of the erl process that runs Eval (the same process for every Eval), so what
// Go sends to shell a later Eval can receive.
type peerEnv struct {
	g     *process.Node
	erl   *erltest.Process
	rt    *erltest.Runtime
	port  int
	inbox *process.Process
	shell etf.Pid
}

// setup starts a Go node (opts may be nil) and an erl node in rt (erlOpts sets TickTime, Extra),
// connects them and learns the erl shell's pid.
func setup(t *testing.T, rt *erltest.Runtime, opts *process.Options, erlOpts erltest.ErlOptions) *peerEnv {
	t.Helper()
	port := erltest.FreePort(t)
	erltest.StartEPMD(t, port)
	g := startGo(t, port, opts)
	inbox := g.Spawn()
	require.NoError(t, inbox.Register("inbox"))
	erlOpts.Runtime, erlOpts.EPMDPort, erlOpts.Cookie, erlOpts.Control = rt, port, testCookie, true
	erl := erltest.StartErl(t, erlOpts)
	e := &peerEnv{g: g, erl: erl, rt: rt, port: port, inbox: inbox}
	e.eval(t, `{inbox, %s} ! {shell, self()}, ok`, e.goNode())
	e.shell = tuple(recv(t, inbox, tagged("shell")))[1].(etf.Pid)
	return e
}

// goNode is the Go node's name as an Erlang atom literal.
func (e *peerEnv) goNode() string { return "'" + e.g.Self() + "'" }

// eval runs an expression (a format with args) on the erl node and returns its printed value.
func (e *peerEnv) eval(t *testing.T, format string, args ...any) string {
	t.Helper()
	expr := fmt.Sprintf(format, args...)
	out, err := e.erl.Eval(expr, 2*wait)
	require.NoError(t, err, "eval %s\n%s", expr, e.erl.Output())
	return out
}

// give stores v in the erl shell's process dictionary under key (get(key) in later Evals).
func (e *peerEnv) give(t *testing.T, key string, v etf.Term) {
	t.Helper()
	require.NoError(t, e.g.Send(e.shell, etf.Tuple{etf.Atom("give"), etf.Atom(key), v}))
	e.eval(t, `receive {give, %s, V} -> put(%s, V), ok after 20000 -> timeout end`, key, key)
}

// erlPid has the erl node spawn a process running body (an Erlang fun body) and returns its pid;
// the pid is also stored as get(key) in the shell.
func (e *peerEnv) erlPid(t *testing.T, key, body string) etf.Pid {
	t.Helper()
	e.eval(t, `P = spawn(fun() -> %s end), put(%s, P), {inbox, %s} ! {pid, %s, P}, ok`, body, key, e.goNode(), key)
	m := tuple(recv(t, e.inbox, func(m etf.Term) bool {
		tt := tuple(m)
		return len(tt) == 3 && tt[0] == etf.Atom("pid") && tt[1] == etf.Atom(key)
	}))
	return m[2].(etf.Pid)
}

// nodeTick is link-layer options with a net_ticktime of secs seconds.
func nodeTick(secs int) node.Options {
	return node.Options{TickTime: time.Duration(secs) * time.Second}
}

// nodeOpts is link-layer options for a node on the EPMD at port, on loopback.
func nodeOpts(port int) node.Options { return node.Options{EPMDPort: port, ListenAddr: "127.0.0.1"} }
