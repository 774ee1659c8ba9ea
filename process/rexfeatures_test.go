package process_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// TestRexFeaturesWithoutRex: BEAM's rex sends {Pid, features_request} to rex on every visible
// nodeup. A visible node that runs no rex (the rpc package's) answers it itself, as rex does:
// BEAM records the answer in its rex_nodes_observer table, with erpc false for a node that
// serves no spawn requests and true for one that does.
func TestRexFeaturesWithoutRex(t *testing.T) { erltest.ForEachRuntime(t, testRexFeaturesWithoutRex) }

func testRexFeaturesWithoutRex(t *testing.T, rt *erltest.Runtime) {
	port := erltest.FreePort(t)
	rt.StartEPMD(t, port)
	erl := rt.StartErl(t, erltest.ErlOptions{EPMDPort: port, Cookie: testCookie, Control: true})
	plain := startGo(t, port, &process.Options{Node: node.Options{Visible: true}})
	spawning := startGo(t, port, &process.Options{Node: node.Options{Visible: true, Flags: handshake.FlagSpawn},
		Spawn: func(n *process.Node, c *node.Conn, req control.SpawnRequest, _ control.Payload) {
			n.RefuseSpawn(c, req, "notsup")
		}})
	for _, g := range []*process.Node{plain, spawning} {
		require.True(t, g.Ping(ctxFor(t, wait), erl.Node()))
	}
	observed := func(g *process.Node) string {
		var out string
		require.Eventually(t, func() bool {
			var err error
			out, err = erl.Eval(`ets:lookup(persistent_term:get(rex_nodes_observer), '`+g.Self()+`')`, wait)
			require.NoError(t, err)
			return out != "[]"
		}, wait, 50*time.Millisecond, "BEAM never recorded a features_reply from %s", g.Self())
		return out
	}
	assert.Equal(t, "[{"+plain.Self()+",false}]", observed(plain))
	assert.Equal(t, "[{"+spawning.Self()+",true}]", observed(spawning))

	// A rex of its own takes the request instead.
	g := startGo(t, port, &process.Options{Node: node.Options{Visible: true}})
	rex := g.Spawn()
	require.NoError(t, rex.Register("rex"))
	require.True(t, g.Ping(ctxFor(t, wait), erl.Node()))
	m := recv(t, rex, nil)
	require.Len(t, tuple(m), 2)
	assert.Equal(t, etf.Atom("features_request"), tuple(m)[1])
}
