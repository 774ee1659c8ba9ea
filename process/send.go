package process

import (
	"context"
	"fmt"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/node"
)

// Name is a process registered as Name on the node Node: {Name, Node} in Erlang.
type Name struct {
	Name etf.Atom
	Node string
}

// Term returns {Name, Node}.
func (a Name) Term() etf.Tuple { return etf.Tuple{a.Name, etf.Atom(a.Node)} }

// Send sends msg to a destination, from p, like Erlang's `!`:
//   - an etf.Pid of this node or of any other node;
//   - an etf.Atom: the process registered under that name on this node (ErrNoProcess when
//     none is, as `Name ! Msg` raises badarg);
//   - a Name, or the tuple {Name, Node} of two atoms: a registered name on a node, this one or
//     another (a missing one drops the message silently, as BEAM does);
//   - an etf.Ref: an alias;
//   - a *Process.
//
// Sending to another node connects to it first when needed (as BEAM does, the sender waits
// for that, within the node's setup time); a message to a node that cannot be reached is
// dropped and the error says why. Messages from one sender to one receiver arrive in the order
// they were sent.
func (p *Process) Send(to any, msg etf.Term) error { return p.n.send(p.pid, to, msg) }

// Send sends msg to a destination (see Process.Send) from a process of the node's own that
// exists for this purpose.
func (n *Node) Send(to any, msg etf.Term) error { return n.send(n.sender.pid, to, msg) }

func (n *Node) send(from etf.Pid, to any, msg etf.Term) error {
	if t, ok := to.(etf.Tuple); ok {
		name, ok := nameOf(t)
		if !ok {
			return fmt.Errorf("process: send to %v: %w", t, ErrBadDestination)
		}
		to = name
	}
	switch d := to.(type) {
	case *Process:
		if d.n != n {
			// A process of another node in this program: over the connection, like its
			// pid, so that the order with messages sent to the pid is kept.
			return n.send(from, d.pid, msg)
		}
		d.deliver(msg, 0)
		return nil
	case etf.Pid:
		if d.Node == n.self {
			if p := n.lookup(d); p != nil {
				p.deliver(msg, 0)
			}
			return nil // a dead or old pid: dropped, as in BEAM
		}
		c, err := n.conn(string(d.Node))
		if err != nil {
			return err
		}
		if c.Flags()&handshake.FlagSendSender != 0 {
			return c.Send(control.SendSender{From: from, To: d}, msg)
		}
		return c.Send(control.Send{To: d}, msg)
	case etf.Atom:
		p := n.byName(d)
		if p == nil {
			return fmt.Errorf("process: send to %s: %w", d, ErrNoProcess)
		}
		p.deliver(msg, 0)
		return nil
	case Name:
		if d.Node == string(n.self) {
			if p := n.byName(d.Name); p != nil {
				p.deliver(msg, 0)
			}
			return nil
		}
		c, err := n.conn(d.Node)
		if err != nil {
			return err
		}
		return c.Send(control.RegSend{From: from, To: d.Name}, msg)
	case etf.Ref:
		if d.Node == n.self {
			if p := n.byAlias(d); p != nil {
				p.deliver(msg, 0)
			}
			return nil
		}
		c, err := n.conn(string(d.Node))
		if err != nil {
			return err
		}
		return c.Send(control.AliasSend{From: from, Alias: d}, msg)
	}
	return fmt.Errorf("process: send to %T: %w", to, ErrBadDestination)
}

// nameOf reads {Name, Node}.
func nameOf(t etf.Tuple) (Name, bool) {
	if len(t) != 2 {
		return Name{}, false
	}
	name, ok1 := t[0].(etf.Atom)
	nodeName, ok2 := t[1].(etf.Atom)
	return Name{Name: name, Node: string(nodeName)}, ok1 && ok2
}

// conn returns the connection to peer, connecting first when there is none.
func (n *Node) conn(peer string) (*node.Conn, error) {
	if c := n.Conn(peer); c != nil {
		return c, nil
	}
	if err := n.Connect(context.Background(), peer); err != nil {
		return nil, err
	}
	if c := n.Conn(peer); c != nil {
		return c, nil
	}
	return nil, fmt.Errorf("process: %s: %w", peer, node.ErrNotConnected)
}

// Reply answers a gen_server-style call: from is the {Pid, Tag} of the '$gen_call' message.
// A Tag of the form [alias|Ref] (OTP 24+ gen:call) or [[alias|Ref]|Ref2] (OTP 26+
// gen_server:multi_call) is answered through the alias, as gen:reply does.
func (n *Node) Reply(from etf.Term, reply etf.Term) error {
	return n.replyFrom(n.sender.pid, from, reply)
}

// Reply answers a gen_server-style call from p (see Node.Reply).
func (p *Process) Reply(from etf.Term, reply etf.Term) error {
	return p.n.replyFrom(p.pid, from, reply)
}

func (n *Node) replyFrom(self etf.Pid, from etf.Term, reply etf.Term) error {
	t, ok := from.(etf.Tuple)
	if !ok || len(t) != 2 {
		return fmt.Errorf("process: reply to %v: not a {Pid, Tag} pair: %w", from, ErrBadDestination)
	}
	pid, ok := t[0].(etf.Pid)
	if !ok {
		return fmt.Errorf("process: reply to %v: not a {Pid, Tag} pair: %w", from, ErrBadDestination)
	}
	if alias, ok := replyAlias(t[1]); ok {
		return n.send(self, alias, etf.Tuple{t[1], reply})
	}
	return n.send(self, pid, etf.Tuple{t[1], reply})
}

// replyAlias returns the alias a call tag names, as gen:reply reads it: [alias|Alias] (a
// gen:call of OTP 24+) or [[alias|Alias]|Ref] (a gen_server:multi_call of OTP 26+).
func replyAlias(tag etf.Term) (etf.Ref, bool) {
	l, ok := tag.(etf.ImproperList)
	if !ok || len(l.Elems) != 1 {
		return etf.Ref{}, false
	}
	if l.Elems[0] == atomAlias {
		alias, ok := l.Tail.(etf.Ref)
		return alias, ok
	}
	if inner, ok := l.Elems[0].(etf.ImproperList); ok && len(inner.Elems) == 1 && inner.Elems[0] == atomAlias {
		alias, ok := inner.Tail.(etf.Ref)
		return alias, ok
	}
	return etf.Ref{}, false
}
