package node

import (
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/handshake"
)

// TestTickDetectionWindow: like BEAM's dist_util, a link is dropped on the
// fourth tick check in a row that saw nothing read, so a peer that falls
// silent just after a check is dropped 1.25 T later, the top of BEAM's
// documented window (0.75 T .. 1.25 T), after four more ticks from us.
func TestTickDetectionWindow(t *testing.T) {
	t.Parallel()
	const tick = time.Second
	n := startNode(t, shortName("n"), testCookie, Options{EPMDPort: freePort(t), TickTime: tick})
	p := dialRaw(t, n, shortName("raw"))
	var hdr [4]byte
	readTick := func() error {
		_ = p.conn.SetReadDeadline(time.Now().Add(2 * tick))
		if _, err := io.ReadFull(p.r, hdr[:]); err != nil {
			return err
		}
		require.Zero(t, binary.BigEndian.Uint32(hdr[:]), "only ticks on an idle link")
		return nil
	}
	// Answer three of the node's ticks at once, then fall silent.
	for range 3 {
		require.NoError(t, readTick())
		p.writeRaw([]byte{0, 0, 0, 0})
	}
	silent := time.Now()
	ticks := 0
	for readTick() == nil {
		ticks++
	}
	elapsed := time.Since(silent)
	assert.Equal(t, 4, ticks, "ticks from the node between our silence and the drop")
	assert.GreaterOrEqual(t, elapsed, tick, "not dropped before T of silence")
	assert.Less(t, elapsed, tick*5/4+500*time.Millisecond, "dropped about 1.25 T after the silence began")
	waitCount(t, n, 0, 2*time.Second)
}

// TestEPMDClientMode: a client node registers nowhere and starts no EPMD,
// yet finds its peers at the EPMD.
func TestEPMDClientMode(t *testing.T) {
	t.Parallel()
	ep := freePort(t)
	b := startNode(t, longName("b"), testCookie, Options{EPMDPort: ep})
	assert.True(t, b.StartedEPMD(), "b found no EPMD and started one")
	b2 := startNode(t, longName("b2"), testCookie, Options{EPMDPort: ep})
	assert.False(t, b2.StartedEPMD(), "b2 used the EPMD b started")

	c := startNode(t, longName("c"), testCookie, Options{EPMDPort: ep, EPMD: EPMDClient})
	assert.False(t, c.StartedEPMD())
	assert.False(t, c.EPMDRegistered())
	_, err := pingRTT(c, testCtx(t, 5*time.Second), b.Self())
	require.NoError(t, err)
	names, err := (&epmd.Client{Port: ep}).Names(testCtx(t, 5*time.Second), "127.0.0.1")
	require.NoError(t, err)
	for _, e := range names {
		assert.NotEqual(t, strings.Split(c.Self(), "@")[0], e.Name, "the client node is not registered")
	}

	// No EPMD on its port: the client node starts all the same, and starts none.
	free := freePort(t)
	d := startNode(t, longName("d"), testCookie, Options{EPMDPort: free, EPMD: EPMDClient})
	err = d.Connect(testCtx(t, 5*time.Second), b.Self())
	require.Error(t, err)
	_, derr := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(free)), time.Second)
	assert.Error(t, derr, "nothing listens on the EPMD port")
	assert.Equal(t, "client", EPMDClient.String())
}

// TestWarnInboundWrongCookie: an inbound handshake with a wrong cookie is
// logged at WARN with the peer's address, at most once per authWarnEvery;
// the next line says how many were left out.
func TestWarnInboundWrongCookie(t *testing.T) {
	t.Parallel()
	log, buf := debugLogger(t)
	var ev events
	n := startNode(t, shortName("n"), testCookie, Options{EPMDPort: freePort(t), Logger: log, OnEvent: ev.add})
	for range 3 {
		conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port())))
		require.NoError(t, err)
		cfg := handshake.Config{Name: shortName("bad"), Cookie: "WrongCookie77", Creation: 9}
		_, err = handshake.Initiate(testCtx(t, 5*time.Second), conn, &cfg, n.Self())
		assert.Error(t, err)
		_ = conn.Close()
	}
	require.Eventually(t, func() bool { return ev.count(EventHandshakeFailed) == 3 }, 5*time.Second, 5*time.Millisecond)
	warns := buf.Lines("level=WARN", "wrong cookie")
	require.Len(t, warns, 1, buf.String())
	assert.Contains(t, warns[0], "remote=127.0.0.1:")
	assert.NotContains(t, buf.String(), "WrongCookie77")
	assert.NotContains(t, buf.String(), testCookie)
	for _, e := range ev.list() {
		if e.Kind == EventHandshakeFailed {
			assert.True(t, strings.HasPrefix(e.Addr, "127.0.0.1:"), e.Addr)
		}
	}
}

// TestWarnInboundWrongCookieConcurrent (regression; the race detector caught it in
// TestWrongCookie): wrong-cookie handshakes failing at the same time each set the rate
// limiter's interval, a data race. Run with -race.
func TestWarnInboundWrongCookieConcurrent(t *testing.T) {
	t.Parallel()
	var ev events
	n := startNode(t, shortName("n"), testCookie, Options{EPMDPort: freePort(t), OnEvent: ev.add})
	const k = 16
	var wg sync.WaitGroup
	for range k {
		wg.Go(func() {
			conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port())))
			if !assert.NoError(t, err) {
				return
			}
			defer conn.Close()
			cfg := handshake.Config{Name: shortName("bad"), Cookie: "WrongCookie77", Creation: 9}
			_, err = handshake.Initiate(testCtx(t, 10*time.Second), conn, &cfg, n.Self())
			assert.ErrorIs(t, err, handshake.ErrAuth)
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool { return ev.count(EventHandshakeFailed) == k }, 10*time.Second, 5*time.Millisecond)
}
