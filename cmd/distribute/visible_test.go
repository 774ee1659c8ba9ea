package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/internal/erltest"
)

// TestRunVisible: run is hidden by default (BEAM lists it in nodes(hidden) only) and published
// with --visible: it shows in BEAM's nodes(), net_kernel:monitor_nodes(true) reports it, a
// health loop over nodes() pings it (pong), and its answer to rex's features request (erpc served)
// reaches BEAM's rex_nodes_observer; on every runtime.
func TestRunVisible(t *testing.T) {
	isolate(t)
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		erl := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, Cookie: testCookie, Control: true})
		eval := func(expr string) string {
			t.Helper()
			out, err := erl.Eval(expr, 30*time.Second)
			require.NoError(t, err, "%s\n%s", expr, erl.Output())
			return out
		}
		require.Equal(t, "ok", eval(`net_kernel:monitor_nodes(true)`))
		ep := itoa(erl.Port())

		h := startBackground(t, "run", "--cookie", testCookie, "--epmd-port", ep, "--sname", uniqueAlive("hidden"), "--connect", erl.Node())
		hidden := strings.Fields(h.waitLine(t, "node "))[1]
		require.Eventually(t, func() bool { return eval(`nodes(hidden)`) == "["+hidden+"]" }, 20*time.Second, 20*time.Millisecond,
			"the hidden run never connected\n%s", h.stderr.String())

		v := startBackground(t, "run", "--cookie", testCookie, "--epmd-port", ep, "--sname", uniqueAlive("visible"), "--visible", "--connect", erl.Node())
		visible := strings.Fields(v.waitLine(t, "node "))[1]
		// monitor_nodes reports visible nodes only, so the first nodeup is the --visible one's.
		assert.Equal(t, visible, eval(`receive {nodeup, N} -> N after 20000 -> timeout end`), v.stderr.String())
		assert.Equal(t, "["+visible+"]", eval(`nodes()`))
		assert.Equal(t, "["+hidden+"]", eval(`nodes(hidden)`))
		// The seed's health loop on BEAM sees it, and it answers.
		assert.Equal(t, "[{"+visible+",pong}]", eval(`[{N, net_adm:ping(N)} || N <- nodes()]`))
		require.Eventually(t, func() bool {
			// true: run serves erpc (spawn requests of erpc:execute_call/4), so its features name erpc.
			return eval(`ets:lookup(persistent_term:get(rex_nodes_observer), '`+visible+`')`) == "[{"+visible+",true}]"
		}, 20*time.Second, 50*time.Millisecond, "BEAM's rex never got a features_reply naming erpc")

		assert.Equal(t, exitOK, v.stop(t))
		assert.Equal(t, visible, eval(`receive {nodedown, N} -> N after 20000 -> timeout end`))
	})
}
