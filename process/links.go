package process

import (
	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/node"
)

// peer is what the process layer tracks per connection, so that a connection going down
// reaches exactly the processes it concerns, and nothing set up over a newer connection to the
// same node. Under Node.mu.
type peer struct {
	conn     *node.Conn
	links    map[linkKey]*Process  // a local process linked to a process of the peer
	monOut   map[etf.Ref]*Process  // monitors our processes hold on the peer's processes
	monIn    map[etf.Ref]*Process  // monitors the peer's processes hold on ours
	nodeMons map[*Process]struct{} // monitor_node(Peer, true) holders
}

type linkKey struct{ local, remote etf.Pid }

// peerLocked returns the state of connection c, creating it (under n.mu). It returns nil when
// c is down and its state is gone (or never was): nothing may be set up over it, and the caller
// treats that as noconnection. The state of an older connection to the same node that is down
// but not yet reported is kept aside (n.retired) for its ConnDown, or for the ConnUp of c.
func (n *Node) peerLocked(c *node.Conn) *peer {
	if ps := n.entryLocked(c); ps != nil {
		return ps
	}
	if c.Err() != nil {
		return nil
	}
	name := c.Peer()
	if old := n.peers[name]; old != nil {
		// Both up: the node has just replaced one with the other and is closing it. The
		// node's current connection is the newer one. (The node never calls the Handler with
		// its own lock held, so asking it under n.mu is safe.)
		if old.conn.Err() == nil && n.Node.Conn(name) != c {
			return nil // c is the older one, about to be closed
		}
		n.retired[old.conn] = old
	}
	ps := &peer{
		conn:     c,
		links:    map[linkKey]*Process{},
		monOut:   map[etf.Ref]*Process{},
		monIn:    map[etf.Ref]*Process{},
		nodeMons: map[*Process]struct{}{},
	}
	n.peers[name] = ps
	return ps
}

// entryLocked returns the state of connection c if it has one (under n.mu).
func (n *Node) entryLocked(c *node.Conn) *peer {
	if ps := n.peers[c.Peer()]; ps != nil && ps.conn == c {
		return ps
	}
	return n.retired[c]
}

// Link links p with the process to, like link/1: when either ends, the other gets an exit
// signal with the reason (trapped as {'EXIT', Pid, Reason}, or ending the process unless the
// reason is normal). A process that does not exist sends noproc at once; a link across a
// connection that goes down gets noconnection.
func (p *Process) Link(to etf.Pid) error {
	n := p.n
	if to == p.pid {
		return nil
	}
	if !p.addLink(to) {
		return &ExitError{Reason: p.Reason()}
	}
	if to.Node == n.self {
		q := n.lookup(to)
		if q == nil || !q.addLink(p.pid) {
			p.signal(to, atomNoproc, true)
		}
		return nil
	}
	c, err := n.conn(string(to.Node))
	if err != nil {
		p.signal(to, atomNoconn, true)
		return nil
	}
	n.mu.Lock()
	ps := n.peerLocked(c)
	if ps != nil {
		ps.links[linkKey{p.pid, to}] = p
	}
	n.mu.Unlock()
	if ps == nil || c.Send(control.Link{From: p.pid, To: to}, nil) != nil {
		p.signal(to, atomNoconn, true)
	}
	return nil
}

// addLink records a link to pid; false when p has exited.
func (p *Process) addLink(pid etf.Pid) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return false
	}
	if p.links == nil {
		p.links = map[etf.Pid]struct{}{}
	}
	p.links[pid] = struct{}{}
	delete(p.unlinking, pid)
	return true
}

// removeLink forgets a link to pid; it reports whether there was one.
func (p *Process) removeLink(pid etf.Pid) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.links[pid]
	delete(p.links, pid)
	return ok
}

// Unlink removes the link between p and to, like unlink/1. With a peer that speaks the
// UNLINK_ID protocol (OTP 23+), an exit signal from to that crosses the unlink is ignored
// until the peer acknowledges it.
func (p *Process) Unlink(to etf.Pid) error {
	n := p.n
	if !p.removeLink(to) {
		return nil
	}
	if to.Node == n.self {
		if q := n.lookup(to); q != nil {
			q.removeLink(p.pid)
		}
		return nil
	}
	c := n.Conn(string(to.Node))
	if c == nil {
		return nil
	}
	n.mu.Lock()
	if ps := n.entryLocked(c); ps != nil {
		delete(ps.links, linkKey{p.pid, to})
	}
	n.mu.Unlock()
	if c.Flags()&handshake.FlagUnlinkID == 0 {
		return c.Send(control.Unlink{From: p.pid, To: to}, nil)
	}
	id := n.refs.Add(1)
	p.mu.Lock()
	if p.unlinking == nil {
		p.unlinking = map[etf.Pid]uint64{}
	}
	p.unlinking[to] = id
	p.mu.Unlock()
	return c.Send(control.UnlinkID{ID: id, From: p.pid, To: to}, nil)
}

// unlinkAcked ends the unlinking state for from once its UNLINK_ID_ACK arrived.
func (p *Process) unlinkAcked(from etf.Pid, id uint64) {
	p.mu.Lock()
	if p.unlinking[from] == id {
		delete(p.unlinking, from)
	}
	p.mu.Unlock()
}

// remoteLink serves LINK from a process of the peer to a local one.
func (n *Node) remoteLink(c *node.Conn, from, to etf.Pid) {
	q := n.lookup(to)
	if q == nil || !q.addLink(from) {
		_ = c.Send(control.Exit{From: to, To: from, Reason: atomNoproc}, nil)
		return
	}
	n.mu.Lock()
	ps := n.peerLocked(c)
	if ps != nil {
		ps.links[linkKey{to, from}] = q
	}
	n.mu.Unlock()
	if ps == nil {
		q.removeLink(from) // the connection is down: the peer sees noconnection
	}
}

// remoteUnlink serves UNLINK and UNLINK_ID.
func (n *Node) remoteUnlink(c *node.Conn, from, to etf.Pid) {
	q := n.lookup(to)
	if q == nil {
		return
	}
	q.removeLink(from)
	n.mu.Lock()
	if ps := n.entryLocked(c); ps != nil {
		delete(ps.links, linkKey{to, from})
	}
	n.mu.Unlock()
}

// remoteExit serves EXIT (linked) and EXIT2 (exit/2) signals from the peer.
func (n *Node) remoteExit(c *node.Conn, from, to etf.Pid, reason etf.Term, linked bool) {
	q := n.lookup(to)
	if q == nil {
		return
	}
	if linked {
		n.mu.Lock()
		if ps := n.entryLocked(c); ps != nil {
			delete(ps.links, linkKey{to, from})
		}
		n.mu.Unlock()
	}
	q.signal(from, reason, linked)
}

// SendExit sends an exit signal to the process to, like exit(To, Reason): kill ends it
// (with reason killed) even when it traps exits; normal is ignored unless it traps exits.
func (p *Process) SendExit(to etf.Pid, reason etf.Term) error {
	n := p.n
	if to.Node == n.self {
		if q := n.lookup(to); q != nil {
			q.signal(p.pid, reason, false)
		}
		return nil
	}
	c, err := n.conn(string(to.Node))
	if err != nil {
		return err
	}
	if c.Flags()&handshake.FlagExitPayload != 0 {
		return c.Send(control.PayloadExit2{From: p.pid, To: to}, reason)
	}
	return c.Send(control.Exit2{From: p.pid, To: to, Reason: reason}, nil)
}

// signal delivers an exit signal from from to p: from a link (linked) or from exit/2.
func (p *Process) signal(from etf.Pid, reason etf.Term, linked bool) {
	p.mu.Lock()
	if p.exited {
		p.mu.Unlock()
		return
	}
	if linked {
		if _, ok := p.links[from]; !ok {
			p.mu.Unlock()
			return // not linked any more (unlinked, or the signal arrived twice)
		}
		delete(p.links, from)
	}
	trap := p.trap
	p.mu.Unlock()
	switch {
	case !linked && reason == atomKill:
		p.exit(atomKilled)
	case trap:
		p.deliver(etf.Tuple{atomExit, from, reason}, 0)
	case reason == atomNormal && from != p.pid:
		// A normal exit of a linked process, or exit(Pid, normal): ignored.
	default:
		p.exit(reason)
	}
}

// Exit ends the process with reason, like exit(Reason) inside it: its links get exit signals,
// its monitors DOWN messages, its name and aliases go.
func (p *Process) Exit(reason etf.Term) { p.exit(reason) }

func (p *Process) exit(reason etf.Term) {
	n := p.n
	p.mu.Lock()
	if p.exited {
		p.mu.Unlock()
		return
	}
	p.exited, p.reason = true, reason
	links, watchers, held, aliases := p.links, p.monitoredBy, p.monitors, p.aliases
	name, nodeMons := p.name, p.nodeMons
	p.links, p.monitoredBy, p.monitors, p.aliases, p.name, p.nodeMons = nil, nil, nil, nil, "", nil
	p.unlinking = nil
	clear(p.queue)
	p.queue, p.head, p.bytes, p.wake = nil, 0, 0, nil
	if p.done != nil {
		close(p.done)
	}
	p.mu.Unlock()

	n.mu.Lock()
	delete(n.procs, pidKey{p.pid.ID, p.pid.Serial})
	if name != "" && n.names[name] == p {
		delete(n.names, name)
	}
	for a := range aliases {
		delete(n.aliases, a)
	}
	delete(n.nodeWatchers, p)
	for l := range links {
		if l.Node != n.self {
			if ps := n.peers[string(l.Node)]; ps != nil {
				delete(ps.links, linkKey{p.pid, l})
			}
		}
	}
	for ref, m := range held {
		if m.peer != "" {
			if ps := n.peers[m.peer]; ps != nil {
				delete(ps.monOut, ref)
			}
		}
	}
	for ref, w := range watchers {
		if w.pid.Node != n.self {
			if ps := n.peers[string(w.pid.Node)]; ps != nil {
				delete(ps.monIn, ref)
			}
		}
	}
	for peerName := range nodeMons {
		if ps := n.peers[peerName]; ps != nil {
			delete(ps.nodeMons, p)
		}
	}
	n.mu.Unlock()

	// Links and monitors are told with no lock held.
	for l := range links {
		n.linkExit(p.pid, l, reason)
	}
	for ref, w := range watchers {
		n.down(w, ref, reason)
	}
	for ref, m := range held {
		n.dropMonitor(p.pid, ref, m)
	}
}

// linkExit sends the exit signal of from (which ended with reason) to the linked process to.
func (n *Node) linkExit(from, to etf.Pid, reason etf.Term) {
	if to.Node == n.self {
		if q := n.lookup(to); q != nil {
			q.signal(from, reason, true)
		}
		return
	}
	c := n.Conn(string(to.Node))
	if c == nil {
		return // the peer sees noconnection
	}
	if c.Flags()&handshake.FlagExitPayload != 0 {
		_ = c.Send(control.PayloadExit{From: from, To: to}, reason)
		return
	}
	_ = c.Send(control.Exit{From: from, To: to, Reason: reason}, nil)
}

// Links returns the pids p is linked to, like process_info(Pid, links), in no particular order;
// nil once p has exited.
func (p *Process) Links() []etf.Pid {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.links) == 0 {
		return nil
	}
	out := make([]etf.Pid, 0, len(p.links))
	for l := range p.links {
		out = append(out, l)
	}
	return out
}
