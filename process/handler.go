package process

import (
	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/node"
)

var _ node.MessageFilter = (*handler)(nil)

// handler is the node.Handler of a Node: it routes what arrives on the connections to the
// processes. Its methods run on the connections' reader goroutines (node.Handler's contract).
type handler Node

// SpawnFunc serves a SPAWN_REQUEST that arrived on c; args is the argument list, still
// encoded. It must answer (c.Send a control.SpawnReply) and must not block for long.
type SpawnFunc func(n *Node, c *node.Conn, req control.SpawnRequest, args control.Payload)

func (h *handler) ConnUp(c *node.Conn) {
	n := (*Node)(h)
	<-n.ready
	n.nodeUp(c)
}

func (h *handler) ConnDown(c *node.Conn, reason error) {
	n := (*Node)(h)
	<-n.ready
	n.nodeDown(c, reason)
}

func (h *handler) HandleMessage(c *node.Conn, m control.Message, p control.Payload) {
	n := (*Node)(h)
	<-n.ready
	switch m := m.(type) {
	case control.Send:
		n.deliverTo(n.lookup(m.To), p, "pid", m.To)
	case control.SendTT:
		n.deliverTo(n.lookup(m.To), p, "pid", m.To)
	case control.SendSender:
		n.deliverTo(n.lookup(m.To), p, "pid", m.To)
	case control.SendSenderTT:
		n.deliverTo(n.lookup(m.To), p, "pid", m.To)
	case control.RegSend:
		n.deliverTo(n.byName(m.To), p, "name", m.To)
	case control.RegSendTT:
		n.deliverTo(n.byName(m.To), p, "name", m.To)
	case control.AliasSend:
		n.deliverTo(n.aliasTarget(m.Alias), p, "alias", m.Alias)
	case control.AliasSendTT:
		n.deliverTo(n.aliasTarget(m.Alias), p, "alias", m.Alias)

	case control.Link:
		n.remoteLink(c, m.From, m.To)
	case control.Unlink:
		n.remoteUnlink(c, m.From, m.To)
	case control.UnlinkID:
		n.remoteUnlink(c, m.From, m.To)
		_ = c.Send(control.UnlinkIDAck{ID: m.ID, From: m.To, To: m.From}, nil)
	case control.UnlinkIDAck:
		if q := n.lookup(m.To); q != nil {
			q.unlinkAcked(m.From, m.ID)
		}

	case control.Exit:
		n.remoteExit(c, m.From, m.To, m.Reason, true)
	case control.ExitTT:
		n.remoteExit(c, m.From, m.To, m.Reason, true)
	case control.PayloadExit:
		n.remoteExit(c, m.From, m.To, n.reason(p), true)
	case control.PayloadExitTT:
		n.remoteExit(c, m.From, m.To, n.reason(p), true)
	case control.Exit2:
		n.remoteExit(c, m.From, m.To, m.Reason, false)
	case control.Exit2TT:
		n.remoteExit(c, m.From, m.To, m.Reason, false)
	case control.PayloadExit2:
		n.remoteExit(c, m.From, m.To, n.reason(p), false)
	case control.PayloadExit2TT:
		n.remoteExit(c, m.From, m.To, n.reason(p), false)

	case control.MonitorP:
		n.remoteMonitor(c, m)
	case control.DemonitorP:
		n.remoteDemonitor(c, m.Ref)
	case control.MonitorPExit:
		n.monitorDown(c, m.To, m.Ref, m.Reason)
	case control.PayloadMonitorPExit:
		n.monitorDown(c, m.To, m.Ref, n.reason(p))

	case control.SpawnRequest:
		n.spawnRequest(c, m, p)
	case control.SpawnRequestTT:
		n.spawnRequest(c, m.SpawnRequest, p)
	case control.SpawnReply:
		n.spawnReply(m)
	case control.SpawnReplyTT:
		n.spawnReply(m.SpawnReply)
	}
}

// deliverTo decodes the payload and delivers it to p; a message to a missing process is
// dropped without being decoded, counted and logged.
func (n *Node) deliverTo(p *Process, pl control.Payload, kind string, to etf.Term) {
	if p == nil {
		n.dropped(&n.stats.noProcess, "no such process", kind, to)
		return
	}
	t, err := pl.Decode()
	if err != nil {
		n.dropped(&n.stats.undecodable, "undecodable term", kind, to, "err", err)
		return
	}
	p.deliver(t, pl.Len())
}

func (n *Node) aliasTarget(ref etf.Ref) *Process {
	if ref.Node != n.self || ref.Creation != n.Creation() {
		return nil
	}
	return n.byAlias(ref)
}

// ReasonUndecodable stands in for an exit or DOWN reason that arrived but did not decode: the
// signal still takes effect (a link breaks, a monitor fires) with this reason, and
// Stats.Undecodable counts it.
var ReasonUndecodable = etf.Atom("undecodable_reason")

// reason decodes the payload of a PAYLOAD_* exit; one that does not decode is counted, logged
// and replaced by ReasonUndecodable, so that the signal is not lost.
func (n *Node) reason(pl control.Payload) etf.Term {
	t, err := pl.Decode()
	if err != nil {
		n.dropped(&n.stats.undecodable, "undecodable exit reason (delivered as "+string(ReasonUndecodable)+")", "err", err)
		return ReasonUndecodable
	}
	return t
}

func (n *Node) spawnRequest(c *node.Conn, req control.SpawnRequest, args control.Payload) {
	if f := n.opts.Spawn; f != nil {
		f(n, c, req, args)
		return
	}
	n.RefuseSpawn(c, req, atomNotsup)
}

// WantMessage says whether a fragmented message whose control message m has arrived on c is
// worth reassembling: a message to a pid, name or alias of this node that has no process is
// not, and is counted (Stats.NoProcess) and logged here, so that the link layer can drop its
// fragments as they stream in instead of holding them (node.MessageFilter). Other messages are
// wanted.
func (h *handler) WantMessage(c *node.Conn, m control.Message) bool {
	n := (*Node)(h)
	<-n.ready
	var ok bool
	var kind string
	var to etf.Term
	switch m := m.(type) {
	case control.Send:
		ok, kind, to = n.lookup(m.To) != nil, "pid", m.To
	case control.SendTT:
		ok, kind, to = n.lookup(m.To) != nil, "pid", m.To
	case control.SendSender:
		ok, kind, to = n.lookup(m.To) != nil, "pid", m.To
	case control.SendSenderTT:
		ok, kind, to = n.lookup(m.To) != nil, "pid", m.To
	case control.RegSend:
		ok, kind, to = n.byName(m.To) != nil, "name", m.To
	case control.RegSendTT:
		ok, kind, to = n.byName(m.To) != nil, "name", m.To
	case control.AliasSend:
		ok, kind, to = n.aliasTarget(m.Alias) != nil, "alias", m.Alias
	case control.AliasSendTT:
		ok, kind, to = n.aliasTarget(m.Alias) != nil, "alias", m.Alias
	default:
		return true
	}
	if !ok {
		n.dropped(&n.stats.noProcess, "no such process (fragments skipped)", kind, to)
	}
	return ok
}
