package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

const pingUsage = `
Usage: distribute ping [--json] [flags] NODE...

Starts a short-lived hidden node, pings every NODE (alive@host) at once like
net_adm:ping, and prints one line per NODE, in argument order:
  NODE pong RTT
  NODE pang REASON
RTT is the round trip of the ping in milliseconds (e.g. 0.412ms; the
connection setup is not counted). REASON is no_epmd (nothing answers on the
EPMD port of the NODE's host), node_not_found, connect_timeout, auth_failed,
network_error or ignored (the connection failed), denied (the node answered
but not yes), timeout (no answer in time), interrupted (SIGINT or SIGTERM
came first) or error, followed by ": " and the detail. With --json it prints
one JSON array instead, in argument order:
  [{"node": "...", "pong": true, "rtt_seconds": 0.000412},
   {"node": "...", "pong": false, "reason": "node_not_found", "error": "..."}]

The node only dials out: it looks the NODEs up at the EPMD on their hosts
(--epmd-port) but registers with no EPMD and never starts one, and it
listens on loopback only. It is named --name or --sname, else
distribute-<random hex> in the NODEs' style: a short name (this machine's
host up to its first dot) for short NODE names, a long name for long ones (a
host with a dot, or an IP): 127.0.0.1 if every NODE is on a loopback IP,
else the fully qualified host name. The NODEs must all use short names or
all long names, and a --name/--sname of the other style is a usage error:
short-name and long-name nodes cannot reach each other.
--timeout bounds each step (EPMD check, connect, ping) for each NODE.

Exit status: 0 if every NODE answered pong, 1 otherwise, 2 for a usage error,
130 or 143 after SIGINT or SIGTERM (the lines are printed all the same).
`

// pingResult is one line of ping's output (and its --json element).
type pingResult struct {
	Node       string  `json:"node"`
	Pong       bool    `json:"pong"`
	RTTSeconds float64 `json:"rtt_seconds,omitempty"`
	Reason     string  `json:"reason,omitempty"`
	Error      string  `json:"error,omitempty"`
}

func cmdPing(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("ping", pingUsage, stdout, stderr)
	var cf clientFlags
	cf.register(c.fs, "distribute-<random hex>")
	asJSON := c.fs.Bool("json", false, "print a JSON array instead of lines")
	n, targets, log, code, done := c.startClient(ctx, &cf, args)
	if done {
		return code
	}
	defer func() { _ = n.Stop() }()

	res := make([]pingResult, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			rtt, err := reachOne(ctx, n, t, time.Duration(cf.timeout))
			log.Debug("ping", "node", t, "rtt", rtt, "err", err)
			res[i] = pingResult{Node: t, Pong: err == nil}
			if err == nil {
				res[i].RTTSeconds = rtt.Seconds()
				return
			}
			if ctx.Err() != nil {
				err = fmt.Errorf("%w: %w", errInterrupted, err)
			}
			res[i].Reason, res[i].Error = reasonParts(err)
		})
	}
	wg.Wait()

	code = exitOK
	for _, r := range res {
		if !r.Pong {
			code = exitFail
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return c.fail(err)
		}
		return code
	}
	for _, r := range res {
		if r.Pong {
			fmt.Fprintf(stdout, "%s pong %s\n", r.Node, formatRTT(r.RTTSeconds))
			continue
		}
		line := r.Reason
		if r.Error != "" {
			line += ": " + r.Error
		}
		fmt.Fprintf(stdout, "%s pang %s\n", r.Node, line)
	}
	return code
}

// errInterrupted marks a step that a signal cut short.
var errInterrupted = errors.New("interrupted by a signal")

// reason turns a ping or connect error into "KIND: detail" on one line.
func reason(err error) string {
	kind, detail := reasonParts(err)
	if detail == "" {
		return kind
	}
	return kind + ": " + detail
}

// reasonParts returns the KIND and the one-line detail of reason.
func reasonParts(err error) (kind, detail string) {
	var ce *node.ConnectError
	var ne *noEPMDError
	switch {
	case errors.Is(err, errInterrupted):
		kind, detail = "interrupted", ""
	case errors.As(err, &ne):
		kind, detail = "no_epmd", ne.Error()
	case errors.As(err, &ce):
		kind, detail = ce.Kind.String(), ce.Detail
	case errors.Is(err, process.ErrPang):
		kind, detail = "denied", err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		kind, detail = "timeout", err.Error()
	default:
		kind, detail = "error", err.Error()
	}
	return kind, strings.Join(strings.Fields(detail), " ")
}
