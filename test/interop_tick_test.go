package test

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waitGone waits until g has no link to peer and returns how long that took from since.
func waitGone(t *testing.T, g *interopGo, peer string, since time.Time, within time.Duration) time.Duration {
	t.Helper()
	for {
		if !g.hasPeer(peer) {
			return time.Since(since)
		}
		if time.Since(since) > within {
			require.Failf(t, "link still up", "%s still lists %s %v after %v", g.Self(), peer, g.Nodes(), within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (g *interopGo) hasPeer(peer string) bool {
	for _, n := range g.Nodes() {
		if n == peer {
			return true
		}
	}
	return false
}

// linkDownReason returns the reason of the last link-down event about peer.
func linkDownReason(g *interopGo, peer string) error {
	var err error
	for _, ev := range g.events.since(0) {
		if ev.Kind == node.EventLinkDown && ev.Peer == peer {
			err = ev.Err
		}
	}
	return err
}

// Dead and frozen BEAM peers are dropped within our tick time; an idle link with ticks flowing both
// ways stays up, and BEAM sees nodedown when we stop.
func TestInteropTick(t *testing.T) {
	t.Parallel()
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {

		// SIGKILL: the kernel closes the socket, so the link goes at once.
		t.Run("peer killed", func(t *testing.T) {
			t.Parallel()
			erl := startControlErl(t, erltest.ErlOptions{Runtime: rt, TickTime: 2})
			g := startInteropGo(t, goName("go", false), erl.Cookie(),
				node.Options{EPMD: node.EPMDExternal, EPMDPort: erl.Port(), TickTime: 2 * time.Second})
			require.True(t, g.Ping(ctxFor(t, 10*time.Second), erl.Node()))
			killed := time.Now()
			erl.Kill()
			took := waitGone(t, g, erl.Node(), killed, 2500*time.Millisecond)
			t.Logf("SIGKILLed peer dropped after %v", took)
			assert.Equal(t, 1, waitEvent(t, g, 0, node.EventLinkDown, erl.Node()))
		})

		// SIGSTOP: the socket stays open and silent; only the tick timeout can drop the link.
		t.Run("peer frozen", func(t *testing.T) {
			t.Parallel()
			erl := startControlErl(t, erltest.ErlOptions{Runtime: rt, TickTime: 2})
			g := startInteropGo(t, goName("go", false), erl.Cookie(),
				node.Options{EPMD: node.EPMDExternal, EPMDPort: erl.Port(), TickTime: 2 * time.Second})
			require.True(t, g.Ping(ctxFor(t, 10*time.Second), erl.Node()))
			require.NoError(t, erl.Signal(syscall.SIGSTOP))
			stopped := time.Now()
			t.Cleanup(func() { _ = erl.Signal(syscall.SIGCONT) })
			took := waitGone(t, g, erl.Node(), stopped, 3500*time.Millisecond)
			t.Logf("SIGSTOPped peer dropped after %v", took)
			// Dropped after 1 to 1.25 TickTime of silence, as BEAM does (the fourth silent check of
			// TickTime/4); the last tick from erl came at most TickTime/4 before the stop.
			assert.GreaterOrEqual(t, took, 1400*time.Millisecond, "dropped too early to be the tick timeout")
			waitEvent(t, g, 0, node.EventLinkDown, erl.Node())
			reason := linkDownReason(g, erl.Node())
			require.Error(t, reason)
			assert.Contains(t, reason.Error(), "tick", "reason: %v", reason)
			select {
			case <-erl.Done():
				t.Fatal("a frozen erl cannot have exited")
			default:
			}
		})

		// net_ticktime 4 on both sides, 10 s of idleness: BEAM would drop us after ~4-5 s without our
		// ticks, and we would drop BEAM without its ticks (as "peer frozen" shows).
		t.Run("idle link stays up", func(t *testing.T) {
			t.Parallel()
			erl := startControlErl(t, erltest.ErlOptions{Runtime: rt, TickTime: 4})
			name := goName("go", false)
			g := startInteropGo(t, name, erl.Cookie(),
				node.Options{EPMD: node.EPMDExternal, EPMDPort: erl.Port(), TickTime: 4 * time.Second})
			erlMonitorNodes(t, erl)
			require.NoError(t, g.Connect(ctxFor(t, 10*time.Second), erl.Node()))
			up, err := erl.WaitLine("ERLTEST-EVENT {nodeup,", 5*time.Second)
			require.NoError(t, err)
			assert.Contains(t, up, name)
			assert.Contains(t, up, "{node_type,hidden}")

			time.Sleep(10 * time.Second)
			assert.Equal(t, []string{erl.Node()}, g.Nodes())
			assert.Zero(t, g.events.count(0, node.EventLinkDown, ""), "events: %+v", g.events.since(0))
			assert.Equal(t, 1, g.events.count(0, node.EventHandshakeOK, ""))
			assert.True(t, erlHas(t, erl, "hidden", name))
			assert.NotContains(t, erl.Stdout(), "nodedown")

			require.NoError(t, g.Stop())
			down, err := erl.WaitLine("ERLTEST-EVENT {nodedown,", 5*time.Second)
			require.NoError(t, err, "BEAM must see nodedown after Stop")
			assert.Contains(t, down, name)
			assert.False(t, erlHas(t, erl, "connected", name))
			assert.Equal(t, 1, strings.Count(erl.Stdout(), "ERLTEST-EVENT {nodeup,"), "no reconnect: %s", erl.Stdout())
			assert.Equal(t, "pang", evalOK(t, erl, fmt.Sprintf("net_adm:ping('%s')", name)), "stopped means gone")
		})
	})
}
