// Package health builds the cluster health view of a node: a
// ClusterHealth, computed by pinging every connected node concurrently
// under one deadline.
//
// "The seed", here and in the node package, is the Gleam library
// distribute (its distribute/cluster module), whose API this module
// follows function by function; ClusterHealth has the fields of the
// seed's type of that name.
//
// The seed's cluster.health pings the connected nodes one after
// the other with net_adm:ping, which waits with no timeout: one frozen
// node (a stopped VM, a half-open TCP connection) blocks the health check
// until net_ticktime drops the link, about a minute, and N slow nodes cost
// N times as long. A health endpoint that hangs is worse than one that
// says "unhealthy", because a prober then times out and learns nothing.
// net_adm:ping also disconnects a node that answers pang, so a single
// slow answer during a health check tears down a working link.
//
// Check instead pings all connected nodes at once, each bounded by the
// caller's context and by Options.PingTimeout, so a check costs at most
// one deadline however many nodes are frozen, and it keeps links unless
// Options.DisconnectUnreachable asks for the seed's behaviour. It also
// reports, per node, the round-trip time or the reason of the failure.
package health

import (
	"context"
	"slices"
	"sync"
	"time"
)

// Node is what Check needs of a node: *process.Node has these methods.
type Node interface {
	Self() string
	IsDistributed() bool
	Nodes() []string
	ConnectedCount() int
	PingRTT(ctx context.Context, peer string) (time.Duration, error)
	Disconnect(peer string) bool
}

// NodeStatus is the result of pinging one connected node.
type NodeStatus struct {
	Node       string  `json:"node"`
	Reachable  bool    `json:"reachable"`
	RTTSeconds float64 `json:"rtt_seconds"`     // round trip of the ping; 0 when unreachable
	Error      string  `json:"error,omitempty"` // why the ping failed; "" when reachable
}

// ClusterHealth is the health of the cluster from one node's point of
// view: the seed's ClusterHealth plus the per-node Details. The lists are
// sorted and never nil, so they encode as JSON arrays, empty or not.
// ReachableNodes and UnreachableNodes split ConnectedNodes: each connected
// node is in exactly one of them.
type ClusterHealth struct {
	SelfNode         string       `json:"self_node"`         // the node's name; "nonode@nohost" for a nil node
	IsDistributed    bool         `json:"is_distributed"`    // the node runs (started, not stopped)
	ConnectedNodes   []string     `json:"connected_nodes"`   // the nodes connected when the check began
	ConnectedCount   int          `json:"connected_count"`   // len(ConnectedNodes)
	ReachableNodes   []string     `json:"reachable_nodes"`   // connected nodes that answered the ping
	UnreachableNodes []string     `json:"unreachable_nodes"` // connected nodes that did not, in time
	Details          []NodeStatus `json:"details"`           // one per connected node, in ConnectedNodes order
}

// Options tune Check. A nil *Options means the zero value.
type Options struct {
	// PingTimeout bounds each ping (connection setup included, should the
	// link drop meanwhile). 0 means bounded only by the context.
	PingTimeout time.Duration
	// DisconnectUnreachable drops the link to a node whose ping failed,
	// like net_adm:ping does on pang. By default links are kept: a slow
	// answer does not cost a working connection.
	DisconnectUnreachable bool
}

// Check pings every node connected to n concurrently and returns the
// cluster health. Each ping ends when ctx ends or after opts.PingTimeout,
// whichever comes first, so Check returns within that bound whatever the
// peers do. Give ctx a deadline (or set PingTimeout): with neither, a
// frozen peer holds Check until the node's tick time drops its link.
//
// A nil or stopped node is not an error: the result then has
// IsDistributed false, empty lists, and SelfNode "nonode@nohost" for nil
// (the node's name for a stopped node), as the seed answers on a
// non-distributed node. A failed ping marks the node unreachable, with the
// reason in its Details entry.
//
// The only error is ctx's own, returned (with a nil result) when ctx is
// already done before Check starts.
func Check(ctx context.Context, n Node, opts *Options) (*ClusterHealth, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	self, distributed := "nonode@nohost", false
	if n != nil {
		self, distributed = n.Self(), n.IsDistributed()
	}
	h := &ClusterHealth{
		SelfNode:         self,
		IsDistributed:    distributed,
		ConnectedNodes:   []string{},
		ReachableNodes:   []string{},
		UnreachableNodes: []string{},
		Details:          []NodeStatus{},
	}
	if !h.IsDistributed {
		return h, nil
	}
	peers := slices.Clone(n.Nodes())
	slices.Sort(peers)
	peers = slices.Compact(peers)
	h.ConnectedNodes = peers
	h.ConnectedCount = len(peers)
	h.Details = make([]NodeStatus, len(peers))

	var wg sync.WaitGroup
	for i, peer := range peers {
		wg.Go(func() {
			h.Details[i] = ping(ctx, n, peer, o)
		})
	}
	wg.Wait()

	for _, d := range h.Details {
		if d.Reachable {
			h.ReachableNodes = append(h.ReachableNodes, d.Node)
		} else {
			h.UnreachableNodes = append(h.UnreachableNodes, d.Node)
		}
	}
	return h, nil
}

func ping(ctx context.Context, n Node, peer string, o Options) NodeStatus {
	if o.PingTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.PingTimeout)
		defer cancel()
	}
	rtt, err := n.PingRTT(ctx, peer)
	if err != nil {
		if o.DisconnectUnreachable {
			n.Disconnect(peer)
		}
		return NodeStatus{Node: peer, Error: err.Error()}
	}
	return NodeStatus{Node: peer, Reachable: true, RTTSeconds: rtt.Seconds()}
}

// IsHealthy is the seed's is_healthy: n is distributed and has at least
// one connected node. It sends nothing on the network; use Check to know
// whether the connected nodes answer.
func IsHealthy(n Node) bool {
	return n != nil && n.IsDistributed() && n.ConnectedCount() >= 1
}
