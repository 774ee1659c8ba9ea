package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// alivePart returns the part of a node name before '@'.
func alivePart(name string) string {
	alive, _, _ := strings.Cut(name, "@")
	return alive
}

// Nothing listens on the EPMD port, so our node serves EPMD itself; a real erl registers with it,
// the real `epmd -names` lists both nodes, and the erl node pings us pong.
func TestInteropEmbeddedEPMDServesRealErl(t *testing.T) {
	t.Parallel()
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		port := erltest.FreePort(t)
		cookie := newInteropCookie()
		name := goName("go", false)
		g := startInteropGo(t, name, cookie, node.Options{EPMD: node.EPMDEmbedded, EPMDPort: port})
		require.True(t, g.EPMDRegistered())
		require.Equal(t, port, g.EPMDPort())

		erl := startControlErl(t, erltest.ErlOptions{Runtime: rt, Cookie: cookie, EPMDPort: port})
		out, code := epmdCLI(t, rt, port, "-names")
		assert.Equal(t, 0, code, out)
		assert.Contains(t, out, fmt.Sprintf("epmd: up and running on port %d with data:\n", port))
		assert.Contains(t, out, fmt.Sprintf("name %s at port %d\n", alivePart(name), g.Port()))
		assert.Contains(t, out, fmt.Sprintf("name %s at port ", alivePart(erl.Node())))

		assert.Equal(t, "pong", evalOK(t, erl, fmt.Sprintf("net_adm:ping('%s')", name)))
		assert.Equal(t, []string{erl.Node()}, g.Nodes())
		assert.True(t, g.Ping(ctxFor(t, 10*time.Second), erl.Node()), "we find erl through our own EPMD")
		assert.True(t, erlHas(t, erl, "hidden", name))
	})
}

// A real epmd dies and a new one starts on the same port: our node registers again within 3 s, a new
// erl node finds and pings us, and the link to an erl node made before stays up throughout.
func TestInteropEPMDRestart(t *testing.T) {
	t.Parallel()
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		ep := rt.StartEPMD(t, 0)
		port := ep.Port()
		cookie := newInteropCookie()
		name := goName("go", false)
		g := startInteropGo(t, name, cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: port})
		old := startControlErl(t, erltest.ErlOptions{Runtime: rt, Cookie: cookie, EPMDPort: port})
		require.Equal(t, "pong", evalOK(t, old, fmt.Sprintf("net_adm:ping('%s')", name)))
		require.Equal(t, []string{old.Node()}, g.Nodes())
		mark := g.events.mark()

		ep.Kill()
		require.Eventually(t, func() bool { return !g.EPMDRegistered() }, 3*time.Second, 10*time.Millisecond,
			"the node notices that its registration is gone")
		ep2 := rt.StartEPMD(t, port)
		restarted := time.Now()
		c := epmd.Client{Port: port}
		listed := func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			names, err := c.Names(ctx, "127.0.0.1")
			return err == nil && containsEntry(names, epmd.NameEntry{Name: alivePart(name), Port: g.Port()})
		}
		for !listed() {
			require.Less(t, time.Since(restarted), 3*time.Second, "not registered again with the new epmd")
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("registered again %v after the new epmd started", time.Since(restarted))
		// EPMD lists the registration a moment before the node records it.
		assert.Eventually(t, g.EPMDRegistered, time.Second, 5*time.Millisecond)
		out, _ := epmdCLI(t, rt, ep2.Port(), "-names")
		assert.Contains(t, out, fmt.Sprintf("name %s at port %d\n", alivePart(name), g.Port()))
		waitEvent(t, g, mark, node.EventEPMDRegistered, "")
		assert.Equal(t, 1, g.events.count(mark, node.EventEPMDLost, ""))

		fresh := startControlErl(t, erltest.ErlOptions{Runtime: rt, Cookie: cookie, EPMDPort: port})
		assert.Equal(t, "pong", evalOK(t, fresh, fmt.Sprintf("net_adm:ping('%s')", name)), "a new node finds us")
		assert.ElementsMatch(t, []string{old.Node(), fresh.Node()}, g.Nodes())

		// The old link never went down, on either side, and still carries pings both ways.
		assert.Zero(t, g.events.count(0, node.EventLinkDown, ""), "events: %+v", g.events.since(0))
		assert.Equal(t, 2, g.events.count(0, node.EventHandshakeOK, ""), "one link per erl node: %+v", g.events.since(0))
		assert.True(t, erlHas(t, old, "hidden", name))
		assert.Equal(t, "pong", evalOK(t, old, fmt.Sprintf("net_adm:ping('%s')", name)))
		assert.True(t, g.Ping(ctxFor(t, 10*time.Second), old.Node()))
	})
}

func containsEntry(list []epmd.NameEntry, e epmd.NameEntry) bool {
	for _, x := range list {
		if x == e {
			return true
		}
	}
	return false
}
