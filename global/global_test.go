package global_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
)

// TestCluster: a visible Go node joins a cluster of three BEAM nodes by connecting to one; it
// ends up connected to all, in each one's nodes(); global:sync() returns on all within 2 s;
// names registered on BEAM reach Go and names registered from Go reach BEAM, and go when the Go
// process ends; the seed's health loop on a BEAM node pings the Go node.
func TestCluster(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		port, bs := startCluster(t, rt, 3)
		// A BEAM name before the Go node arrives: an echo process on the second node.
		eval(t, bs[1], `P = spawn(fun F() -> receive {From, M} -> From ! {echo, node(), M}, F() end end), yes = global:register_name(beam_echo, P), ok`)
		gn := startGo(t, port)
		self := gn.n.Self()

		start := time.Now()
		require.NoError(t, gn.n.Connect(ctxFor(t, wait), bs[0].Node()))
		for _, b := range bs {
			// A BEAM node that knows the Go node (nodeup) and is in sync with it.
			out := eval(t, b, fmt.Sprintf(`WF = fun WF(0) -> timeout; WF(I) -> case lists:member(%s, nodes()) of true -> global:sync(); false -> timer:sleep(10), WF(I-1) end end, WF(500)`, atomIn(self)))
			require.Equal(t, "ok", out, "global:sync() on %s", b.Node())
		}
		took := time.Since(start)
		t.Logf("%s: connected and global:sync() ok on 3 BEAM nodes %v after the connection", rt.Name, took)
		assert.Less(t, took, 2*time.Second, "global:sync() on every BEAM node within 2 s of the connection")
		for _, b := range bs {
			assert.Contains(t, gn.n.Nodes(), b.Node())
		}
		require.NoError(t, gn.g.Sync(ctxFor(t, wait)))

		// BEAM name, seen and messaged from Go.
		pid, ok := gn.g.Whereis(etf.Atom("beam_echo"))
		require.True(t, ok, "beam_echo known to Go")
		assert.Equal(t, etf.Atom(bs[1].Node()), pid.Node)
		me := gn.n.Spawn()
		defer me.Exit(etf.Atom("normal"))
		_, err := gn.g.SendFrom(me, etf.Atom("beam_echo"), etf.Tuple{me.Pid(), etf.Atom("hello")})
		require.NoError(t, err)
		m := recv(t, me, nil)
		assert.Equal(t, etf.Tuple{etf.Atom("echo"), etf.Atom(bs[1].Node()), etf.Atom("hello")}, m)

		// Go name, seen and messaged from BEAM.
		ok, err = gn.g.Register(ctxFor(t, wait), etf.Atom("go_inbox"), me.Pid())
		require.NoError(t, err)
		require.True(t, ok)
		for _, b := range bs {
			assert.Equal(t, self, eval(t, b, `node(global:whereis_name(go_inbox))`))
		}
		eval(t, bs[2], `global:send(go_inbox, {hi, node()})`)
		assert.Equal(t, etf.Tuple{etf.Atom("hi"), etf.Atom(bs[2].Node())}, recv(t, me, nil))
		// A second registration of the name is refused everywhere.
		assert.Equal(t, "no", eval(t, bs[0], `global:register_name(go_inbox, self())`))
		ok, err = gn.g.Register(ctxFor(t, wait), etf.Atom("beam_echo"), gn.n.Spawn().Pid())
		require.NoError(t, err)
		assert.False(t, ok)

		// The name goes when the Go process ends.
		me.Exit(etf.Atom("normal"))
		for _, b := range bs {
			waitUntil(t, b, `global:whereis_name(go_inbox) =:= undefined`, wait)
		}
		assert.Eventually(t, func() bool { _, ok := gn.g.Whereis(etf.Atom("go_inbox")); return !ok }, wait, 10*time.Millisecond)

		// The seed's health loop on a BEAM node includes the Go node.
		out := eval(t, bs[0], `[{N, net_adm:ping(N)} || N <- nodes()]`)
		assert.Contains(t, out, "{"+self+",pong}")
		assert.Equal(t, "3", strconv.Itoa(strings.Count(out, "pong")))
		noGlobalComplaints(t, bs)
	})
}
