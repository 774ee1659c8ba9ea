package test

import (
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowLinkUpHandler is a Debug slog handler that stalls the "link up" record: node.addLink logs it
// after the link's reader has started and before it reports EventHandshakeOK.
type slowLinkUpHandler struct {
	slog.Handler
	stalled *atomic.Int32
}

func (h slowLinkUpHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "link up" {
		h.stalled.Add(1)
		time.Sleep(300 * time.Millisecond)
	}
	return h.Handler.Handle(ctx, r)
}

func (h slowLinkUpHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return slowLinkUpHandler{h.Handler.WithAttrs(as), h.stalled}
}

func (h slowLinkUpHandler) WithGroup(n string) slog.Handler {
	return slowLinkUpHandler{h.Handler.WithGroup(n), h.stalled}
}

// Regression test (fixed: a link reports its end only after its start was announced). The bug:
// Options.OnEvent could report a link's EventLinkDown BEFORE its EventHandshakeOK. addLink starts
// the link's reader, logs, and only then emits EventHandshakeOK; if the peer closes at once, the
// reader's removeLink emits EventLinkDown first. A consumer that keeps per-peer state from events
// (up on handshake_ok, down on link_down) is left believing a dead link is up. Here the "link up" log
// call is stalled to make the window wide; without the stall the same inversion was seen under -race
// in TestInteropSimultaneousConnectGoGo (round 33 of one run: link_down, then handshake_ok).
//
// Go<->Go: the real epmd is only the registry, so this runs on the host's OTP alone.
func TestInteropBugEventOrderLinkDownBeforeHandshakeOK(t *testing.T) {
	erltest.RequireEpmd(t)
	ep := erltest.StartEPMD(t, 0)
	cookie := newInteropCookie()
	var stalled atomic.Int32
	events := &interopEvents{}
	aName := goName("a", false)
	a, err := process.Start(ctxFor(t, 10*time.Second), aName, cookie, &process.Options{Node: node.Options{
		EPMD: node.EPMDExternal, EPMDPort: ep.Port(), ListenAddr: "127.0.0.1", OnEvent: events.add,
		Logger: slog.New(slowLinkUpHandler{slog.NewTextHandler(&interopLogs{}, &slog.HandlerOptions{Level: slog.LevelDebug}), &stalled}),
	}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = a.Stop() })
	b := startInteropGo(t, goName("b", false), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: ep.Port()})

	require.NoError(t, b.Connect(ctxFor(t, 10*time.Second), aName))
	require.True(t, b.Disconnect(aName), "B closes the link at once")
	require.Eventually(t, func() bool {
		return events.count(0, node.EventHandshakeOK, "")+events.count(0, node.EventLinkDown, "") == 2
	},
		5*time.Second, 5*time.Millisecond, "events: %+v", events.since(0))
	require.Positive(t, stalled.Load(), "the stall was hit (else the node no longer logs \"link up\" and this test proves nothing)")
	ev := events.since(0)
	assert.Equal(t, node.EventHandshakeOK.String(), ev[0].Kind.String(), "a link must be reported up before it is reported down: %+v", ev)
}

// Regression test (fixed: the yielded dial's connection is now closed synchronously inside decide,
// a yielded attempt installs no link, and Initiate answers "alive" with whether the attempt is
// still pending). The bug as it was found: after a simultaneous connect, the losing side's dial lives on and reaches the winner as a
// "ghost" handshake. The loser yields (answers ok_simultaneous to the winner's inbound) by cancelling
// its dial's context; that reaches the connection asynchronously (context.AfterFunc sets a past
// deadline from another goroutine), so the dial can go on writing, and handshake.Initiate answers an
// "alive" status with "true" unconditionally. BEAM kills the old pending owner and waits for its exit
// before answering ok_simultaneous (net_kernel accept_pending), and its initiator answers "alive"
// with is_pending(): "false" once its attempt was dropped (dist_util recv_status). Seen three ways:
//
//  1. the winner completes the ghost handshake: a second, inbound link from the loser's dead attempt,
//     which replaces the winner's good link ("replaced by a new connection") or comes after it, and
//     dies at once. TestInteropSimultaneousConnectGoGo failed so in 1 of 25 suite runs (-race, 2
//     cores, load ~3):  b: link up peer=a inbound=false; link down "disconnected by this node";
//     link up peer=a inbound=true; link down "connection closed by peer: EOF"  (a: one link).
//  2. the ghost's 'N' reaches the winner later; the winner's next Connect joins that inbound attempt
//     and fails when the ghost dies: "network_error: handshake send_challenge: connection closed ...
//     broken pipe".
//  3. as 2, and the loser's real dial then gets "nok" (the winner has a pending inbound), waits for
//     the winner's dial that never comes, and Connect fails after SetupTimeout (7 s): "connect_timeout:
//     lost a simultaneous connect and the peer's connection did not arrive".
//
// Before the fix this failed in about half the runs with two `yes > /dev/null` running.
//
// Go<->Go: the real epmd is only the registry, so this runs on the host's OTP alone.
func TestInteropBugSimultaneousConnectGhostLink(t *testing.T) {
	erltest.RequireEpmd(t)
	ep := erltest.StartEPMD(t, 0)
	cookie := newInteropCookie()
	opts := node.Options{EPMD: node.EPMDExternal, EPMDPort: ep.Port()}
	aName, bName := goName("a", false), goName("b", false)
	a := startInteropGo(t, aName, cookie, opts)
	b := startInteropGo(t, bName, cookie, opts)
	// 300 rounds in the normal suite; DISTRIBUTE_STRESS=1 runs 4,000 (about 8 s), where one
	// failure in ~4,000 rounds under two busy loops is still seen: see docs/NOTES.md.
	rounds := 300
	if os.Getenv("DISTRIBUTE_STRESS") == "1" {
		rounds = 4000
	}
	for round := range rounds {
		ma, mb := a.events.mark(), b.events.mark()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var errA, errB error
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(2)
		go func() { defer wg.Done(); <-start; errA = a.Connect(ctx, bName) }()
		go func() { defer wg.Done(); <-start; errB = b.Connect(ctx, aName) }()
		close(start)
		wg.Wait()
		cancel()
		require.NoError(t, errA, "round %d: a->b", round)
		require.NoError(t, errB, "round %d: b->a", round)
		b.Disconnect(aName)
		a.Disconnect(bName)
		require.Eventually(t, func() bool { return a.ConnectedCount() == 0 && b.ConnectedCount() == 0 },
			5*time.Second, time.Millisecond)
		// Events reach OnEvent from the node's event goroutine, after the link is gone from
		// ConnectedCount. Wait until every link of this round has been reported down on both
		// sides, so that this round's events are not counted in the next round's window (under
		// load, a window once held two rounds: two outbound links, each "disconnected by this
		// node", which only two Disconnect calls, i.e. two rounds, can produce).
		require.Eventually(t, func() bool {
			for _, s := range []struct {
				g    *interopGo
				from int
			}{{a, ma}, {b, mb}} {
				ups, downs := s.g.events.count(s.from, node.EventHandshakeOK, ""), s.g.events.count(s.from, node.EventLinkDown, "")
				if ups == 0 || downs != ups {
					return false
				}
			}
			return true
		}, 5*time.Second, time.Millisecond, "round %d: every link reported up and down", round)
		for _, s := range []struct {
			g    *interopGo
			from int
		}{{a, ma}, {b, mb}} {
			if n := s.g.events.count(s.from, node.EventHandshakeOK, ""); n > 1 {
				require.Failf(t, "ghost link", "round %d: %s had %d handshakes: %+v", round, s.g.Self(), n, s.g.events.since(s.from))
			}
		}
	}
}

// Regression test (fixed: a Connect call whose joined attempt ends because the PEER's handshake failed
// starts over with its own dial). The bug, as CI printed it (TestInteropBugSimultaneousConnectGhostLink,
// round ~150 of 300 with the other test packages running): the loser of a simultaneous connect closes
// its yielded dial, but that dial's 'N' message is already in the winner's accept queue. The winner
// accepts it (no attempt pending any more: status ok), and the winner's next Connect joins that
// pending inbound attempt. The dead connection fails at send_challenge ("broken pipe"), and Connect
// returned that failure although the real peer was reachable and dialled in a millisecond later.
//
// Here the stale handshake is made on purpose: a raw connection claims a real erl node's name, reads
// the "ok" status (so our node holds a pending inbound attempt for that name), lets Connect join it,
// and then dies. Connect must still reach the real erl node.
func TestInteropBugConnectJoinsDeadInbound(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		ep := rt.StartEPMD(t, 0)
		cookie := newInteropCookie()
		erl := startControlErl(t, erltest.ErlOptions{Runtime: rt, Name: erltest.UniqueName("erl"), Cookie: cookie, EPMDPort: ep.Port()})
		g := startInteropGo(t, goName("go", false), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: ep.Port()})

		ghost, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(g.Port())), 5*time.Second)
		require.NoError(t, err)
		defer ghost.Close()
		require.NoError(t, ghost.SetDeadline(time.Now().Add(10*time.Second)))
		// The v6 name message: 'N', flags (8), creation (4), name length (2), name.
		name := erl.Node()
		msg := []byte{'N'}
		msg = binary.BigEndian.AppendUint64(msg, uint64(handshake.DefaultFlags))
		msg = binary.BigEndian.AppendUint32(msg, 42)
		msg = binary.BigEndian.AppendUint16(msg, uint16(len(name)))
		msg = append(msg, name...)
		_, err = ghost.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(msg))), msg...))
		require.NoError(t, err)
		var status [5]byte
		_, err = io.ReadFull(ghost, status[:])
		require.NoError(t, err)
		require.Equal(t, "\x00\x03sok", string(status[:]), "our node accepted the stale handshake and holds it as pending")

		mark := g.events.mark()
		done := make(chan error, 1)
		go func() { done <- g.Connect(ctxFor(t, 15*time.Second), name) }()
		// Connect joins the pending attempt at once (it never blocks before that); give it time to.
		time.Sleep(200 * time.Millisecond)
		require.NoError(t, ghost.Close())

		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			require.FailNow(t, "Connect did not return")
		}
		require.NoError(t, err, "the real peer is reachable: a stale handshake's death is not our Connect's failure")
		assert.Contains(t, g.Nodes(), name)
		assert.True(t, g.Ping(ctxFor(t, 5*time.Second), name))
		assert.Contains(t, g.logs.String(), "the peer's handshake this connect joined failed; dialling again",
			"the stale handshake was joined (else this test did not build the case it is about)")
		assert.Equal(t, 1, g.events.count(mark, node.EventHandshakeOK, name), "one link, from our own dial")
		assert.Equal(t, "true", evalOK(t, erl, "lists:member('"+g.Self()+"', nodes(hidden))."))
	})
}
