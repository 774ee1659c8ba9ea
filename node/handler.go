package node

import (
	"errors"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
)

// Handler receives what arrives on the node's connections. The process layer implements it;
// the node itself knows no processes and no registered names.
//
// Concurrency contract: the node calls HandleMessage on the reader goroutine of the connection
// the message arrived on, so the messages of one connection arrive in order and those of
// different connections concurrently. ConnUp is called once per connection before its first
// HandleMessage, and ConnDown once after its last HandleMessage has returned. None of them may
// block for long: the connection reads nothing meanwhile, and its ticks are not answered. They
// may call any method of the Node or the Conn (Conn.Send only queues).
type Handler interface {
	// ConnUp: a connection to c.Peer() is up.
	ConnUp(c *Conn)
	// HandleMessage: a control message m arrived on c. p is the message term still encoded
	// (empty when m has none); it aliases the frame buffer and is valid only during the call.
	HandleMessage(c *Conn, m control.Message, p control.Payload)
	// ConnDown: c is down; reason says why. No HandleMessage for c follows.
	ConnDown(c *Conn, reason error)
}

// Conn is one established distribution connection, as a Handler sees it. Its methods are safe
// for concurrent use.
type Conn struct {
	l *link
}

// Peer returns the name of the node at the other end.
func (c *Conn) Peer() string { return c.l.peer }

// Flags returns the distribution flags both sides agreed on (the AND of both sides' flags).
func (c *Conn) Flags() handshake.Flags { return c.l.flags }

// Visible reports whether the connection is visible: both sides are published (a BEAM node,
// or a node with Options.Visible), so each lists the other in nodes(). A hidden connection
// appears in nodes(hidden) only.
func (c *Conn) Visible() bool { return c.l.flags&handshake.FlagPublished != 0 }

// PeerCreation returns the peer's creation, the incarnation its pids and references carry.
func (c *Conn) PeerCreation() uint32 { return c.l.peerCreation }

// Send queues one control message (and its payload, when m has one) on the connection. It
// does not wait for the bytes to be written; it fails when the connection is down or the
// terms cannot be encoded.
func (c *Conn) Send(m control.Message, payload etf.Term) error { return c.l.send(m, payload) }

// Done is closed when the connection is down.
func (c *Conn) Done() <-chan struct{} { return c.l.done }

// Err returns why the connection went down (nil while it is up).
func (c *Conn) Err() error {
	select {
	case <-c.l.done:
		return c.l.reason
	default:
		return nil
	}
}

// Conn returns the connection to peer, or nil when none is up.
func (n *Node) Conn(peer string) *Conn {
	l := n.link(peer)
	if l == nil {
		return nil
	}
	return l.pub
}

// ErrNotConnected is returned when there is no connection to send on.
var ErrNotConnected = errors.New("not connected")

// noProcesses is the Handler of a node started without one: it answers like a node that has
// no processes, so no BEAM caller waits on it. A monitor gets an immediate noproc DOWN (so
// net_adm:ping from BEAM returns pang rather than hang), a link an immediate noproc exit,
// UNLINK_ID its ack and a spawn request an error.
type noProcesses struct{}

var atomNoproc = etf.Atom("noproc")

func (noProcesses) ConnUp(*Conn)          {}
func (noProcesses) ConnDown(*Conn, error) {}
func (noProcesses) HandleMessage(c *Conn, m control.Message, _ control.Payload) {
	switch m := m.(type) {
	case control.MonitorP:
		_ = c.Send(control.MonitorPExit{From: m.To, To: m.From, Ref: m.Ref, Reason: atomNoproc}, nil)
	case control.Link:
		_ = c.Send(control.Exit{From: m.To, To: m.From, Reason: atomNoproc}, nil)
	case control.UnlinkID:
		_ = c.Send(control.UnlinkIDAck{ID: m.ID, From: m.To, To: m.From}, nil)
	case control.SpawnRequest:
		_ = c.Send(control.SpawnReply{ReqID: m.ReqID, To: m.From, Result: etf.Atom("notsup")}, nil)
	case control.SpawnRequestTT:
		_ = c.Send(control.SpawnReply{ReqID: m.ReqID, To: m.From, Result: etf.Atom("notsup")}, nil)
	}
}
