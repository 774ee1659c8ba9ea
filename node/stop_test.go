package node

import (
	"context"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/distribute-go/distribute/epmd"
)

// epmdNames lists the alive names registered at the EPMD on port (nil if
// it does not answer).
func epmdNames(port int) []string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c := epmd.Client{Port: port}
	entries, err := c.Names(ctx, "")
	if err != nil {
		return nil
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Name)
	}
	return out
}

func aliveOf(n *Node) string {
	a, _ := splitName(n.Self())
	return a
}

// TestStop is not parallel: it checks that the nodes leave no goroutine
// behind, against the goroutines alive when it starts.
func TestStop(t *testing.T) {
	leak := goleak.IgnoreCurrent()
	port := freePort(t)
	var evB events
	a := startNode(t, shortName("a"), testCookie, Options{EPMDPort: port}) // starts the embedded EPMD
	b := startNode(t, shortName("b"), testCookie, Options{EPMDPort: port, OnEvent: evB.add})
	require.NoError(t, b.Connect(testCtx(t, 5*time.Second), a.Self()))
	waitCount(t, a, 1, 2*time.Second)
	names := epmdNames(port)
	require.Contains(t, names, aliveOf(a))
	require.Contains(t, names, aliveOf(b))

	require.NoError(t, a.Stop())
	assert.False(t, a.IsDistributed())
	assert.False(t, a.EPMDRegistered())
	assert.Empty(t, a.Nodes())
	// Unregistered, while the EPMD it started stays up for b.
	require.Eventually(t, func() bool {
		n := epmdNames(port)
		return !slices.Contains(n, aliveOf(a)) && slices.Contains(n, aliveOf(b))
	}, 2*time.Second, 10*time.Millisecond, "names: %v", epmdNames(port))
	// The peer sees the link go down.
	waitCount(t, b, 0, 2*time.Second)
	require.Eventually(t, func() bool { return evB.count(EventLinkDown) == 1 }, 2*time.Second, 5*time.Millisecond)
	// a cannot be found any more.
	assert.ErrorIs(t, b.Connect(testCtx(t, 5*time.Second), a.Self()), ErrNodeNotFound)

	assert.NoError(t, a.Stop(), "a second Stop is a no-op")
	require.NoError(t, b.Stop())
	assert.NoError(t, b.Stop())
	// The last node gone, the embedded EPMD is closed and its port free.
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err, "the embedded EPMD port is released")
	require.NoError(t, ln.Close())
	goleak.VerifyNone(t, leak)
}

// TestStopDuringConnect: Stop ends a pending Connect at once, and waits for
// the node's goroutines, even with a peer that never answers.
func TestStopDuringConnect(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	a := startNode(t, shortName("a"), testCookie, Options{EPMDPort: port, SetupTimeout: 30 * time.Second})
	alive := uniqueAlive("blackhole")
	lport := fakeListener(t, func(c net.Conn) { _, _ = c.Read(make([]byte, 1)) })
	registerFake(t, port, alive, lport)
	// An inbound handshake that never progresses, too.
	raw, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port())))
	require.NoError(t, err)
	defer raw.Close()

	res := make(chan error, 1)
	go func() { res <- a.Connect(context.Background(), alive+"@localhost") }()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	require.NoError(t, a.Stop())
	assert.Less(t, time.Since(start), time.Second)
	select {
	case err := <-res:
		require.Error(t, err)
		assert.NotErrorIs(t, err, ErrAuth)
	case <-time.After(time.Second):
		t.Fatal("Connect still blocked after Stop")
	}
}

// TestEPMDRestartExternal: the EPMD another program runs goes away and
// comes back on the same port; the nodes register again within 3 s and
// their links stay up meanwhile.
func TestEPMDRestartExternal(t *testing.T) {
	t.Parallel()
	port, srv := startEPMD(t)
	var evA, evB events
	a := startNode(t, shortName("a"), testCookie, Options{EPMD: EPMDExternal, EPMDPort: port, OnEvent: evA.add})
	b := startNode(t, shortName("b"), testCookie, Options{EPMD: EPMDExternal, EPMDPort: port, OnEvent: evB.add})
	require.NoError(t, a.Connect(testCtx(t, 5*time.Second), b.Self()))
	waitCount(t, b, 1, 2*time.Second)

	require.NoError(t, srv.Close())
	require.Eventually(t, func() bool { return !a.EPMDRegistered() && !b.EPMDRegistered() }, 2*time.Second, 5*time.Millisecond)
	assert.Nil(t, epmdNames(port), "no EPMD answers")

	serveEPMD(t, port)
	start := time.Now()
	require.Eventually(t, func() bool {
		n := epmdNames(port)
		return slices.Contains(n, aliveOf(a)) && slices.Contains(n, aliveOf(b))
	}, 3*time.Second, 20*time.Millisecond, "names: %v", epmdNames(port))
	t.Logf("registered again after %v", time.Since(start))
	assert.True(t, a.EPMDRegistered())
	assert.True(t, b.EPMDRegistered())
	assert.GreaterOrEqual(t, evA.count(EventEPMDLost), 1)
	require.Eventually(t, func() bool { return evA.count(EventEPMDRegistered) >= 1 }, 2*time.Second, 5*time.Millisecond)

	// The links never went down.
	assert.Equal(t, []string{b.Self()}, a.Nodes())
	assert.Equal(t, []string{a.Self()}, b.Nodes())
	assert.Zero(t, evA.count(EventLinkDown))
	assert.Zero(t, evB.count(EventLinkDown))
	assert.True(t, ping(a, testCtx(t, 2*time.Second), b.Self()))
	// And a new peer finds them through the new EPMD.
	c := startNode(t, shortName("c"), testCookie, Options{EPMD: EPMDExternal, EPMDPort: port})
	assert.True(t, ping(c, testCtx(t, 5*time.Second), a.Self()))
}

// TestEPMDGoneEmbeddedTakesOver: in embedded mode, when the EPMD the nodes
// used goes away, they start the embedded one on that port and register
// there; links stay up.
func TestEPMDGoneEmbeddedTakesOver(t *testing.T) {
	t.Parallel()
	port, srv := startEPMD(t)
	var evA events
	a := startNode(t, shortName("a"), testCookie, Options{EPMDPort: port, OnEvent: evA.add})
	b := startNode(t, shortName("b"), testCookie, Options{EPMDPort: port})
	require.NoError(t, a.Connect(testCtx(t, 5*time.Second), b.Self()))

	require.NoError(t, srv.Close())
	require.Eventually(t, func() bool {
		n := epmdNames(port)
		return slices.Contains(n, aliveOf(a)) && slices.Contains(n, aliveOf(b))
	}, 3*time.Second, 20*time.Millisecond, "names: %v", epmdNames(port))
	assert.Equal(t, []string{b.Self()}, a.Nodes())
	assert.Zero(t, evA.count(EventLinkDown))
	assert.True(t, ping(b, testCtx(t, 2*time.Second), a.Self()))

	require.NoError(t, a.Stop())
	require.NoError(t, b.Stop())
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err, "the embedded EPMD is closed with its last node")
	require.NoError(t, ln.Close())
}
