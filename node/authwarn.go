package node

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/distribute-go/distribute/handshake"
)

// authWarnEvery is the least time between two WARN lines about inbound
// handshakes refused for a wrong cookie; the ones in between are counted
// and the count goes with the next line.
const authWarnEvery = 5 * time.Second

// authWarn rate-limits the wrong-cookie warnings of one node.
type authWarn struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// warnInboundAuth logs, at WARN and at most once per authWarnEvery, an
// inbound handshake that failed because the peer's cookie was wrong (BEAM
// logs these at error level). It names the peer and its address, never a
// cookie.
func (n *Node) warnInboundAuth(peer string, remote net.Addr, err error) {
	if !errors.Is(err, handshake.ErrAuth) {
		return
	}
	w := &n.authWarn
	w.mu.Lock()
	now := time.Now()
	if !w.last.IsZero() && now.Sub(w.last) < authWarnEvery {
		w.suppressed++
		w.mu.Unlock()
		return
	}
	suppressed := w.suppressed
	w.last, w.suppressed = now, 0
	w.mu.Unlock()
	n.log.Warn("inbound connection refused: wrong cookie", "peer", peer, "remote", remote.String(),
		"suppressed_since_last", suppressed)
}
