package process

import (
	"fmt"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/node"
)

// Monitor monitors a process, like erlang:monitor(process, Target): when it ends, p gets
// {'DOWN', Ref, process, Object, Reason}. target is an etf.Pid (of any node), a *Process, an
// etf.Atom (a name registered on this node), a Name or the tuple {Name, Node}; Object is the pid, or {Name, Node} for a
// monitor by name. A process that does not exist gives a DOWN with noproc at once, one on a
// node that cannot be reached or whose connection goes down a DOWN with noconnection.
func (p *Process) Monitor(target any) (etf.Ref, error) {
	n := p.n
	ref := n.MakeRef()
	switch t := target.(type) {
	case *Process:
		target = t.pid // a process of another node in this program is monitored over the wire
	case etf.Tuple:
		if name, ok := nameOf(t); ok {
			target = name
		}
	}
	var obj, wire etf.Term
	var peerName string
	switch t := target.(type) {
	case etf.Pid:
		obj, wire = t, t
		if t.Node != n.self {
			peerName = string(t.Node)
		}
	case etf.Atom:
		obj, wire = etf.Tuple{t, n.self}, t
	case Name:
		obj, wire = t.Term(), t.Name
		if t.Node != string(n.self) {
			peerName = t.Node
		}
	default:
		return etf.Ref{}, fmt.Errorf("process: monitor %T: %w", target, ErrBadDestination)
	}
	m := monitored{obj: obj, target: wire, peer: peerName}
	if !p.addMonitor(ref, m) {
		return ref, &ExitError{Reason: p.Reason()}
	}
	if peerName == "" {
		var q *Process
		switch t := target.(type) {
		case etf.Pid:
			q = n.lookup(t)
		case etf.Atom:
			q = n.byName(t)
		case Name:
			q = n.byName(t.Name)
		}
		if q == nil || !q.addWatcher(ref, watcher{pid: p.pid, obj: obj}) {
			n.down(watcher{pid: p.pid, obj: obj}, ref, atomNoproc)
		}
		return ref, nil
	}
	c, err := n.conn(peerName)
	if err != nil {
		n.down(watcher{pid: p.pid, obj: obj}, ref, atomNoconn)
		return ref, nil
	}
	n.mu.Lock()
	ps := n.peerLocked(c)
	if ps != nil {
		ps.monOut[ref] = p
	}
	n.mu.Unlock()
	if ps == nil || c.Send(control.MonitorP{From: p.pid, To: wire, Ref: ref}, nil) != nil {
		n.down(watcher{pid: p.pid, obj: obj}, ref, atomNoconn)
	}
	return ref, nil
}

func (p *Process) addMonitor(ref etf.Ref, m monitored) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return false
	}
	if p.monitors == nil {
		p.monitors = map[etf.Ref]monitored{}
	}
	p.monitors[ref] = m
	return true
}

// addWatcher records a monitor held on p; false when p has exited.
func (p *Process) addWatcher(ref etf.Ref, w watcher) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return false
	}
	if p.monitoredBy == nil {
		p.monitoredBy = map[etf.Ref]watcher{}
	}
	p.monitoredBy[ref] = w
	return true
}

// Demonitor removes a monitor p holds, like erlang:demonitor(Ref, [flush]): a DOWN message for
// it already in the mailbox is removed too. It reports whether the monitor was active.
func (p *Process) Demonitor(ref etf.Ref) bool {
	p.mu.Lock()
	m, ok := p.monitors[ref]
	delete(p.monitors, ref)
	// flush: a DOWN that arrived already goes.
	q := p.queue[p.head:]
	for i := 0; i < len(q); i++ {
		if isDown(q[i].t, ref) {
			copy(q[i:], q[i+1:])
			p.queue[len(p.queue)-1] = entry{}
			p.queue = p.queue[:len(p.queue)-1]
			p.taken++
			break
		}
	}
	p.mu.Unlock()
	if ok {
		p.n.dropMonitor(p.pid, ref, m)
	}
	return ok
}

func isDown(t etf.Term, ref etf.Ref) bool {
	d, ok := t.(etf.Tuple)
	return ok && len(d) == 5 && d[0] == atomDown && d[1] == ref
}

// dropMonitor undoes the other side of a monitor that watcher held (on demonitor, or when the
// watcher ended).
func (n *Node) dropMonitor(watcherPid etf.Pid, ref etf.Ref, m monitored) {
	if m.peer == "" {
		var q *Process
		switch t := m.target.(type) {
		case etf.Pid:
			q = n.lookup(t)
		case etf.Atom:
			q = n.byName(t)
		}
		if q != nil {
			q.mu.Lock()
			delete(q.monitoredBy, ref)
			q.mu.Unlock()
		}
		return
	}
	n.mu.Lock()
	if ps := n.peers[m.peer]; ps != nil {
		delete(ps.monOut, ref)
	}
	n.mu.Unlock()
	if c := n.Conn(m.peer); c != nil {
		_ = c.Send(control.DemonitorP{From: watcherPid, To: m.target, Ref: ref}, nil)
	}
}

// down tells the holder of a monitor that the monitored process ended with reason.
func (n *Node) down(w watcher, ref etf.Ref, reason etf.Term) {
	if w.pid.Node == n.self {
		if q := n.lookup(w.pid); q != nil {
			q.monitorDown(ref, reason)
		}
		return
	}
	c := n.Conn(string(w.pid.Node))
	if c == nil {
		return
	}
	if c.Flags()&handshake.FlagExitPayload != 0 {
		_ = c.Send(control.PayloadMonitorPExit{From: w.obj, To: w.pid, Ref: ref}, reason)
		return
	}
	_ = c.Send(control.MonitorPExit{From: w.obj, To: w.pid, Ref: ref, Reason: reason}, nil)
}

// monitorDown delivers the DOWN of a monitor p holds, once.
func (p *Process) monitorDown(ref etf.Ref, reason etf.Term) {
	p.mu.Lock()
	m, ok := p.monitors[ref]
	delete(p.monitors, ref)
	p.mu.Unlock()
	if ok {
		p.deliver(etf.Tuple{atomDown, ref, atomProcess, m.obj, reason}, 0)
	}
}

// remoteMonitor serves MONITOR_P from the peer.
func (n *Node) remoteMonitor(c *node.Conn, m control.MonitorP) {
	var q *Process
	switch t := m.To.(type) {
	case etf.Pid:
		q = n.lookup(t)
	case etf.Atom:
		q = n.byName(t)
	}
	if q == nil || !q.addWatcher(m.Ref, watcher{pid: m.From, obj: m.To}) {
		_ = c.Send(control.MonitorPExit{From: m.To, To: m.From, Ref: m.Ref, Reason: atomNoproc}, nil)
		return
	}
	n.mu.Lock()
	ps := n.peerLocked(c)
	if ps != nil {
		ps.monIn[m.Ref] = q
	}
	n.mu.Unlock()
	if ps == nil {
		q.mu.Lock()
		delete(q.monitoredBy, m.Ref) // the connection is down: the peer sees noconnection
		q.mu.Unlock()
	}
}

// remoteDemonitor serves DEMONITOR_P from the peer.
func (n *Node) remoteDemonitor(c *node.Conn, ref etf.Ref) {
	n.mu.Lock()
	var q *Process
	if ps := n.entryLocked(c); ps != nil {
		q = ps.monIn[ref]
		delete(ps.monIn, ref)
	}
	n.mu.Unlock()
	if q != nil {
		q.mu.Lock()
		delete(q.monitoredBy, ref)
		q.mu.Unlock()
	}
}

// monitorDown serves MONITOR_P_EXIT: a process of the peer that one of ours monitors ended.
func (n *Node) monitorDown(c *node.Conn, to etf.Pid, ref etf.Ref, reason etf.Term) {
	n.mu.Lock()
	if ps := n.entryLocked(c); ps != nil {
		delete(ps.monOut, ref)
	}
	n.mu.Unlock()
	if q := n.lookup(to); q != nil {
		q.monitorDown(ref, reason)
	}
}
