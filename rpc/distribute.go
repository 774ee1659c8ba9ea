package rpc

import (
	"context"

	"github.com/distribute-go/distribute/etf"
)

// HealthView is the health of the cluster as the distribute module reports it: the six
// ClusterHealth values and the per-node details (package health fills it; this package does
// not import it).
type HealthView struct {
	SelfNode         string
	IsDistributed    bool
	ConnectedNodes   []string
	ConnectedCount   int
	ReachableNodes   []string
	UnreachableNodes []string
	Details          []NodeHealth
}

// NodeHealth is one connected node in a HealthView.
type NodeHealth struct {
	Node       string
	Reachable  bool
	RTTSeconds float64
	Error      string // "" when reachable
}

// Distribute describes the built-in distribute module.
type Distribute struct {
	// Health returns the health view for distribute:health(); nil leaves health undefined
	// (undef to callers).
	Health func(ctx context.Context) (HealthView, error)
	// Version is what distribute:version() returns, as a binary.
	Version string
}

// RegisterDistribute adds the module distribute to r, for a BEAM application to ask its Go
// sidecar with one erpc:call:
//   - distribute:health() returns a map with the atom keys self_node (atom), is_distributed
//     (boolean), connected_nodes, reachable_nodes, unreachable_nodes (lists of atoms),
//     connected_count (integer) and details (a list of maps with node, reachable, rtt_seconds
//     and error, a binary or undefined);
//   - distribute:nodes() returns the connected nodes, a list of atoms;
//   - distribute:version() returns d.Version as a binary.
func RegisterDistribute(r *Registry, d Distribute) {
	if d.Health != nil {
		r.Register("distribute", "health", 0, func(ctx context.Context, _ etf.List) (etf.Term, error) {
			h, err := d.Health(ctx)
			if err != nil {
				return nil, err
			}
			return h.Term(), nil
		})
	}
	r.Register("distribute", "nodes", 0, func(ctx context.Context, _ etf.List) (etf.Term, error) {
		return atoms(Info(ctx).Node.Nodes()), nil
	})
	r.Register("distribute", "version", 0, func(context.Context, etf.List) (etf.Term, error) {
		return []byte(d.Version), nil
	})
}

// Term returns the view as the Erlang map distribute:health() returns.
func (h HealthView) Term() etf.Map {
	details := etf.List{}
	for _, d := range h.Details {
		var e etf.Term = etf.Atom("undefined")
		if d.Error != "" {
			e = []byte(d.Error)
		}
		details = append(details, etf.Map{
			{Key: etf.Atom("node"), Value: etf.Atom(d.Node)},
			{Key: etf.Atom("reachable"), Value: d.Reachable},
			{Key: etf.Atom("rtt_seconds"), Value: d.RTTSeconds},
			{Key: etf.Atom("error"), Value: e},
		})
	}
	return etf.Map{
		{Key: etf.Atom("self_node"), Value: etf.Atom(h.SelfNode)},
		{Key: etf.Atom("is_distributed"), Value: h.IsDistributed},
		{Key: etf.Atom("connected_nodes"), Value: atoms(h.ConnectedNodes)},
		{Key: etf.Atom("connected_count"), Value: int64(h.ConnectedCount)},
		{Key: etf.Atom("reachable_nodes"), Value: atoms(h.ReachableNodes)},
		{Key: etf.Atom("unreachable_nodes"), Value: atoms(h.UnreachableNodes)},
		{Key: etf.Atom("details"), Value: details},
	}
}

func atoms(names []string) etf.List {
	l := etf.List{}
	for _, s := range names {
		l = append(l, etf.Atom(s))
	}
	return l
}
