package process

import (
	"fmt"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/node"
)

// SpawnReplyMode says which spawn_reply messages a spawn request delivers, like
// spawn_request's {reply, ...} option.
type SpawnReplyMode int

const (
	ReplyYes       SpawnReplyMode = iota // success and error replies (the default)
	ReplyErrorOnly                       // only {spawn_reply, ReqId, error, Reason}
	ReplyNo                              // none
)

// SpawnOptions are the options of Process.SpawnRequest.
type SpawnOptions struct {
	Monitor bool // monitor the new process: its DOWN carries the request id as its reference
	Link    bool // link to the new process
	Reply   SpawnReplyMode
	// GroupLeader receives the new process's I/O requests; the zero pid means the node's own
	// group leader, which answers every I/O request with ok and discards the output.
	GroupLeader etf.Pid
}

// pendingSpawn is a spawn request of ours waiting for its SPAWN_REPLY.
type pendingSpawn struct {
	p    *Process
	opts SpawnOptions
	peer string
	conn *node.Conn
}

var atomSpawnReply = etf.Atom("spawn_reply")

// SpawnRequest asks the node nodeName to spawn Module:Function(Args...), like
// erlang:spawn_request(Node, M, F, Args, Opts). It returns the request id at once; the outcome
// arrives in p's mailbox as {spawn_reply, ReqId, ok, Pid} or {spawn_reply, ReqId, error,
// Reason} (as o.Reply allows; noconnection when the connection goes down first), and with
// o.Monitor the new process's end as {'DOWN', ReqId, process, Pid, Reason}. A peer without the
// SPAWN capability gets no request: the reply is error notsup.
func (p *Process) SpawnRequest(nodeName string, module, function etf.Atom, args etf.List, o SpawnOptions) (etf.Ref, error) {
	n := p.n
	ref := n.MakeRef()
	if nodeName == string(n.self) {
		return ref, fmt.Errorf("process: spawn_request to this node: %w", errSpawnLocal)
	}
	c, err := n.conn(nodeName)
	if err != nil {
		return ref, err
	}
	if c.Flags()&handshake.FlagSpawn == 0 {
		p.spawnFailed(ref, o, atomNotsup)
		return ref, nil
	}
	gl := o.GroupLeader
	if gl == (etf.Pid{}) {
		gl = n.groupLeader.pid
	}
	var opts etf.List
	if o.Monitor {
		opts = append(opts, etf.Atom("monitor"))
	}
	if o.Link {
		opts = append(opts, etf.Atom("link"))
	}
	n.mu.Lock()
	n.spawns[ref] = &pendingSpawn{p: p, opts: o, peer: c.Peer(), conn: c}
	n.mu.Unlock()
	if args == nil {
		args = etf.List{}
	}
	err = c.Send(control.SpawnRequest{ReqID: ref, From: p.pid, GroupLeader: gl, Module: module,
		Function: function, Arity: len(args), Opts: opts}, args)
	if err != nil || c.Err() != nil {
		n.mu.Lock()
		_, still := n.spawns[ref]
		delete(n.spawns, ref)
		n.mu.Unlock()
		if still {
			p.spawnFailed(ref, o, atomNoconn)
		}
	}
	return ref, nil
}

var errSpawnLocal = fmt.Errorf("spawning Go code by module and function is not supported")

func (p *Process) spawnFailed(ref etf.Ref, o SpawnOptions, reason etf.Term) {
	if o.Reply != ReplyNo {
		p.deliver(etf.Tuple{atomSpawnReply, ref, etf.Atom("error"), reason}, 0)
	}
}

// spawnReply serves SPAWN_REPLY for a request of ours.
func (n *Node) spawnReply(m control.SpawnReply) {
	n.mu.Lock()
	ps := n.spawns[m.ReqID]
	delete(n.spawns, m.ReqID)
	n.mu.Unlock()
	if ps == nil || ps.p.pid != m.To {
		return
	}
	p := ps.p
	pid, ok := m.Result.(etf.Pid)
	if !ok {
		p.spawnFailed(m.ReqID, ps.opts, m.Result)
		return
	}
	if m.Flags&control.SpawnReplyMonitor != 0 {
		if p.addMonitor(m.ReqID, monitored{obj: pid, target: pid, peer: ps.peer}) {
			n.mu.Lock()
			e := n.peerLocked(ps.conn)
			if e != nil {
				e.monOut[m.ReqID] = p
			}
			n.mu.Unlock()
			if e == nil {
				p.monitorDown(m.ReqID, atomNoconn)
			}
		}
	}
	if m.Flags&control.SpawnReplyLink != 0 {
		if p.addLink(pid) {
			n.mu.Lock()
			e := n.peerLocked(ps.conn)
			if e != nil {
				e.links[linkKey{p.pid, pid}] = p
			}
			n.mu.Unlock()
			if e == nil {
				p.signal(pid, atomNoconn, true)
			}
		}
	}
	if ps.opts.Reply == ReplyYes {
		p.deliver(etf.Tuple{atomSpawnReply, m.ReqID, etf.Atom("ok"), pid}, 0)
	}
}

// spawnsDown fails the spawn requests still waiting on a connection that went down.
func (n *Node) spawnsDown(c *node.Conn) {
	n.mu.Lock()
	var failed []*pendingSpawn
	var refs []etf.Ref
	for ref, ps := range n.spawns {
		if ps.conn == c {
			failed = append(failed, ps)
			refs = append(refs, ref)
			delete(n.spawns, ref)
		}
	}
	n.mu.Unlock()
	for i, ps := range failed {
		ps.p.spawnFailed(refs[i], ps.opts, atomNoconn)
	}
}

// groupLeaderHandler is the node's own group leader: it answers every I/O request with ok
// (output is discarded, input is eof), so code that a peer runs on our behalf never blocks on
// I/O.
func (n *Node) groupLeaderHandler(p *Process, m etf.Term) {
	t, ok := m.(etf.Tuple)
	if !ok || len(t) != 4 || t[0] != etf.Atom("io_request") {
		return
	}
	from, ok := t[1].(etf.Pid)
	if !ok {
		return
	}
	reply := etf.Term(etf.Atom("ok"))
	if req, ok := t[3].(etf.Tuple); ok && len(req) > 0 {
		switch req[0] {
		case etf.Atom("get_chars"), etf.Atom("get_line"), etf.Atom("get_until"), etf.Atom("get_password"):
			reply = etf.Atom("eof")
		}
	}
	_ = p.Send(from, etf.Tuple{etf.Atom("io_reply"), t[2], reply})
}

// AcceptSpawn answers a SPAWN_REQUEST that arrived on c with a new process of this node (a
// SpawnFunc calls it): the SPAWN_REPLY carries its pid, and the link and monitor the request
// asked for are set up, the monitor under the request id as its reference. The caller does the
// work and ends the process with Exit: its reason reaches the requester as the monitor's DOWN
// reason (erpc reads a call's result there) and as the link's exit signal.
func (n *Node) AcceptSpawn(c *node.Conn, req control.SpawnRequest) *Process {
	q := n.Spawn()
	var flags int64
	for _, o := range req.Opts {
		switch o {
		case etf.Atom("monitor"):
			if q.addWatcher(req.ReqID, watcher{pid: req.From, obj: q.pid}) {
				n.mu.Lock()
				if e := n.peerLocked(c); e != nil {
					e.monIn[req.ReqID] = q
				}
				n.mu.Unlock()
				flags |= control.SpawnReplyMonitor
			}
		case etf.Atom("link"):
			if q.addLink(req.From) {
				n.mu.Lock()
				if e := n.peerLocked(c); e != nil {
					e.links[linkKey{q.pid, req.From}] = q
				}
				n.mu.Unlock()
				flags |= control.SpawnReplyLink
			}
		}
	}
	if c.Send(control.SpawnReply{ReqID: req.ReqID, To: req.From, Flags: flags, Result: q.pid}, nil) != nil {
		q.exit(atomNoconn)
	}
	return q
}

// ServesSpawn reports whether the node serves spawn requests (Options.Spawn is set); without it
// every request is refused with notsup.
func (n *Node) ServesSpawn() bool { return n.opts.Spawn != nil }

// RefuseSpawn answers a SPAWN_REQUEST with an error reason such as badarg or notsup.
func (n *Node) RefuseSpawn(c *node.Conn, req control.SpawnRequest, reason etf.Atom) {
	_ = c.Send(control.SpawnReply{ReqID: req.ReqID, To: req.From, Result: reason}, nil)
}
