package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/distribute-go/distribute/etf"
)

// ErrPang is matched (errors.Is) by a ping that reached the peer but was
// not answered with yes.
var ErrPang = errors.New("pang")

// Ping reports whether peer answers the net_kernel {is_auth, Node} call
// with yes, connecting first if needed: BEAM's net_adm:ping. Unlike
// net_adm:ping it is bounded by ctx, and a failed ping does not drop the
// link (call Disconnect for that).
func (n *Node) Ping(ctx context.Context, peer string) bool {
	_, err := n.PingRTT(ctx, peer)
	return err == nil
}

// PingRTT is Ping that says why it failed and how long the call took
// (the round trip of the is_auth call, not counting connection setup). A
// failure to connect is a *ConnectError; a link that answered something
// other than yes matches ErrPang; a ctx that ends first matches ctx.Err().
// A running node pinging its own name gets pong, as net_adm:ping(node())
// does.
func (n *Node) PingRTT(ctx context.Context, peer string) (time.Duration, error) {
	if peer == n.Self() && n.IsDistributed() {
		return 0, nil
	}
	l := n.link(peer) // fast path: an established link needs no Connect
	if l == nil {
		if err := n.Connect(ctx, peer); err != nil {
			return 0, err
		}
		l = n.link(peer)
	}
	if l == nil {
		return 0, fmt.Errorf("node: ping %s: %w", peer, errLinkClosed)
	}
	start := time.Now()
	r, err := l.call(ctx.Done(), atomNetKernel, etf.Tuple{atomIsAuth, etf.Atom(n.name)})
	rtt := time.Since(start)
	switch {
	case errors.Is(err, errCallAborted):
		return rtt, fmt.Errorf("node: ping %s: no answer: %w", peer, ctx.Err())
	case err != nil:
		return rtt, fmt.Errorf("node: ping %s: %w", peer, err)
	case r != atomYes:
		return rtt, fmt.Errorf("node: ping %s: answered %v: %w", peer, r, ErrPang)
	}
	return rtt, nil
}
