package node

import (
	"encoding/binary"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/handshake"
)

// nokPeer registers a fake peer named name that answers every dial "nok"
// (it claims a simultaneous connect it wins), so the node's dial waits for
// the peer's inbound handshake in dial's ErrSimultaneous branch.
func nokPeer(t *testing.T, epmdPort int, name string) {
	fake := fakeListener(t, func(c net.Conn) {
		cfg := handshake.Config{Name: name, Cookie: testCookie, Creation: 7}
		_, _ = handshake.Accept(testCtx(t, 5*time.Second), c, &cfg, func(handshake.Peer) handshake.Status {
			return handshake.StatusNok
		})
		_ = c.Close()
	})
	alive, _ := splitName(name)
	registerFake(t, epmdPort, alive, fake)
}

// waitDialLost waits until n's attempt to peer is pending with its dial
// lost (dialLost) and returns it.
func waitDialLost(t *testing.T, n *Node, peer string) *attempt {
	var a *attempt
	require.Eventually(t, func() bool {
		n.mu.Lock()
		defer n.mu.Unlock()
		a = n.pending[peer]
		return a != nil && a.dial == dialLost && len(a.ins) == 0
	}, 3*time.Second, time.Millisecond)
	return a
}

// TestAttemptInboundFailureIsNotRewritten (regression; found in review): a
// dial waiting in its ErrSimultaneous branch woke on its own ctx after the
// joined inbound handshake had failed and finished the attempt
// (inboundFailed=true), and wrote a.inboundFailed = a.yielded (false) after
// done was closed: a data race with Connect's read, and Connect then did not
// dial again. endLocked now sets the field, once, before done closes.
func TestAttemptInboundFailureIsNotRewritten(t *testing.T) {
	const setup = 300 * time.Millisecond
	port := freePort(t)
	bName := shortName("b")
	a := startNode(t, shortName("z"), testCookie, Options{EPMDPort: port, SetupTimeout: setup,
		testEmitted: func(e Event) {
			if e.Kind == EventHandshakeFailed && !e.Inbound {
				time.Sleep(100 * time.Millisecond) // a slow metrics hook: widens dial's window
			}
		}})
	nokPeer(t, port, bName) // after a: a's embedded EPMD is up

	connErr := make(chan error, 1)
	go func() { connErr <- a.Connect(testCtx(t, 5*time.Second), bName) }()
	p := waitDialLost(t, a, bName)

	// A handshake under b's name joins p and stalls until p's setup time.
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port())))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = c.Write(rawNameMsg(bName))
	require.NoError(t, err)

	<-p.done
	// Read as Connect does: unlocked, after done (the documented contract).
	readAfterDone := p.inboundFailed
	time.Sleep(300 * time.Millisecond) // p's dial goroutine has ended by now
	a.mu.Lock()
	failed := p.inboundFailed
	a.mu.Unlock()
	assert.True(t, readAfterDone)
	assert.True(t, failed, "p was ended by the joined inbound handshake failing, err=%v", p.err)
	<-connErr
}

// TestAttemptWonIsNotFailedByDial (regression; found in review): addLink
// cleared a.ins and unlocked n.mu before it finished the attempt; a dial that
// had lost a simultaneous connect and whose ctx ended in that window saw no
// joined handshake and finished the attempt with its own error, so Connect
// failed although the peer's handshake had just installed the link. addLink
// now marks the attempt won first; nothing else may end a won attempt.
func TestAttemptWonIsNotFailedByDial(t *testing.T) {
	const setup = 400 * time.Millisecond
	port := freePort(t)
	bName := shortName("b")
	a := startNode(t, shortName("z"), testCookie, Options{EPMDPort: port, SetupTimeout: setup,
		testEmitted: func(e Event) {
			if e.Kind == EventHandshakeOK && e.Inbound {
				time.Sleep(40 * time.Millisecond) // a slow metrics hook: widens addLink's window
			}
		}})
	nokPeer(t, port, bName) // after a: a's embedded EPMD is up

	connErr := make(chan error, 1)
	go func() { connErr <- a.Connect(testCtx(t, 5*time.Second), bName) }()
	p := waitDialLost(t, a, bName)
	dl, ok := p.ctx.Deadline()
	require.True(t, ok)

	// b's genuine handshake, finished shortly before the setup time.
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port())))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = c.Write(rawNameMsg(bName))
	require.NoError(t, err)
	st, err := rawReadFrame(c)
	require.NoError(t, err)
	require.Equal(t, "sok", string(st))
	ch, err := rawReadFrame(c)
	require.NoError(t, err)
	require.Equal(t, byte('N'), ch[0])
	time.Sleep(time.Until(dl.Add(-15 * time.Millisecond)))
	d := handshake.Digest(testCookie, binary.BigEndian.Uint32(ch[9:13]))
	_, err = c.Write(append([]byte{0, 21, 'r', 0, 0, 0, 7}, d[:]...))
	require.NoError(t, err)
	ack, err := rawReadFrame(c)
	require.NoError(t, err)
	require.Equal(t, byte('a'), ack[0])

	err = <-connErr
	assert.NoError(t, err, "b's handshake installed the link; links now: %v", a.Nodes())
	assert.Equal(t, []string{bName}, a.Nodes())
}
