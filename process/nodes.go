package process

import (
	"context"
	"sync"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/node"
)

// NodeEvent is a connection to a node coming up or going down.
type NodeEvent struct {
	Node   string
	Up     bool
	Reason error // why it went down; nil for Up
}

// nodeUp runs when connection c is up (on its reader goroutine, before its first message). An
// older connection to the same node whose end was not reported yet (its reader was held up) is
// reported now, first: its links and monitors get noconnection and its nodedown comes before
// this nodeup.
func (n *Node) nodeUp(c *node.Conn) {
	name := c.Peer()
	n.mu.Lock()
	var old []*peer
	for k, ps := range n.retired {
		if k.Peer() == name {
			old = append(old, ps)
			delete(n.retired, k)
		}
	}
	if cur := n.peers[name]; cur != nil && cur.conn != c {
		old = append(old, cur)
		delete(n.peers, name)
	}
	for _, ps := range old {
		n.evq = append(n.evq, NodeEvent{Node: name, Reason: ps.conn.Err()})
	}
	n.peerLocked(c)
	n.evq = append(n.evq, NodeEvent{Node: name, Up: true})
	n.mu.Unlock()
	for _, ps := range old {
		n.teardown(ps)
	}
	n.drainEvents()
}

// nodeDown runs once connection c is down, after its last message: links across it get
// noconnection, monitors a DOWN with noconnection, node monitors {nodedown, Node}. Nothing
// happens when the ConnUp of a newer connection already reported it.
func (n *Node) nodeDown(c *node.Conn, reason error) {
	name := c.Peer()
	n.mu.Lock()
	ps := n.retired[c]
	delete(n.retired, c)
	if cur := n.peers[name]; ps == nil && cur != nil && cur.conn == c {
		ps = cur
		delete(n.peers, name)
	}
	if ps != nil {
		n.evq = append(n.evq, NodeEvent{Node: name, Reason: reason})
	}
	n.mu.Unlock()
	n.spawnsDown(c)
	if ps != nil {
		n.teardown(ps)
	}
	n.drainEvents()
}

// teardown tells everything set up over a connection that is down (no lock held).
func (n *Node) teardown(ps *peer) {
	n.spawnsDown(ps.conn)
	for k, p := range ps.links {
		p.signal(k.remote, atomNoconn, true)
	}
	for ref, p := range ps.monOut {
		p.monitorDown(ref, atomNoconn)
	}
	for ref, p := range ps.monIn {
		p.mu.Lock()
		delete(p.monitoredBy, ref)
		p.mu.Unlock()
	}
	for p := range ps.nodeMons {
		p.nodeDown(ps.conn.Peer())
	}
}

// drainEvents delivers the queued node events, in order, to the MonitorNodes processes and the
// WatchNodes subscriptions. Events are queued under n.mu in the order the connections changed;
// one goroutine at a time delivers them, with no lock held, and the others leave their events
// to it, so two goroutines never deliver events out of order.
func (n *Node) drainEvents() {
	n.mu.Lock()
	if n.draining {
		n.mu.Unlock()
		return
	}
	n.draining = true
	for len(n.evq) > 0 {
		ev := n.evq[0]
		n.evq[0] = NodeEvent{}
		n.evq = n.evq[1:]
		watchers := make([]*Process, 0, len(n.nodeWatchers))
		for p := range n.nodeWatchers {
			watchers = append(watchers, p)
		}
		subs := make([]*subscription, 0, len(n.subs))
		for s := range n.subs {
			subs = append(subs, s)
		}
		n.mu.Unlock()
		msg := etf.Tuple{atomNodedown, etf.Atom(ev.Node)}
		if ev.Up {
			msg[0] = atomNodeup
		}
		for _, p := range watchers {
			p.deliver(msg, 0)
		}
		for _, s := range subs {
			s.push(ev)
		}
		n.mu.Lock()
	}
	n.evq = nil
	n.draining = false
	n.mu.Unlock()
}

// MonitorNode monitors the connection to a node, like erlang:monitor_node(Node, true): p gets
// {nodedown, Node} when it goes down, once per call. It connects first when needed; a node that
// cannot be reached gives {nodedown, Node} at once.
func (p *Process) MonitorNode(name string) {
	n := p.n
	c, err := n.conn(name)
	p.mu.Lock()
	if p.exited {
		p.mu.Unlock()
		return
	}
	if err == nil {
		if p.nodeMons == nil {
			p.nodeMons = map[string]int{}
		}
		p.nodeMons[name]++
	}
	p.mu.Unlock()
	if err != nil {
		p.deliver(etf.Tuple{atomNodedown, etf.Atom(name)}, 0)
		return
	}
	n.mu.Lock()
	ps := n.peerLocked(c)
	if ps != nil {
		ps.nodeMons[p] = struct{}{}
	}
	n.mu.Unlock()
	if ps == nil {
		p.nodeDown(name)
	}
}

// DemonitorNode removes the node monitors p holds on name, like monitor_node(Node, false).
func (p *Process) DemonitorNode(name string) {
	p.mu.Lock()
	delete(p.nodeMons, name)
	p.mu.Unlock()
	p.n.mu.Lock()
	if ps := p.n.peers[name]; ps != nil {
		delete(ps.nodeMons, p)
	}
	p.n.mu.Unlock()
}

// nodeDown delivers one {nodedown, Node} per monitor_node call p made for name.
func (p *Process) nodeDown(name string) {
	p.mu.Lock()
	k := p.nodeMons[name]
	delete(p.nodeMons, name)
	p.mu.Unlock()
	for range k {
		p.deliver(etf.Tuple{atomNodedown, etf.Atom(name)}, 0)
	}
}

// MonitorNodes subscribes p to {nodeup, Node} and {nodedown, Node} messages for every
// connection, like net_kernel:monitor_nodes(true) (false unsubscribes).
func (n *Node) MonitorNodes(p *Process, on bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if on {
		if !p.alive() {
			return
		}
		n.nodeWatchers[p] = struct{}{}
	} else {
		delete(n.nodeWatchers, p)
	}
}

// WatchNodes returns a subscription to node events for Go code. Events queue without bound
// until read, so none is lost; Close ends the subscription.
func (n *Node) WatchNodes() *NodeWatch {
	s := &subscription{notify: make(chan struct{}, 1), done: make(chan struct{})}
	n.mu.Lock()
	if n.stopped {
		s.close()
	} else {
		n.subs[s] = struct{}{}
	}
	n.mu.Unlock()
	return &NodeWatch{n: n, s: s}
}

// NodeWatch is a subscription to node events (see Node.WatchNodes).
type NodeWatch struct {
	n *Node
	s *subscription
}

// Next returns the next event, waiting until ctx ends. After Close, or once the node stopped
// and every event was read, it returns ErrStopped.
func (w *NodeWatch) Next(ctx context.Context) (NodeEvent, error) {
	for {
		if e, ok := w.s.pop(); ok {
			return e, nil
		}
		select {
		case <-w.s.notify:
		case <-w.s.done:
			if e, ok := w.s.pop(); ok {
				return e, nil
			}
			return NodeEvent{}, ErrStopped
		case <-ctx.Done():
			return NodeEvent{}, ctx.Err()
		}
	}
}

// Close ends the subscription.
func (w *NodeWatch) Close() {
	w.n.mu.Lock()
	delete(w.n.subs, w.s)
	w.n.mu.Unlock()
	w.s.close()
}

type subscription struct {
	mu       sync.Mutex
	q        []NodeEvent
	notify   chan struct{}
	done     chan struct{}
	doneOnce sync.Once
}

func (s *subscription) push(e NodeEvent) {
	s.mu.Lock()
	s.q = append(s.q, e)
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *subscription) pop() (NodeEvent, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.q) == 0 {
		return NodeEvent{}, false
	}
	e := s.q[0]
	s.q = s.q[1:]
	return e, true
}

func (s *subscription) close() { s.doneOnce.Do(func() { close(s.done) }) }
