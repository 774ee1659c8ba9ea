package node

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
)

// The node is the link layer only: Ping lives in the process layer. Its tests prove links work
// both ways with testHandler, a Handler that plays a minimal net_kernel (it answers the
// {is_auth, Node} call with yes, as BEAM's does) and can make that call to a peer. Everything
// else goes to noProcesses, the node's own default, so the tests of noproc answers keep their
// meaning.

var (
	atomEmpty     = etf.Atom("")
	atomNetKernel = etf.Atom("net_kernel")
	atomGenCall   = etf.Atom("$gen_call")
	atomIsAuth    = etf.Atom("is_auth")
	atomYes       = etf.Atom("yes")
	// errPang: the peer answered the is_auth call with something other than yes.
	errPang = errors.New("pang")
)

// testHandler answers net_kernel is_auth calls and routes the replies to its own calls.
type testHandler struct {
	noProcesses
	node atomic.Pointer[Node]
	ids  atomic.Uint32

	mu      sync.Mutex
	pending map[etf.Ref]chan etf.Term
	msgs    atomic.Int64 // HandleMessage calls
}

func newTestHandler() *testHandler { return &testHandler{pending: map[etf.Ref]chan etf.Term{}} }

func (h *testHandler) HandleMessage(c *Conn, m control.Message, p control.Payload) {
	h.msgs.Add(1)
	switch m := m.(type) {
	case control.RegSend:
		if m.To == atomNetKernel {
			h.netKernel(c, p)
			return
		}
	case control.MonitorP:
		if m.To == atomNetKernel { // net_kernel exists: its monitor stays silent
			return
		}
	case control.Send, control.SendSender, control.AliasSend:
		h.reply(p)
		return
	}
	h.noProcesses.HandleMessage(c, m, p)
}

// netKernel answers {'$gen_call', {Pid, Tag}, {is_auth, _}} with {Tag, yes} to Pid; other
// messages to net_kernel get no answer.
func (h *testHandler) netKernel(c *Conn, p control.Payload) {
	t, err := p.Decode()
	if err != nil {
		return
	}
	call, ok := t.(etf.Tuple)
	if !ok || len(call) != 3 || call[0] != atomGenCall {
		return
	}
	from, ok := call[1].(etf.Tuple)
	if !ok || len(from) != 2 {
		return
	}
	pid, ok := from[0].(etf.Pid)
	req, ok2 := call[2].(etf.Tuple)
	if !ok || !ok2 || len(req) != 2 || req[0] != atomIsAuth {
		return
	}
	_ = c.Send(control.Send{To: pid}, etf.Tuple{from[1], atomYes})
}

// reply hands {Ref, Answer} to the call waiting for Ref.
func (h *testHandler) reply(p control.Payload) {
	t, err := p.Decode()
	if err != nil {
		return
	}
	r, ok := t.(etf.Tuple)
	if !ok || len(r) != 2 {
		return
	}
	ref, ok := r[0].(etf.Ref)
	if !ok {
		return
	}
	h.mu.Lock()
	ch := h.pending[ref]
	delete(h.pending, ref)
	h.mu.Unlock()
	if ch != nil {
		ch <- r[1]
	}
}

// call makes the is_auth call to net_kernel on peer over c and waits for the answer.
func (h *testHandler) call(ctx context.Context, n *Node, c *Conn) (etf.Term, error) {
	self := etf.Atom(n.Self())
	id := h.ids.Add(1)
	pid := etf.Pid{Node: self, ID: 1, Creation: n.Creation()}
	ref := etf.Ref{Node: self, Creation: n.Creation(), Len: 3, ID: [5]uint32{id, 0xbeef, 7}}
	ch := make(chan etf.Term, 1)
	h.mu.Lock()
	h.pending[ref] = ch
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.pending, ref)
		h.mu.Unlock()
	}()
	msg := etf.Tuple{atomGenCall, etf.Tuple{pid, ref}, etf.Tuple{atomIsAuth, self}}
	if err := c.Send(control.RegSend{From: pid, To: atomNetKernel}, msg); err != nil {
		return nil, err
	}
	select {
	case a := <-ch:
		return a, nil
	case <-c.Done():
		return nil, c.Err()
	case <-ctx.Done():
		return nil, fmt.Errorf("no answer: %w", ctx.Err())
	}
}

// pingRTT is the old Node.PingRTT, on top of the Handler: Connect when needed, then the
// is_auth call; a running node pinging itself gets pong.
func pingRTT(n *Node, ctx context.Context, peer string) (time.Duration, error) {
	if peer == n.Self() && n.IsDistributed() {
		return 0, nil
	}
	c := n.Conn(peer)
	if c == nil {
		if err := n.Connect(ctx, peer); err != nil {
			return 0, err
		}
		if c = n.Conn(peer); c == nil {
			return 0, fmt.Errorf("ping %s: %w", peer, ErrNotConnected)
		}
	}
	h, ok := n.handler.(*testHandler)
	if !ok {
		return 0, errors.New("ping: the node has no testHandler")
	}
	start := time.Now()
	a, err := h.call(ctx, n, c)
	rtt := time.Since(start)
	switch {
	case err != nil:
		return rtt, fmt.Errorf("ping %s: %w", peer, err)
	case a != atomYes:
		return rtt, fmt.Errorf("ping %s: answered %v: %w", peer, a, errPang)
	}
	return rtt, nil
}

// ping is pingRTT reduced to pong (true) or pang.
func ping(n *Node, ctx context.Context, peer string) bool {
	_, err := pingRTT(n, ctx, peer)
	return err == nil
}
