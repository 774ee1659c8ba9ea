package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

const pingUsage = `
Usage: distribute ping [flags] NODE...

Starts a short-lived hidden node, pings every NODE (alive@host) at once like
net_adm:ping, and prints one line per NODE, in argument order:
  NODE pong
  NODE pang REASON
REASON is node_not_found, connect_timeout, auth_failed, network_error or
ignored (the connection failed), denied (the node answered but not yes),
timeout (no answer in time) or error, followed by ": " and the detail.

The node is named --name, else distribute-<random hex>. A name given without
@host gets this machine's short host (like erl -sname) or, when the NODEs use
long names (a host with a dot, or an IP), a long host: 127.0.0.1 if every
NODE is on a loopback IP, else the fully qualified host name (127.0.0.1 if
none is known). The NODEs must all use short names or all long names.

Exit status: 0 if every NODE answered pong, 1 otherwise, 2 for a usage error.
`

func cmdPing(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("ping", pingUsage, stdout, stderr)
	var nf nodeFlags
	nf.register(c.fs, "this node's `NAME`: alive@host, or alive alone (default distribute-<random hex>)")
	n, targets, log, code, done := c.startForTargets(ctx, &nf, args)
	if done {
		return code
	}
	defer func() { _ = n.Stop() }()
	ctx, cancel := context.WithTimeout(ctx, nf.timeout)
	defer cancel()

	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			rtt, err := n.PingRTT(ctx, t)
			errs[i] = err
			log.Debug("ping", "node", t, "rtt", rtt, "err", err)
		})
	}
	wg.Wait()

	code = exitOK
	for i, t := range targets {
		if errs[i] == nil {
			fmt.Fprintf(stdout, "%s pong\n", t)
			continue
		}
		code = exitFail
		fmt.Fprintf(stdout, "%s pang %s\n", t, reason(errs[i]))
	}
	return code
}

// reason turns a ping or connect error into "KIND: detail" on one line.
func reason(err error) string {
	var kind, detail string
	var ce *node.ConnectError
	switch {
	case errors.As(err, &ce):
		kind, detail = ce.Kind.String(), ce.Detail
	case errors.Is(err, process.ErrPang):
		kind, detail = "denied", err.Error()
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		kind, detail = "timeout", err.Error()
	default:
		kind, detail = "error", err.Error()
	}
	if detail == "" {
		return kind
	}
	return kind + ": " + strings.Join(strings.Fields(detail), " ")
}
