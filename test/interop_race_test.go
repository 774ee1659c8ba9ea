package test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Two Go nodes dial each other at the same moment, 50 times: both Connects succeed and each side ends
// up with exactly one link (one handshake_ok, no replaced link), usable both ways.
//
// Go<->Go: the real epmd is only the registry, so this runs on the host's OTP alone.
func TestInteropSimultaneousConnectGoGo(t *testing.T) {
	erltest.RequireEpmd(t)
	t.Parallel()
	ep := erltest.StartEPMD(t, 0)
	cookie := newInteropCookie()
	opts := node.Options{EPMD: node.EPMDExternal, EPMDPort: ep.Port()}
	aName, bName := goName("a", false), goName("b", false)
	a := startInteropGo(t, aName, cookie, opts)
	b := startInteropGo(t, bName, cookie, opts)

	collisions := 0
	for round := range 50 {
		ma, mb := a.events.mark(), b.events.mark()
		ctx := ctxFor(t, 10*time.Second)
		var errA, errB error
		var wg sync.WaitGroup
		start := make(chan struct{})
		wg.Add(2)
		go func() { defer wg.Done(); <-start; errA = a.Connect(ctx, bName) }()
		go func() { defer wg.Done(); <-start; errB = b.Connect(ctx, aName) }()
		close(start)
		wg.Wait()
		require.NoError(t, errA, "round %d: a->b", round)
		require.NoError(t, errB, "round %d: b->a", round)
		require.Equal(t, []string{bName}, a.Nodes(), "round %d", round)
		require.Equal(t, []string{aName}, b.Nodes(), "round %d", round)
		require.True(t, a.Ping(ctx, bName), "round %d", round)
		require.True(t, b.Ping(ctx, aName), "round %d", round)

		if round%2 == 0 {
			require.True(t, a.Disconnect(bName))
		} else {
			require.True(t, b.Disconnect(aName))
		}
		require.Eventually(t, func() bool { return a.ConnectedCount() == 0 && b.ConnectedCount() == 0 },
			5*time.Second, 2*time.Millisecond, "round %d", round)
		// Counted after the link is gone, so a late second handshake would show too.
		for _, s := range []struct {
			g    *interopGo
			from int
			peer string
		}{{a, ma, bName}, {b, mb, aName}} {
			assert.Equal(t, 1, waitEvent(t, s.g, s.from, node.EventHandshakeOK, s.peer), "round %d on %s: %+v",
				round, s.g.Self(), s.g.events.since(s.from))
			assert.Equal(t, 1, waitEvent(t, s.g, s.from, node.EventLinkDown, s.peer), "round %d on %s: %+v",
				round, s.g.Self(), s.g.events.since(s.from))
		}
		if a.events.count(ma, node.EventHandshakeFailed, "")+b.events.count(mb, node.EventHandshakeFailed, "") > 0 {
			collisions++
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("%d of 50 rounds had a visible collision (a nok)", collisions)
}

// A BEAM node and a Go node dial each other at the same moment (net_kernel:connect_node on one side,
// Connect on the other, started at one wall-clock instant), 5 rounds each with a BEAM name sorting
// below ours and one above: both succeed, each side has one link and saw one node-up.
func TestInteropSimultaneousConnectBEAM(t *testing.T) {
	t.Parallel()
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		for _, prefix := range []string{"a", "z"} { // "a_..." < "go_..." < "z_..."
			t.Run("erl name "+prefix, func(t *testing.T) {
				t.Parallel()
				erl := startControlErl(t, erltest.ErlOptions{Runtime: rt, Name: erltest.UniqueName(prefix)})
				name := goName("go", false)
				require.Equal(t, prefix == "z", erl.Node() > name)
				g := startInteropGo(t, name, erl.Cookie(), node.Options{EPMD: node.EPMDExternal, EPMDPort: erl.Port()})
				erlMonitorNodes(t, erl)

				collisions := 0
				for round := range 5 {
					mark := g.events.mark()
					at := time.Now().Add(300 * time.Millisecond)
					type result struct {
						v   string
						err error
					}
					res := make(chan result, 1)
					go func() {
						v, err := erl.Eval(fmt.Sprintf("timer:sleep(max(0, %d - os:system_time(millisecond))), "+
							"net_kernel:connect_node('%s')", at.UnixMilli(), name), evalTimeout)
						res <- result{v, err}
					}()
					time.Sleep(time.Until(at))
					err := g.Connect(ctxFor(t, 10*time.Second), erl.Node())
					r := <-res
					require.NoError(t, err, "round %d: Go side", round)
					require.NoError(t, r.err, "round %d: BEAM side", round)
					require.Equal(t, "true", r.v, "round %d: net_kernel:connect_node", round)

					assert.Equal(t, []string{erl.Node()}, g.Nodes(), "round %d", round)
					assert.Equal(t, "1", evalOK(t, erl, "length(nodes(connected))"), "round %d", round)
					assert.True(t, erlHas(t, erl, "hidden", name), "round %d", round)
					assert.Equal(t, "pong", evalOK(t, erl, fmt.Sprintf("net_adm:ping('%s')", name)), "round %d", round)
					assert.True(t, g.Ping(ctxFor(t, 5*time.Second), erl.Node()), "round %d", round)

					if round%2 == 0 {
						require.True(t, g.Disconnect(erl.Node()))
					} else {
						assert.Equal(t, "true", evalOK(t, erl, fmt.Sprintf("erlang:disconnect_node('%s')", name)))
					}
					poll(t, 5*time.Second, 10*time.Millisecond, func() bool {
						return g.ConnectedCount() == 0 && evalOK(t, erl, "nodes(connected)") == "[]"
					}, "round %d: link not gone", round)
					assert.Equal(t, 1, waitEvent(t, g, mark, node.EventHandshakeOK, erl.Node()), "round %d: %+v", round, g.events.since(mark))
					assert.Equal(t, 1, waitEvent(t, g, mark, node.EventLinkDown, erl.Node()), "round %d: %+v", round, g.events.since(mark))
					poll(t, 5*time.Second, 10*time.Millisecond, func() bool {
						return strings.Count(erl.Stdout(), "ERLTEST-EVENT {nodedown,") == round+1
					}, "round %d: BEAM's nodedown", round)
					out := erl.Stdout()
					assert.Equal(t, round+1, strings.Count(out, "ERLTEST-EVENT {nodeup,"), "round %d: BEAM node-ups:\n%s", round, out)
					if g.events.count(mark, node.EventHandshakeFailed, "") > 0 {
						collisions++
					}
					if t.Failed() {
						return
					}
				}
				t.Logf("%d of 5 rounds had a visible collision on our side (a nok either way)", collisions)
			})
		}
	})
}
