package node

import (
	"context"
	"errors"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/handshake"
)

// TestArbitrate: the answer to an inbound handshake, from a table, without sockets.
func TestArbitrate(t *testing.T) {
	for _, tc := range []struct {
		what string
		in   arbitration
		st   handshake.Status
		act  arbitrated
	}{
		{"stopping", arbitration{stopped: true, linked: true, pending: true}, handshake.StatusNotAllowed, arbRefuse},
		{"our own name", arbitration{self: true}, handshake.StatusNotAllowed, arbRefuse},
		{"linked: ask the peer", arbitration{linked: true}, handshake.StatusAlive, arbAlive},
		{"linked, and a dial pending", arbitration{linked: true, pending: true, dial: dialRunning, weWin: true}, handshake.StatusAlive, arbAlive},
		{"nothing pending", arbitration{}, handshake.StatusOK, arbNew},
		{"nothing pending, we would win", arbitration{weWin: true}, handshake.StatusOK, arbNew},
		{"another handshake joined", arbitration{pending: true, joined: 1, dial: dialNone}, handshake.StatusOKSimultaneous, arbJoin},
		{"another handshake joined, our dial running", arbitration{pending: true, joined: 2, dial: dialRunning, weWin: true}, handshake.StatusOKSimultaneous, arbJoin},
		{"simultaneous, our name higher", arbitration{pending: true, dial: dialRunning, weWin: true}, handshake.StatusNok, arbRefuse},
		{"simultaneous, the peer's name higher", arbitration{pending: true, dial: dialRunning}, handshake.StatusOKSimultaneous, arbYieldDial},
		{"our dial lost: this is the one it waits for", arbitration{pending: true, dial: dialLost, weWin: true}, handshake.StatusOK, arbJoin},
		{"our dial lost, the peer's name higher", arbitration{pending: true, dial: dialLost}, handshake.StatusOK, arbJoin},
		// The yielded dial is dead: never nok (the peer would wait for it).
		{"our dial yielded, its handshake gone", arbitration{pending: true, dial: dialYielded, weWin: true}, handshake.StatusOK, arbJoin},
		{"our dial yielded, a handshake joined", arbitration{pending: true, joined: 1, dial: dialYielded, weWin: true}, handshake.StatusOKSimultaneous, arbJoin},
	} {
		t.Run(tc.what, func(t *testing.T) {
			st, act := arbitrate(tc.in)
			assert.Equal(t, tc.st, st)
			assert.Equal(t, tc.act, act)
		})
	}
}

// TestArbitrateNokOnlyForRunningDial: over every input, nok is answered only while our own
// dial is running and wins, and no handshake is refused while nothing blocks it.
func TestArbitrateNokOnlyForRunningDial(t *testing.T) {
	for _, stopped := range []bool{false, true} {
		for _, linked := range []bool{false, true} {
			for _, pending := range []bool{false, true} {
				for _, joined := range []int{0, 1} {
					for d := dialNone; d <= dialEnded; d++ {
						for _, weWin := range []bool{false, true} {
							in := arbitration{stopped: stopped, linked: linked, pending: pending, joined: joined, dial: d, weWin: weWin}
							st, act := arbitrate(in)
							if st == handshake.StatusNok {
								assert.True(t, pending && joined == 0 && d == dialRunning && weWin && !linked && !stopped, "%+v", in)
							}
							if act == arbRefuse {
								assert.True(t, stopped || st == handshake.StatusNok, "%+v", in)
							}
							if act == arbYieldDial {
								assert.Equal(t, dialRunning, d)
							}
						}
					}
				}
			}
		}
	}
}

// transitionNode is a node with just enough state for the transition methods.
func transitionNode(t *testing.T) (*Node, *[]string) {
	var bad []string
	old := onIllegalTransition
	onIllegalTransition = func(_ *Node, what string) { bad = append(bad, what) }
	t.Cleanup(func() { onIllegalTransition = old })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &Node{ctx: ctx, opts: Options{SetupTimeout: 1 << 40}, pending: map[string]*attempt{}}, &bad
}

// TestAttemptTransitions checks the transition tables: not parallel, it swaps
// onIllegalTransition.
func TestAttemptTransitions(t *testing.T) {
	t.Run("dial", func(t *testing.T) {
		for from, tos := range map[dialState][]dialState{
			dialRunning: {dialYielded, dialLost, dialEnded},
			dialYielded: {dialEnded},
			dialLost:    {dialEnded},
		} {
			for to := dialNone; to <= dialEnded; to++ {
				n, bad := transitionNode(t)
				a := n.newAttempt()
				a.dial = from
				legal := false
				for _, x := range tos {
					legal = legal || x == to
				}
				assert.Equal(t, legal, n.setDial(a, to), "%v -> %v", from, to)
				if legal {
					assert.Equal(t, to, a.dial)
					assert.Empty(t, *bad)
				} else {
					assert.Equal(t, from, a.dial, "an illegal transition changes nothing")
					assert.Len(t, *bad, 1)
				}
			}
		}
		for _, from := range []dialState{dialNone, dialEnded} {
			n, bad := transitionNode(t)
			a := n.newAttempt()
			a.dial = from
			assert.False(t, n.setDial(a, dialRunning), "%v is final", from)
			assert.Len(t, *bad, 1)
		}
	})
	t.Run("won, then ended without error", func(t *testing.T) {
		n, bad := transitionNode(t)
		a := n.newAttempt()
		a.ins[&net.TCPConn{}] = true
		n.pending["p@h"] = a
		n.winLocked(a)
		assert.Equal(t, phaseWon, a.phase)
		assert.Empty(t, a.ins, "the joined handshakes lose")
		n.leaveLocked("p@h", a, errors.New("late failure"), false)
		assert.Equal(t, phaseWon, a.phase, "no failure ends a won attempt")
		n.endLocked("p@h", a, errors.New("x"), false)
		assert.Equal(t, phaseWon, a.phase)
		assert.Len(t, *bad, 1, "ending a won attempt with an error is a bug")
		n.endLocked("p@h", a, nil, false)
		assert.Equal(t, phaseEnded, a.phase)
		require.NoError(t, a.err)
		assert.True(t, a.won())
		assert.NotContains(t, n.pending, "p@h")
		assert.Error(t, a.ctx.Err(), "ending cancels the joined handshakes")
		n.winLocked(a) // a dial the peer chose may win an ended attempt again
		assert.Equal(t, phaseEnded, a.phase)
		assert.Len(t, *bad, 1)
	})
	t.Run("ended once, when the last participant leaves", func(t *testing.T) {
		n, bad := transitionNode(t)
		a := n.newAttempt()
		c1, c2 := &net.TCPConn{}, &net.TCPConn{}
		a.dial = dialRunning
		a.ins[c1], a.ins[c2] = true, true
		n.pending["p@h"] = a
		delete(a.ins, c1)
		n.leaveLocked("p@h", a, errors.New("c1"), true)
		assert.Equal(t, phasePending, a.phase, "c2 and the dial are still in")
		n.setDial(a, dialEnded)
		n.leaveLocked("p@h", a, errors.New("dial"), false)
		assert.Equal(t, phasePending, a.phase, "c2 is still in")
		delete(a.ins, c2)
		first := errors.New("c2")
		n.leaveLocked("p@h", a, first, true)
		assert.Equal(t, phaseEnded, a.phase)
		assert.Same(t, first, a.err)
		assert.True(t, a.inboundFailed)
		assert.False(t, a.won())
		assert.NotContains(t, n.pending, "p@h")
		n.endLocked("p@h", a, errors.New("again"), false)
		assert.Same(t, first, a.err, "the first end stays")
		assert.True(t, a.inboundFailed)
		n.winLocked(a)
		assert.Len(t, *bad, 1, "an attempt that failed cannot win")
	})
	t.Run("a lost dial waits: the handshake ends it", func(t *testing.T) {
		n, bad := transitionNode(t)
		a := n.newAttempt()
		a.dial = dialRunning
		n.setDial(a, dialLost)
		c := &net.TCPConn{}
		a.ins[c] = true
		delete(a.ins, c)
		n.leaveLocked("p@h", a, errors.New("peer"), true)
		assert.Equal(t, phaseEnded, a.phase, "a lost dial does not carry the attempt")
		assert.Empty(t, *bad)
	})
}
