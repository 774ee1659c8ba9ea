package node

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
)

// reentrantHandler calls back into the node from every Handler method.
type reentrantHandler struct {
	*testHandler
	n       atomic.Pointer[Node]
	ups     atomic.Int64
	downs   atomic.Int64
	stopped chan error
}

func (h *reentrantHandler) ConnUp(c *Conn) {
	if h.ups.Add(1) == 1 {
		h.n.Load().Disconnect(c.Peer()) // the first connection is refused at once
	}
}

func (h *reentrantHandler) ConnDown(c *Conn, reason error) {
	_ = h.n.Load().Nodes()
	h.downs.Add(1)
}

func (h *reentrantHandler) HandleMessage(c *Conn, m control.Message, p control.Payload) {
	if rs, ok := m.(control.RegSend); ok && rs.To == "stop_now" {
		h.stopped <- h.n.Load().Stop()
		return
	}
	h.testHandler.HandleMessage(c, m, p)
}

// TestHandlerReentrant: the Handler may call the node's methods, Disconnect and Stop
// included, from ConnUp and HandleMessage: nothing waits for the goroutine it runs on.
func TestHandlerReentrant(t *testing.T) {
	t.Parallel()
	h := &reentrantHandler{testHandler: newTestHandler(), stopped: make(chan error, 1)}
	var ev events
	n := startNode(t, shortName("n"), testCookie, Options{EPMDPort: freePort(t), Handler: h, OnEvent: ev.add})
	h.n.Store(n)

	p1 := dialRaw(t, n, shortName("refused"))
	p1.expectClosed(5 * time.Second)
	require.Eventually(t, func() bool { return h.downs.Load() == 1 }, 5*time.Second, 5*time.Millisecond)

	p2 := dialRaw(t, n, shortName("stopper"))
	waitCount(t, n, 1, 5*time.Second)
	assertUnlinkAck(t, p2)
	p2.send(etf.Tuple{int64(control.OpRegSend), p2.pid, atomEmpty, etf.Atom("stop_now")}, etf.Atom("please"))
	require.NoError(t, within(t, h.stopped, 10*time.Second, "Stop from HandleMessage"))
	assert.False(t, n.IsDistributed())
	p2.expectClosed(5 * time.Second)
	within(t, n.events.done, 10*time.Second, "the node finishing its stop")
	assert.Equal(t, int64(2), h.ups.Load())
	assert.Equal(t, int64(2), h.downs.Load(), "every ConnUp has its ConnDown")
	kinds := []EventKind{}
	for _, e := range ev.list() {
		kinds = append(kinds, e.Kind)
	}
	assert.Equal(t, []EventKind{EventHandshakeOK, EventLinkDown, EventHandshakeOK, EventLinkDown}, kinds)
}
