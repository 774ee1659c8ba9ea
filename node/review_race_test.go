package node

import (
	"encoding/binary"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/handshake"
)

// reviewNameMsg is a v6 name message ('N') under name, with its 2-byte length.
func reviewNameMsg(name string) []byte {
	msg := []byte{'N'}
	msg = binary.BigEndian.AppendUint64(msg, uint64(handshake.DefaultFlags))
	msg = binary.BigEndian.AppendUint32(msg, 42)
	msg = binary.BigEndian.AppendUint16(msg, uint16(len(name)))
	msg = append(msg, name...)
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...)
}

func reviewReadFrame(c net.Conn) ([]byte, error) {
	var hdr [2]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	_, err := io.ReadFull(c, b)
	return b, err
}

func reviewPending(n *Node, peer string) *attempt {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.pending[peer]
}

// TestReviewInboundChainStarvesConnect: a Connect call that joins a pending
// inbound attempt never dials while name messages under the peer's name keep
// replacing each other (decide, case a.inbound): a replaced handshake ends
// without ending the attempt, and each replacement brings its own fresh
// SetupTimeout. Anyone who can reach the listener (no cookie needed) keeps a
// node from ever connecting to a healthy, reachable peer; with a context
// without deadline, Connect never returns.
func TestReviewInboundChainStarvesConnect(t *testing.T) {
	const setup = 500 * time.Millisecond
	port := freePort(t)
	// a sorts higher, so while its own dial is pending it answers the
	// impostor nok (as BEAM does): a fixed node connects.
	a := startNode(t, shortName("z"), testCookie, Options{EPMDPort: port, SetupTimeout: setup})
	b := startNode(t, shortName("b"), testCookie, Options{EPMDPort: port, SetupTimeout: setup})
	require.Greater(t, a.Self(), b.Self())

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		close(stop)
		wg.Wait()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	impostor := func() {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port())), time.Second)
		if err != nil {
			return
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		_, _ = c.Write(reviewNameMsg(b.Self())) // then stall, holding the connection
	}
	impostor()
	require.Eventually(t, func() bool { return reviewPending(a, b.Self()) != nil }, 2*time.Second, time.Millisecond)
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(setup / 2)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				impostor()
			}
		}
	}()

	// Budget: 8 setup times, twice what the documented bound (one attempt
	// plus three retries) needs; the peer is up and reachable all along.
	start := time.Now()
	err := a.Connect(testCtx(t, 8*setup), b.Self())
	assert.NoError(t, err, "b is healthy and reachable; Connect waited %v for a handshake chain it never dialled past",
		time.Since(start).Round(time.Millisecond))
}

// TestReviewStaleNameKillsLiveHandshake: the name message of a dial that its
// node already closed (the loser's yielded dial of a simultaneous connect,
// delivered late) is decided after the same peer's genuine, live handshake;
// decide's "newer replaces pending" rule closes the live one in favour of the
// dead one, and the genuine peer's Connect fails although both nodes are
// healthy. The proxy only slows b's traffic to a (a slow network), so that
// b's genuine handshake is still in progress at a when the stale name
// message is decided.
func TestReviewStaleNameKillsLiveHandshake(t *testing.T) {
	// a sorts higher, like the winner of a simultaneous connect, the only
	// side a yielded dial's name message can reach; BEAM's accept_pending
	// answers nok to the newer one here and keeps the live handshake.
	a := startNode(t, shortName("z"), testCookie, Options{EPMDPort: freePort(t)})
	bPort := freePort(t)
	b := startNode(t, shortName("b"), testCookie, Options{EPMDPort: bPort})
	require.Greater(t, a.Self(), b.Self())

	release := make(chan struct{})
	var releaseOnce sync.Once
	doRelease := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(doRelease)
	proxy := fakeListener(t, func(c net.Conn) {
		up, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port())))
		if err != nil {
			_ = c.Close()
			return
		}
		defer up.Close()
		done := make(chan struct{})
		go func() { _, _ = io.Copy(up, c); close(done) }()
		<-release // a's answers reach b late
		_, _ = io.Copy(c, up)
		_ = c.Close()
		<-done
	})
	alive, _ := splitName(a.Self())
	registerFake(t, bPort, alive, proxy) // b finds a behind the proxy

	connErr := make(chan error, 1)
	go func() { connErr <- b.Connect(testCtx(t, 5*time.Second), a.Self()) }()
	// b's genuine handshake is pending at a (status sent, held by the proxy).
	require.Eventually(t, func() bool { return reviewPending(a, b.Self()) != nil }, 3*time.Second, time.Millisecond)

	// The stale name message: sent by a dial that is already closed.
	stale, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port())))
	require.NoError(t, err)
	_, err = stale.Write(reviewNameMsg(b.Self()))
	require.NoError(t, err)
	require.NoError(t, stale.Close())
	time.Sleep(100 * time.Millisecond) // a decides it
	doRelease()

	select {
	case err = <-connErr:
	case <-time.After(8 * time.Second):
		require.FailNow(t, "Connect did not return")
	}
	assert.NoError(t, err, "a and b are healthy; a dead connection's name message must not kill b's live handshake")
}

// TestReviewAliveHandshakeOverridesNewerDial (a stall emulated by a fake
// peer): b holds a link to fake peer a that a has dropped. a dials again
// (conn2) and gets "alive" (decide: an attempt H that is not in n.pending).
// b then sees the old link die, and b.Connect(a) starts its own dial Y
// (nothing pending). a answers Y "alive", b's stillDialing says true (Y is
// pending), so by the protocol a now drops everything but conn3. Y completes
// and installs its link; Connect returns. Then H completes (in real life: its
// goroutine stalled between writing the ack and addLink) and addLink installs
// it too, since H.in == conn2 is all it checks, replacing Y's link: b keeps
// conn2, which a has dropped, and closes conn3, which a keeps. Both links die.
func TestReviewAliveHandshakeOverridesNewerDial(t *testing.T) {
	var ev events
	port := freePort(t)
	b := startNode(t, shortName("b"), testCookie, Options{EPMDPort: port, OnEvent: ev.add})
	aName := shortName("a")
	aAlive, _ := splitName(aName)

	conn3Closed := make(chan struct{})
	fakePort := fakeListener(t, func(c net.Conn) { // a's listener: b's dial Y lands here
		cfg := handshake.Config{Name: aName, Cookie: testCookie, Creation: 0x55}
		_, err := handshake.Accept(testCtx(t, 5*time.Second), c, &cfg, func(handshake.Peer) handshake.Status {
			return handshake.StatusAlive // a has the link it made on conn2
		})
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, c)
		close(conn3Closed)
	})
	registerFake(t, port, aAlive, fakePort)

	old := dialRaw(t, b, aName) // the link a has dropped and b not yet
	waitCount(t, b, 1, 2*time.Second)

	conn2, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port())))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn2.Close() })
	require.NoError(t, conn2.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = conn2.Write(reviewNameMsg(aName))
	require.NoError(t, err)
	st, err := reviewReadFrame(conn2)
	require.NoError(t, err)
	require.Equal(t, "salive", string(st))

	require.NoError(t, old.conn.Close())
	waitCount(t, b, 0, 2*time.Second)
	mark := ev.count(EventHandshakeOK)

	require.NoError(t, b.Connect(testCtx(t, 5*time.Second), aName), "Y: b's own dial, answered alive/true")
	require.Equal(t, mark+1, ev.count(EventHandshakeOK))

	// H goes on: true, b's challenge, our reply, b's ack.
	_, err = conn2.Write([]byte{0, 5, 's', 't', 'r', 'u', 'e'})
	require.NoError(t, err)
	ch, err := reviewReadFrame(conn2)
	require.NoError(t, err)
	require.Equal(t, byte('N'), ch[0])
	d := handshake.Digest(testCookie, binary.BigEndian.Uint32(ch[9:13]))
	reply := append([]byte{0, 21, 'r', 0, 0, 0, 7}, d[:]...)
	_, err = conn2.Write(reply)
	require.NoError(t, err)
	_, _ = reviewReadFrame(conn2) // the ack, if b sends it

	time.Sleep(100 * time.Millisecond) // a second install would be done by now
	select {
	case <-conn3Closed:
		assert.Fail(t, "b replaced the link of the dial it had just answered alive/true on (conn3) with the older alive handshake (conn2)",
			"events: %v", ev.list())
	default:
	}
	assert.Equal(t, mark+1, ev.count(EventHandshakeOK), "one link after the link drop: %v", ev.list())
}
