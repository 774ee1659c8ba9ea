package node

import (
	"errors"
	"net"
	"time"

	"github.com/distribute-go/distribute/handshake"
)

// authWarnEvery is the least time between two WARN lines about inbound
// handshakes refused for a wrong cookie; the ones in between are counted
// and the count goes with the next line.
const authWarnEvery = 5 * time.Second

// warnInboundAuth logs, at WARN and at most once per authWarnEvery, an
// inbound handshake that failed because the peer's cookie was wrong (BEAM
// logs these at error level). It names the peer and its address, never a
// cookie.
func (n *Node) warnInboundAuth(peer string, remote net.Addr, err error) {
	if !errors.Is(err, handshake.ErrAuth) {
		return
	}
	ok, suppressed := n.authWarn.Allow(time.Now())
	if !ok {
		return
	}
	n.log.Warn("inbound connection refused: wrong cookie", "peer", peer, "remote", remote.String(),
		"suppressed_since_last", suppressed)
}
