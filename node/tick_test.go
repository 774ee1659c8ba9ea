package node

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/handshake"
)

// TestTicksKeepIdleLinkUp: with a 1 s tick time, an idle link lives on for
// three tick times, because both sides tick.
func TestTicksKeepIdleLinkUp(t *testing.T) {
	t.Parallel()
	var evA, evB events
	port := freePort(t)
	a := startNode(t, shortName("a"), testCookie, Options{EPMDPort: port, TickTime: time.Second, OnEvent: evA.add})
	b := startNode(t, shortName("b"), testCookie, Options{EPMDPort: port, TickTime: time.Second, OnEvent: evB.add})
	require.NoError(t, a.Connect(testCtx(t, 5*time.Second), b.Self()))
	waitCount(t, b, 1, 2*time.Second)

	time.Sleep(3 * time.Second)
	assert.Equal(t, []string{b.Self()}, a.Nodes())
	assert.Equal(t, []string{a.Self()}, b.Nodes())
	assert.Zero(t, evA.count(EventLinkDown), "%v", evA.list())
	assert.Zero(t, evB.count(EventLinkDown), "%v", evB.list())
	assert.True(t, ping(a, testCtx(t, 2*time.Second), b.Self()))
}

// TestNodeTicksIdleLink: the node writes a tick (a 4-byte zero frame) on a
// link it has not written to for TickTime/4.
func TestNodeTicksIdleLink(t *testing.T) {
	t.Parallel()
	const tick = 400 * time.Millisecond
	n := startNode(t, shortName("n"), testCookie, Options{EPMDPort: freePort(t), TickTime: tick})
	p := dialRaw(t, n, shortName("raw"))
	start := time.Now()
	_ = p.conn.SetReadDeadline(time.Now().Add(2 * tick))
	var hdr [4]byte
	_, err := io.ReadFull(p.r, hdr[:])
	require.NoError(t, err)
	assert.Zero(t, binary.BigEndian.Uint32(hdr[:]), "the first frame on an idle link is a tick")
	assert.Less(t, time.Since(start), tick/4+200*time.Millisecond)
}

// TestSilentPeerDropped: a peer that completes the handshake (our node
// dials it) and then never writes is dropped within about TickTime.
func TestSilentPeerDropped(t *testing.T) {
	t.Parallel()
	const tick = time.Second
	var ev events
	port := freePort(t)
	a := startNode(t, shortName("a"), testCookie, Options{EPMDPort: port, TickTime: tick, OnEvent: ev.add})
	alive := uniqueAlive("silent")
	name := alive + "@localhost"
	lport := fakeListener(t, func(c net.Conn) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cfg := handshake.Config{Name: name, Cookie: testCookie, Creation: 5}
		if _, err := handshake.Accept(ctx, c, &cfg, nil); err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c) // read everything, write nothing
	})
	registerFake(t, port, alive, lport)

	require.NoError(t, a.Connect(testCtx(t, 5*time.Second), name))
	start := time.Now()
	require.Equal(t, []string{name}, a.Nodes())
	// Timers here can fire a few hundred milliseconds late (seen under
	// gVisor with -race), hence the generous slack.
	waitCount(t, a, 0, 2*tick)
	elapsed := time.Since(start)
	assert.Less(t, elapsed, 2*tick)
	assert.Greater(t, elapsed, tick/4, "dropped by the tick check, not at once")

	require.Eventually(t, func() bool { return ev.count(EventLinkDown) == 1 }, time.Second, 5*time.Millisecond)
	for _, e := range ev.list() {
		if e.Kind == EventLinkDown {
			assert.Equal(t, name, e.Peer)
			assert.True(t, errors.Is(e.Err, errTickTimeout), "reason: %v", e.Err)
		}
	}
}
