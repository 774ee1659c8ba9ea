package ergo_test

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	eetf "github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// TestErgoAdvertisedFlags records the flags an ergo node advertises in its challenge (ergo composes
// the same set when it dials). It is published, offers the atom cache and fragments, and lacks
// UNLINK_ID, so OTP 26+ refuses it, and the digest bit MANDATORY_25_DIGEST. It also sets two bits of
// its own, 1<<62 (its proxy) and 1<<63 (its compression).
func TestErgoAdvertisedFlags(t *testing.T) {
	e := sharedErgo(t)

	conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(e.port)), 3*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	cfg := handshake.Config{Name: fullName("raw"), Cookie: testCookie, Creation: 0x5eed}
	res, err := handshake.Initiate(testCtx(t, 5*time.Second), conn, &cfg, e.Name())
	require.NoError(t, err)
	f := res.Peer.Flags
	t.Logf("ergo advertises %#x: %s", uint64(f), f)

	assert.Equal(t, 6, res.Peer.Version, "ergo answers a version 6 name with a version 6 challenge")
	assert.NotZero(t, res.Peer.Creation)
	for _, want := range []handshake.Flags{handshake.FlagPublished, handshake.FlagDistHdrAtomCache,
		handshake.FlagFragments, handshake.FlagHandshake23, handshake.FlagBigCreation, handshake.FlagV4NC,
		handshake.FlagAlias, handshake.FlagSpawn, handshake.Mandatory25, 1 << 62, 1 << 63} {
		assert.True(t, f.Has(want), "ergo should advertise %s", want)
	}
	for _, lacks := range []handshake.Flags{handshake.FlagUnlinkID, handshake.FlagMandatory25Digest,
		handshake.FlagSendSender, handshake.FlagExitPayload, handshake.FlagBigSeqTraceLabels} {
		assert.False(t, f.Has(lacks), "ergo should not advertise %s", lacks)
	}
	assert.False(t, f.Has(handshake.Mandatory26), "ergo lacks what OTP 26+ requires")
}

// TestOursPingsErgo: our node connects to an ergo node and both list each other; the link
// negotiates FRAGMENTS, so both sides frame messages with a distribution header (131 68 0), which
// ergo sends whatever was negotiated. Our ping reaches ergo's net_kernel, which answers is_auth with
// the atom 'nil' (its HandleCall returns no reply and ergo's gen.Server sends 'nil' for that), not
// 'yes'. So Ping is false, rightly: like net_adm:ping, it says pong only on yes. Unlike net_adm:ping,
// it keeps the link.
func TestOursPingsErgo(t *testing.T) {
	o, e := directPair(t, testCookie)

	require.NoError(t, o.Connect(testCtx(t, 5*time.Second), e.Name()))
	assert.Contains(t, o.Nodes(), e.Name())
	assert.Eventually(t, func() bool { return hasNode(e.Nodes(), o.Self()) }, 3*time.Second, 5*time.Millisecond,
		"ergo should list our node, lists %v", e.Nodes())
	ev := o.events.wait(t, node.EventHandshakeOK, e.Name()) // logged before this event
	assert.False(t, ev.Inbound)
	up := o.log.Lines(`msg="link up"`)
	require.Len(t, up, 1)
	t.Logf("negotiated with ergo (outbound): %s", up[0])
	assert.Contains(t, up[0], "inbound=false")
	assert.Contains(t, up[0], "negotiated_flags=")
	negotiated := strings.Fields(up[0][strings.Index(up[0], "negotiated_flags="):])[0]
	assert.Contains(t, negotiated, "FRAGMENTS", "header framing is negotiated")
	assert.NotContains(t, negotiated, "UNLINK_ID", "ergo lacks UNLINK_ID, so the negotiated set does too")

	for range 3 {
		_, err := o.PingRTT(testCtx(t, 5*time.Second), e.Name())
		require.Error(t, err)
		assert.ErrorIs(t, err, process.ErrPang)
		assert.ErrorContains(t, err, "answered nil")
	}
	assert.False(t, o.Ping(testCtx(t, 5*time.Second), e.Name()))
	assert.Equal(t, []string{e.Name()}, o.Nodes(), "a failed ping keeps the link")
	assert.Contains(t, e.Nodes(), o.Self())
	_, down := o.events.find(node.EventLinkDown, e.Name())
	assert.False(t, down, "the link never went down")
}

// TestErgoCallsOurs: an ergo node connects to ours and both list each other; an ergo process's
// gen_server call {is_auth, ErgoNode} to our net_kernel gets yes.
func TestErgoCallsOurs(t *testing.T) {
	o, e := directPair(t, testCookie)

	require.NoError(t, e.Connect(o.Self()))
	assert.Contains(t, e.Nodes(), o.Self())
	require.Eventually(t, func() bool { return hasNode(o.Nodes(), e.Name()) }, 3*time.Second, 5*time.Millisecond)
	ev := o.events.wait(t, node.EventHandshakeOK, e.Name())
	assert.True(t, ev.Inbound)

	res, err := isAuth(spawnCaller(t, e), o.Self(), 5)
	require.NoError(t, err)
	require.NoError(t, res.Err)
	assert.Equal(t, eetf.Atom("yes"), res.Reply)
	assert.Equal(t, []string{e.Name()}, o.Nodes())
	_, down := o.events.find(node.EventLinkDown, e.Name())
	assert.False(t, down, "the link never went down")
}

// TestWrongCookie: a cookie mismatch gives no link in either direction. Our Connect says ErrAuth (ergo,
// like BEAM, just closes the connection after a bad challenge reply); ergo's Connect says only "no
// route to node", while our node records the inbound failure as a rejected cookie.
func TestWrongCookie(t *testing.T) {
	t.Run("ours dials ergo", func(t *testing.T) {
		o, e := directPair(t, "another-cookie-1")
		err := o.Connect(testCtx(t, 5*time.Second), e.Name())
		require.Error(t, err)
		assert.ErrorIs(t, err, node.ErrAuth)
		assert.ErrorIs(t, err, handshake.ErrAuth)
		assert.Empty(t, o.Nodes())
		assert.NotContains(t, e.Nodes(), o.Self())
		assert.False(t, o.Ping(testCtx(t, 5*time.Second), e.Name()))
	})
	t.Run("ergo dials ours", func(t *testing.T) {
		o, e := directPair(t, "another-cookie-2")
		err := e.Connect(o.Self())
		require.Error(t, err)
		assert.ErrorIs(t, err, lib.ErrNoRoute, "all ergo says about it")
		ev := o.events.wait(t, node.EventHandshakeFailed, e.Name())
		assert.True(t, ev.Inbound)
		assert.ErrorIs(t, ev.Err, handshake.ErrAuth)
		assert.Empty(t, o.Nodes())
		assert.NotContains(t, e.Nodes(), o.Self())
	})
}

// TestManyErgoCalls: 2,000 is_auth calls from 8 concurrent ergo processes to our net_kernel,
// each with a fresh ergo reference as its tag, are all answered yes. Ergo matches a reply to its call
// by that reference (a reply with another tag is dropped and the call times out), so every call got
// its own tag back, to its own process: our node mixes up no replies.
func TestManyErgoCalls(t *testing.T) {
	const callers, perCaller = 8, 250
	o, e := directPair(t, testCookie)

	// Connect first. Ergo does not share a connection attempt between concurrent senders: 8 first calls
	// at once make 8 dials, our node answers the extra ones nok (or alive), which ergo takes as "no
	// route to node" for those calls.
	require.NoError(t, e.Connect(o.Self()))
	o.events.wait(t, node.EventHandshakeOK, e.Name())

	procs := make([]gen.Process, callers)
	for i := range procs {
		procs[i] = spawnCaller(t, e)
	}
	var (
		yes    atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		faults []string
	)
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perCaller {
				res, err := isAuth(p, o.Self(), 5)
				switch {
				case err != nil:
					mu.Lock()
					faults = append(faults, err.Error())
					mu.Unlock()
					return
				case res.Err != nil || res.Reply != eetf.Atom("yes"):
					mu.Lock()
					faults = append(faults, fmt.Sprintf("reply %v, error %v", res.Reply, res.Err))
					mu.Unlock()
					if res.Err != nil {
						return // a timed-out call: the rest would time out too
					}
				default:
					yes.Add(1)
				}
			}
		}()
	}
	wg.Wait()

	assert.Empty(t, faults)
	assert.Equal(t, int64(callers*perCaller), yes.Load())
	assert.Equal(t, []string{e.Name()}, o.Nodes())
}
