package global

import (
	"context"
	"slices"
	"time"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/process"
)

// LockID names a global lock, like global's {ResourceId, LockRequesterId}: one requester at a
// time holds a resource; processes sharing the requester id share the lock.
type LockID struct {
	Resource  etf.Term
	Requester etf.Term
}

func (id LockID) term() etf.Tuple { return etf.Tuple{id.Resource, id.Requester} }

// VisibleNodes returns this node and the nodes connected to it visibly: the default node list
// of SetLock and Trans, like [node() | nodes()].
func (g *Global) VisibleNodes() []string {
	out := []string{g.self}
	for _, n := range g.n.Nodes() {
		if c := g.n.Conn(n); c != nil && c.Flags()&handshake.FlagPublished != 0 {
			out = append(out, n)
		}
	}
	return out
}

// SetLock sets the lock id on nodes (nil: VisibleNodes) for the process p, like
// global:set_lock/3: p holds it until DelLock or until p ends (each node monitors p). It tries
// again with global's random back-off until it gets the lock or ctx ends (then it returns
// ctx.Err()).
func (g *Global) SetLock(ctx context.Context, p *process.Process, id LockID, nodes []string) error {
	if nodes == nil {
		nodes = g.VisibleNodes()
	}
	for times := 1; ; times++ {
		if g.setLockOnNodes(p, id.term(), nodes) {
			return nil
		}
		t := time.NewTimer(randomSleep(times))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-g.ctx.Done():
			t.Stop()
			return ErrStopped
		}
	}
}

// DelLock releases the lock id that p holds on nodes (nil: VisibleNodes), like
// global:del_lock/2.
func (g *Global) DelLock(p *process.Process, id LockID, nodes []string) {
	if nodes == nil {
		nodes = g.VisibleNodes()
	}
	g.delLock(p, id.term(), slices.Clone(nodes))
}

// Trans runs fn holding the lock id on nodes (nil: VisibleNodes), like global:trans/4: the
// lock is held by a process of its own that ends with fn. The error is SetLock's, or fn's.
func (g *Global) Trans(ctx context.Context, id LockID, nodes []string, fn func() error) error {
	if nodes == nil {
		nodes = g.VisibleNodes()
	}
	p := g.n.Spawn()
	defer p.Exit(etf.Atom("normal"))
	if err := g.SetLock(ctx, p, id, nodes); err != nil {
		return err
	}
	defer g.DelLock(p, id, nodes)
	return fn()
}
