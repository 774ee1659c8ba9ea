package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
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

Starts a short-lived hidden node, connects to every NODE (alive@host) at once,
then pings every connected node at once (health.Check) and prints the cluster
health: a header line with this node and the counts, then a table with the
columns NODE, STATUS, RTT, ERROR; or, with --json, the ClusterHealth object:
  {"self_node": "...", "is_distributed": true,
   "connected_nodes": [...], "connected_count": N,
   "reachable_nodes": [...], "unreachable_nodes": [...],
   "details": [{"node": "...", "reachable": true, "rtt_seconds": 0.0004,
                "error": "only when unreachable"}, ...]}
A NODE that cannot be connected is listed in unreachable_nodes and in details
with the reason; connected_nodes and connected_count then list only the nodes
that were connected. Lists are sorted; details are sorted by node.
--timeout bounds the connect phase and the ping phase, each.

Naming of this node: as for distribute ping.

Exit status: 0 if every NODE is reachable, 1 otherwise, 2 for a usage error.
`

func cmdHealth(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("health", healthUsage, stdout, stderr)
	var nf nodeFlags
	nf.register(c.fs, "this node's `NAME`: alive@host, or alive alone (default distribute-<random hex>)")
	asJSON := c.fs.Bool("json", false, "print the ClusterHealth as JSON instead of a table")
	n, targets, _, code, done := c.startForTargets(ctx, &nf, args)
	if done {
		return code
	}
	defer func() { _ = n.Stop() }()

	h, err := clusterHealth(ctx, n, targets, nf.timeout)
	if err != nil {
		return c.fail(err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(h); err != nil {
			return c.fail(err)
		}
	} else {
		printHealthTable(stdout, h)
	}
	for _, t := range targets {
		if !slices.Contains(h.ReachableNodes, t) {
			return exitFail
		}
	}
	return exitOK
}

// clusterHealth connects n to every target concurrently (bounded by
// timeout), runs health.Check (bounded by timeout again) and adds the
// targets that could not be connected to the unreachable nodes and the
// details, with their reason.
func clusterHealth(ctx context.Context, n *process.Node, targets []string, timeout time.Duration) (*health.ClusterHealth, error) {
	targets = slices.Compact(slices.Sorted(slices.Values(targets)))
	connErrs := make([]error, len(targets))
	cctx, cancel := context.WithTimeout(ctx, timeout)
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() { connErrs[i] = n.Connect(cctx, t) })
	}
	wg.Wait()
	cancel()

	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	h, err := health.Check(hctx, n, &health.Options{PingTimeout: timeout})
	if err != nil {
		return nil, err
	}
	for i, t := range targets {
		if connErrs[i] == nil || slices.Contains(h.ConnectedNodes, t) {
			continue
		}
		h.UnreachableNodes = append(h.UnreachableNodes, t)
		h.Details = append(h.Details, health.NodeStatus{Node: t, Error: connErrs[i].Error()})
	}
	slices.Sort(h.UnreachableNodes)
	slices.SortStableFunc(h.Details, func(a, b health.NodeStatus) int { return strings.Compare(a.Node, b.Node) })
	return h, nil
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
