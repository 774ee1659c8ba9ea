package process

import (
	"context"
	"sync"

	"github.com/distribute-go/distribute/etf"
)

// NodeEvent is a connection to a node coming up or going down.
type NodeEvent struct {
	Node   string
	Up     bool
	Reason error // why it went down; nil for Up
}

// nodeUp runs when a connection is up (on its reader goroutine, before its first message).
func (n *Node) nodeUp(peerName string) {
	n.mu.Lock()
	watchers := make([]*Process, 0, len(n.nodeWatchers))
	for p := range n.nodeWatchers {
		watchers = append(watchers, p)
	}
	subs := make([]*subscription, 0, len(n.subs))
	for s := range n.subs {
		subs = append(subs, s)
	}
	n.mu.Unlock()
	msg := etf.Tuple{atomNodeup, etf.Atom(peerName)}
	for _, p := range watchers {
		p.deliver(msg, 0)
	}
	for _, s := range subs {
		s.push(NodeEvent{Node: peerName, Up: true})
	}
}

// nodeDown runs once a connection is down, after its last message: links across it get
// noconnection, monitors a DOWN with noconnection, node monitors {nodedown, Node}.
func (n *Node) nodeDown(peerName string, reason error) {
	n.mu.Lock()
	ps := n.peers[peerName]
	delete(n.peers, peerName)
	watchers := make([]*Process, 0, len(n.nodeWatchers))
	for p := range n.nodeWatchers {
		watchers = append(watchers, p)
	}
	subs := make([]*subscription, 0, len(n.subs))
	for s := range n.subs {
		subs = append(subs, s)
	}
	n.mu.Unlock()
	n.spawnsDown(peerName)
	if ps != nil {
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
			p.nodeDown(peerName)
		}
	}
	msg := etf.Tuple{atomNodedown, etf.Atom(peerName)}
	for _, p := range watchers {
		p.deliver(msg, 0)
	}
	for _, s := range subs {
		s.push(NodeEvent{Node: peerName, Reason: reason})
	}
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
	n.peerLocked(name).nodeMons[p] = struct{}{}
	n.mu.Unlock()
	if c.Err() != nil {
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
		select {
		case <-p.done:
			return
		default:
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
