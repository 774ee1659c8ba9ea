package process

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/node"
)

// ErrPang is matched (errors.Is) by a ping that reached the peer but was not answered yes.
var ErrPang = errors.New("pang")

var (
	errAborted        = errors.New("aborted")
	errHandlerProcess = errors.New("process: a handler process has no mailbox to receive from")
)

// netKernelHandler is the built-in net_kernel. It answers what BEAM's net_kernel answers a
// peer: {is_auth, Node} with yes (net_adm:ping from BEAM is then pong), longnames, nodename,
// ticktime, {connect, Type, Node} and {passive_cnct, Node} (true or false, once the connection
// attempt ends), {disconnect, Node}; system messages (sys:get_state and friends) get
// {error, {unknown_system_msg, Req}}, so sys raises at once instead of timing out. Like BEAM's
// net_kernel, it does not answer a call it does not know.
func (n *Node) netKernelHandler(p *Process, m etf.Term) {
	t, ok := m.(etf.Tuple)
	if !ok || len(t) != 3 {
		return
	}
	switch t[0] {
	case atomGenCall:
	case etf.Atom("system"):
		_ = p.Reply(t[1], etf.Tuple{etf.Atom("error"), etf.Tuple{etf.Atom("unknown_system_msg"), t[2]}})
		return
	default:
		return
	}
	from := t[1]
	switch req := t[2].(type) {
	case etf.Atom:
		switch req {
		case "longnames":
			_ = p.Reply(from, etf.Atom(strconv.FormatBool(node.IsLongName(n.Self()))))
		case "nodename":
			_ = p.Reply(from, n.self)
		case "ticktime":
			tick := n.opts.Node.TickTime
			if tick <= 0 {
				tick = node.DefaultTickTime
			}
			_ = p.Reply(from, int64(tick/time.Second))
		default:
			n.log.Debug("unsupported net_kernel call ignored", "request", req)
		}
	case etf.Tuple:
		switch {
		case len(req) == 2 && req[0] == atomIsAuth:
			_ = p.Reply(from, atomYes)
		case len(req) == 3 && req[0] == etf.Atom("connect"), len(req) == 2 && req[0] == etf.Atom("passive_cnct"):
			peer, ok := req[len(req)-1].(etf.Atom)
			if !ok {
				return
			}
			// Connecting takes up to the setup time: not on the connection's reader.
			go func() {
				err := n.Connect(context.Background(), string(peer))
				ok := err == nil || string(peer) == n.Self()
				_ = p.Reply(from, etf.Atom(strconv.FormatBool(ok)))
			}()
		case len(req) == 2 && req[0] == etf.Atom("disconnect"):
			peer, ok := req[1].(etf.Atom)
			if !ok {
				return
			}
			_ = p.Reply(from, etf.Atom(strconv.FormatBool(n.Disconnect(string(peer)))))
		default:
			n.log.Debug("unsupported net_kernel call ignored", "request", req)
		}
	}
}

// Ping reports whether peer answers the net_kernel {is_auth, Node} call with yes, connecting
// first if needed: BEAM's net_adm:ping. Unlike net_adm:ping it is bounded by ctx, and a failed
// ping does not drop the connection (call Disconnect for that).
func (n *Node) Ping(ctx context.Context, peer string) bool {
	_, err := n.PingRTT(ctx, peer)
	return err == nil
}

// PingRTT is Ping that says why it failed and how long the call took (the round trip of the
// is_auth call, not counting connection setup). A failure to connect is a *node.ConnectError;
// an answer other than yes matches ErrPang; a ctx that ends first matches ctx.Err(); a
// connection that goes down meanwhile matches node.ErrNotConnected. A running node pinging its
// own name gets pong, as net_adm:ping(node()) does.
func (n *Node) PingRTT(ctx context.Context, peer string) (time.Duration, error) {
	if n == nil || n.Node == nil {
		return 0, &node.ConnectError{Kind: node.ConnectIgnored, Node: peer, Detail: "this node is not distributed"}
	}
	if peer == n.Self() && n.IsDistributed() {
		return 0, nil
	}
	c := n.Conn(peer)
	if c == nil {
		if err := n.Connect(ctx, peer); err != nil {
			return 0, err
		}
		if c = n.Conn(peer); c == nil {
			return 0, fmt.Errorf("process: ping %s: %w", peer, node.ErrNotConnected)
		}
	}
	p := n.Spawn()
	defer p.exit(atomNormal)
	ref := n.MakeRef()
	start := time.Now()
	err := c.Send(control.RegSend{From: p.pid, To: atomNetKernel},
		etf.Tuple{atomGenCall, etf.Tuple{p.pid, ref}, etf.Tuple{atomIsAuth, n.self}})
	if err != nil {
		return 0, fmt.Errorf("process: ping %s: %w: %w", peer, node.ErrNotConnected, err)
	}
	r, err := p.receive(ctx, func(t etf.Term) bool {
		m, ok := t.(etf.Tuple)
		return ok && len(m) == 2 && m[0] == ref
	}, c.Done())
	rtt := time.Since(start)
	switch {
	case errors.Is(err, errAborted):
		return rtt, fmt.Errorf("process: ping %s: %w: %v", peer, node.ErrNotConnected, c.Err())
	case err != nil:
		return rtt, fmt.Errorf("process: ping %s: no answer: %w", peer, err)
	}
	if reply := r.(etf.Tuple)[1]; reply != atomYes {
		return rtt, fmt.Errorf("process: ping %s: answered %v: %w", peer, reply, ErrPang)
	}
	return rtt, nil
}
