package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/distribute-go/distribute/health"
	"github.com/distribute-go/distribute/process"
)

const healthUsage = `
Usage: distribute health [--json] [flags] NODE...

Starts a short-lived hidden node, connects to every NODE (alive@host) and
pings it, all NODEs at once, and prints the cluster health: a header line
with this node and the counts, then a table with the columns NODE, STATUS,
RTT, ERROR; or, with --json, a ClusterHealth object of the health package:
  {"self_node": "...", "is_distributed": true,
   "connected_nodes": [...], "connected_count": N,
   "reachable_nodes": [...], "unreachable_nodes": [...],
   "details": [{"node": "...", "reachable": true, "rtt_seconds": 0.0004,
                "error": "only when unreachable"}, ...]}
Every NODE is in reachable_nodes or in unreachable_nodes, and in details
(with the reason when unreachable); connected_nodes and connected_count list
the NODEs that could be connected. Lists are sorted; details by node.
--timeout bounds each step (EPMD check, connect, ping) for each NODE.
On SIGINT or SIGTERM it stops waiting and prints what it has: the NODEs not
done yet are unreachable with the error "interrupted".

The node only dials out and is named as for distribute ping.

Exit status: 0 if every NODE is reachable, 1 otherwise, 2 for a usage error,
130 or 143 after SIGINT or SIGTERM.
`

func cmdHealth(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("health", healthUsage, stdout, stderr)
	var cf clientFlags
	cf.register(c.fs, "distribute-<random hex>")
	asJSON := c.fs.Bool("json", false, "print the ClusterHealth as JSON instead of a table")
	n, targets, log, code, done := c.startClient(ctx, &cf, args)
	if done {
		return code
	}
	defer func() { _ = n.Stop() }()

	h := checkTargets(ctx, n, targets, time.Duration(cf.timeout), log)
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(h); err != nil {
			return c.fail(err)
		}
	} else {
		printHealthTable(stdout, h)
	}
	if len(h.UnreachableNodes) > 0 {
		return exitFail
	}
	return exitOK
}

// checkTargets connects to and pings every target at once (reachOne) and
// returns the health of the targets. When ctx ends (a signal), the
// targets not done are unreachable with the error "interrupted".
func checkTargets(ctx context.Context, n *process.Node, targets []string, timeout time.Duration, log *slog.Logger) *health.ClusterHealth {
	targets = slices.Compact(slices.Sorted(slices.Values(targets)))
	h := &health.ClusterHealth{
		SelfNode:         n.Self(),
		IsDistributed:    n.IsDistributed(),
		ConnectedNodes:   []string{},
		ReachableNodes:   []string{},
		UnreachableNodes: []string{},
		Details:          make([]health.NodeStatus, len(targets)),
	}
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			rtt, err := reachOne(ctx, n, t, timeout)
			log.Debug("checked", "node", t, "rtt", rtt, "err", err)
			switch {
			case err == nil:
				h.Details[i] = health.NodeStatus{Node: t, Reachable: true, RTTSeconds: max(rtt.Seconds(), 1e-9)}
			case ctx.Err() != nil:
				h.Details[i] = health.NodeStatus{Node: t, Error: "interrupted"}
			default:
				h.Details[i] = health.NodeStatus{Node: t, Error: reason(err)}
			}
		})
	}
	wg.Wait()
	connected := n.Nodes()
	for _, d := range h.Details {
		if slices.Contains(connected, d.Node) {
			h.ConnectedNodes = append(h.ConnectedNodes, d.Node)
		}
		if d.Reachable {
			h.ReachableNodes = append(h.ReachableNodes, d.Node)
		} else {
			h.UnreachableNodes = append(h.UnreachableNodes, d.Node)
		}
	}
	h.ConnectedCount = len(h.ConnectedNodes)
	return h
}

func printHealthTable(w io.Writer, h *health.ClusterHealth) {
	state := "distributed"
	if !h.IsDistributed {
		state = "not distributed"
	}
	fmt.Fprintf(w, "self %s (%s): %d connected, %d reachable, %d unreachable\n",
		h.SelfNode, state, h.ConnectedCount, len(h.ReachableNodes), len(h.UnreachableNodes))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATUS\tRTT\tERROR")
	for _, d := range h.Details {
		status, rtt, msg := "reachable", formatRTT(d.RTTSeconds), "-"
		if !d.Reachable {
			status, rtt, msg = "unreachable", "-", strings.Join(strings.Fields(d.Error), " ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", d.Node, status, rtt, msg)
	}
	_ = tw.Flush()
}

// formatRTT prints seconds as milliseconds with three decimals.
func formatRTT(s float64) string {
	return strconv.FormatFloat(s*1000, 'f', 3, 64) + "ms"
}
