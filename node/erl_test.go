package node

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/internal/erltest"
)

// TestErlLinkThroughHandler: against a real erl, the link layer carries control messages both
// ways through the Handler: erl's net_adm:ping reaches the test Handler's net_kernel (pong),
// and the Handler's is_auth call reaches erl's net_kernel and its answer comes back.
func TestErlLinkThroughHandler(t *testing.T) {
	t.Parallel()
	erltest.RequireErl(t)
	port := freePort(t) // outside the ephemeral range (helpers_test.go)
	erltest.StartEPMD(t, port)
	n := startNode(t, shortName("go"), testCookie, Options{EPMDPort: port, EPMD: EPMDExternal})

	out := erltest.ErlEval(t, erltest.ErlOptions{Name: erltest.UniqueName("pinger"), Cookie: testCookie, EPMDPort: port},
		`io:format("~p~n", [net_adm:ping('`+n.Self()+`')])`)
	assert.Equal(t, "pong", strings.TrimSpace(out), "erl -> Go")

	e := erltest.StartErl(t, erltest.ErlOptions{Cookie: testCookie, EPMDPort: port})
	ctx := testCtx(t, 10*time.Second)
	rtt, err := pingRTT(n, ctx, e.Node())
	require.NoError(t, err, "Go -> erl")
	assert.Less(t, rtt, 5*time.Second)
	assert.Contains(t, n.Nodes(), e.Node())
}

// TestErlPingNodeWithoutHandler: a node started without a Handler answers BEAM's ping
// monitor with noproc, so net_adm:ping returns pang at once instead of hanging.
func TestErlPingNodeWithoutHandler(t *testing.T) {
	t.Parallel()
	erltest.RequireErl(t)
	port := freePort(t) // outside the ephemeral range (helpers_test.go)
	erltest.StartEPMD(t, port)
	n := startNode(t, shortName("bare"), testCookie, Options{EPMDPort: port, EPMD: EPMDExternal, Handler: noProcesses{}})
	start := time.Now()
	out := erltest.ErlEval(t, erltest.ErlOptions{Name: erltest.UniqueName("pinger"), Cookie: testCookie, EPMDPort: port, Timeout: 30 * time.Second},
		`io:format("~p~n", [net_adm:ping('`+n.Self()+`')])`)
	assert.Equal(t, "pang", strings.TrimSpace(out))
	assert.Less(t, time.Since(start), 20*time.Second, "pang without waiting for a timeout")
	assert.Equal(t, Stats{}, n.Stats())
}
