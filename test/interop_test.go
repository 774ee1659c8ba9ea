package test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// nameStyles runs f as a parallel subtest for short names (-sname, @localhost) and long names
// (-name, @127.0.0.1).
func nameStyles(t *testing.T, f func(t *testing.T, long bool)) {
	for _, long := range []bool{false, true} {
		style := "short"
		if long {
			style = "long"
		}
		t.Run(style, func(t *testing.T) {
			t.Parallel()
			f(t, long)
		})
	}
}

// linkUpFlags returns the negotiated flags g logged (at Debug, as negotiated_flags= or flags=) for its
// link to peer, "" if none were logged.
func linkUpFlags(g *interopGo, peer string) string {
	for _, line := range strings.Split(g.logs.String(), "\n") {
		if !strings.Contains(line, `msg="link up"`) || !strings.Contains(line, " peer="+peer+" ") {
			continue
		}
		for _, key := range []string{" negotiated_flags=", " flags="} {
			if _, f, ok := strings.Cut(line, key); ok {
				f, _, _ = strings.Cut(f, " ")
				return f
			}
		}
	}
	return ""
}

// Go dials BEAM: ping is pong, both sides list the link, and BEAM sees us as a hidden node (in
// nodes(hidden) and nodes(connected), not in nodes()).
func TestInteropGoToBEAM(t *testing.T) {
	t.Parallel()
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		nameStyles(t, func(t *testing.T, long bool) {
			erl := startControlErl(t, erltest.ErlOptions{Runtime: rt, LongNames: long})
			name := goName("go", long)
			require.Equal(t, long, node.IsLongName(name))
			g := startInteropGo(t, name, erl.Cookie(), node.Options{EPMD: node.EPMDExternal, EPMDPort: erl.Port()})

			require.True(t, g.Ping(ctxFor(t, 10*time.Second), erl.Node()), "ping %s", erl.Node())
			assert.Equal(t, []string{erl.Node()}, g.Nodes())
			assert.Equal(t, 1, g.ConnectedCount())
			rtt, err := g.PingRTT(ctxFor(t, 5*time.Second), erl.Node())
			require.NoError(t, err, "second ping on the same link")
			assert.Less(t, rtt, time.Second)

			assert.True(t, erlHas(t, erl, "hidden", name), "BEAM's nodes(hidden) lists us")
			assert.True(t, erlHas(t, erl, "connected", name), "BEAM's nodes(connected) lists us")
			assert.False(t, erlHas(t, erl, "visible", name), "we are hidden: not in BEAM's nodes()")
			assert.Equal(t, "[]", evalOK(t, erl, "nodes()"))
			assert.Equal(t, "hidden", evalOK(t, erl, fmt.Sprintf("proplists:get_value(type, element(2, net_kernel:node_info('%s')))", name)))
			assert.Equal(t, 1, waitEvent(t, g, 0, node.EventHandshakeOK, erl.Node()))
		})
	})
}

// BEAM dials Go: net_adm:ping is pong, repeatedly, on a link BEAM set up and on one we set up. OTP 25,
// 27 and 29 negotiate DIST_MONITOR and ALIAS with us, so their pings monitor net_kernel and send an alias
// tag.
func TestInteropBEAMToGo(t *testing.T) {
	t.Parallel()
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		nameStyles(t, func(t *testing.T, long bool) {
			erl := startControlErl(t, erltest.ErlOptions{Runtime: rt, LongNames: long})
			name := goName("go", long)
			g := startInteropGo(t, name, erl.Cookie(), node.Options{EPMD: node.EPMDExternal, EPMDPort: erl.Port()})
			ping := fmt.Sprintf("net_adm:ping('%s')", name)

			for i := range 5 {
				require.Equal(t, "pong", evalOK(t, erl, ping), "ping %d", i)
			}
			assert.Equal(t, []string{erl.Node()}, g.Nodes())
			waitEvent(t, g, 0, node.EventHandshakeOK, erl.Node())
			inbound := g.events.since(0)
			require.NotEmpty(t, inbound)
			assert.True(t, inbound[0].Kind == node.EventHandshakeOK && inbound[0].Inbound, "BEAM dialled: %+v", inbound[0])
			flags := linkUpFlags(g, erl.Node())
			for _, f := range []string{"DIST_MONITOR", "DIST_MONITOR_NAME", "ALIAS", "UNLINK_ID"} {
				assert.Contains(t, strings.Split(flags, "|"), f, "negotiated flags %q", flags)
			}
			assert.True(t, erlHas(t, erl, "hidden", name))
			assert.False(t, erlHas(t, erl, "visible", name))

			// BEAM drops the link; we see it go, then dial ourselves and BEAM pings over our link.
			assert.Equal(t, "true", evalOK(t, erl, fmt.Sprintf("erlang:disconnect_node('%s')", name)))
			require.Eventually(t, func() bool { return g.ConnectedCount() == 0 }, 5*time.Second, 10*time.Millisecond)
			waitEvent(t, g, 0, node.EventLinkDown, erl.Node())
			mark := g.events.mark()
			require.NoError(t, g.Connect(ctxFor(t, 10*time.Second), erl.Node()))
			for i := range 3 {
				require.Equal(t, "pong", evalOK(t, erl, ping), "ping %d on our link", i)
			}
			waitEvent(t, g, mark, node.EventHandshakeOK, erl.Node())
			ev := g.events.since(mark)
			require.Len(t, ev, 1, "one handshake, no link down: %+v", ev)
			assert.False(t, ev[0].Inbound, "we dialled")
			assert.Equal(t, []string{erl.Node()}, g.Nodes())
		})
	})
}

// Elixir's Node.ping gets :pong, and Node.list(:hidden) shows us.
func TestInteropElixirPing(t *testing.T) {
	t.Parallel()
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		nameStyles(t, func(t *testing.T, long bool) {
			ep := rt.StartEPMD(t, 0)
			cookie := newInteropCookie()
			name := goName("go", long)
			g := startInteropGo(t, name, cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: ep.Port()})

			exAlive := erltest.UniqueName("ex")
			out := erltest.ElixirEval(t, erltest.ErlOptions{Runtime: rt, Name: exAlive, LongNames: long, Cookie: cookie, EPMDPort: ep.Port()},
				fmt.Sprintf(`IO.inspect(Node.ping(:"%[1]s")); IO.inspect(Node.ping(:"%[1]s")); `+
					`IO.inspect(:"%[1]s" in Node.list(:hidden)); IO.inspect(:"%[1]s" in Node.list())`, name))
			assert.Equal(t, ":pong\n:pong\ntrue\nfalse\n", out)

			exName := erltest.ErlOptions{Runtime: rt, Name: exAlive, LongNames: long}.FullName()
			assert.Equal(t, 1, waitEvent(t, g, 0, node.EventHandshakeOK, exName))
			// The Elixir node has halted: its link goes down.
			require.Eventually(t, func() bool { return g.ConnectedCount() == 0 }, 5*time.Second, 10*time.Millisecond)
			assert.Equal(t, 1, waitEvent(t, g, 0, node.EventLinkDown, exName))
		})
	})
}

// A wrong cookie, both ways: Go->BEAM is ErrAuth, BEAM->Go is pang, no link on either side, and no
// error, event or log line (at Debug level) of ours carries either cookie.
func TestInteropWrongCookie(t *testing.T) {
	t.Parallel()
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		erlCookie, goCookie := newInteropCookie(), newInteropCookie()
		erl := startControlErl(t, erltest.ErlOptions{Runtime: rt, Cookie: erlCookie})
		name := goName("go", false)
		g := startInteropGo(t, name, goCookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: erl.Port()})

		// Go -> BEAM.
		err := g.Connect(ctxFor(t, 10*time.Second), erl.Node())
		require.ErrorIs(t, err, node.ErrAuth)
		assert.ErrorIs(t, err, handshake.ErrAuth)
		noCookie(t, "Connect error", err.Error(), erlCookie, goCookie)
		_, err = g.PingRTT(ctxFor(t, 10*time.Second), erl.Node())
		require.ErrorIs(t, err, node.ErrAuth)
		noCookie(t, "PingRTT error", err.Error(), erlCookie, goCookie)
		assert.False(t, g.Ping(ctxFor(t, 10*time.Second), erl.Node()))
		assert.Empty(t, g.Nodes())
		assert.Equal(t, "[]", evalOK(t, erl, "nodes(connected)"), "BEAM has no link either")

		// BEAM -> Go.
		mark := g.events.mark()
		assert.Equal(t, "pang", evalOK(t, erl, fmt.Sprintf("net_adm:ping('%s')", name)))
		assert.Equal(t, "[]", evalOK(t, erl, "nodes(connected)"))
		assert.Empty(t, g.Nodes())
		require.Eventually(t, func() bool {
			return g.events.count(mark, node.EventHandshakeFailed, erl.Node()) > 0
		}, 5*time.Second, 10*time.Millisecond, "the inbound attempt reached us and failed")
		assert.Zero(t, g.events.count(0, node.EventHandshakeOK, ""))
		var inboundErr error
		for _, ev := range g.events.since(mark) {
			if ev.Kind == node.EventHandshakeFailed && ev.Inbound {
				inboundErr = ev.Err
			}
		}
		require.Error(t, inboundErr)
		assert.True(t, errors.Is(inboundErr, handshake.ErrAuth), "inbound failure: %v", inboundErr)

		for _, ev := range g.events.since(0) {
			if ev.Err != nil {
				noCookie(t, "event error", ev.Err.Error(), erlCookie, goCookie)
			}
		}
		logs := g.logs.String()
		require.Contains(t, logs, "level=DEBUG", "Debug logging is on")
		require.Contains(t, logs, erl.Node(), "the failures were logged")
		noCookie(t, "node log", logs, erlCookie, goCookie)
		noCookie(t, "erl output", erl.Output(), goCookie)
	})
}
