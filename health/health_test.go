package health

import (
	"context"
	"encoding/json"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/process"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// checkInvariants asserts what every ClusterHealth must satisfy.
func checkInvariants(t *testing.T, h *ClusterHealth) {
	t.Helper()
	require.NotNil(t, h)
	assert.NotNil(t, h.ConnectedNodes)
	assert.NotNil(t, h.ReachableNodes)
	assert.NotNil(t, h.UnreachableNodes)
	assert.NotNil(t, h.Details)
	assert.True(t, slices.IsSorted(h.ConnectedNodes), "connected sorted: %v", h.ConnectedNodes)
	assert.True(t, slices.IsSorted(h.ReachableNodes), "reachable sorted: %v", h.ReachableNodes)
	assert.True(t, slices.IsSorted(h.UnreachableNodes), "unreachable sorted: %v", h.UnreachableNodes)
	assert.Equal(t, len(h.ConnectedNodes), h.ConnectedCount)
	require.Len(t, h.Details, len(h.ConnectedNodes))
	union := append(slices.Clone(h.ReachableNodes), h.UnreachableNodes...)
	slices.Sort(union)
	assert.Equal(t, h.ConnectedNodes, union, "reachable + unreachable = connected, each once")
	for i, d := range h.Details {
		assert.Equal(t, h.ConnectedNodes[i], d.Node, "details in connected order")
		if d.Reachable {
			assert.Contains(t, h.ReachableNodes, d.Node)
			assert.Empty(t, d.Error)
			assert.Greater(t, d.RTTSeconds, 0.0)
		} else {
			assert.Contains(t, h.UnreachableNodes, d.Node)
			assert.NotEmpty(t, d.Error)
			assert.Zero(t, d.RTTSeconds)
		}
	}
}

func TestCheckAllReachable(t *testing.T) {
	ep := freePort(t)
	self := startNode(t, "self", ep)
	peers := []*process.Node{startNode(t, "p3", ep), startNode(t, "p1", ep), startNode(t, "p2", ep)}
	connect(t, self, peers...)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := Check(ctx, self, &Options{PingTimeout: 2 * time.Second})
	require.NoError(t, err)
	checkInvariants(t, h)

	want := []string{peers[0].Self(), peers[1].Self(), peers[2].Self()}
	slices.Sort(want)
	assert.Equal(t, self.Self(), h.SelfNode)
	assert.True(t, h.IsDistributed)
	assert.Equal(t, want, h.ConnectedNodes)
	assert.Equal(t, 3, h.ConnectedCount)
	assert.Equal(t, want, h.ReachableNodes)
	assert.Empty(t, h.UnreachableNodes)
	assert.True(t, IsHealthy(self))

	// The JSON shape: snake_case keys, arrays never null, no error key when reachable.
	b, err := json.Marshal(h)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for _, k := range []string{"self_node", "is_distributed", "connected_nodes", "connected_count",
		"reachable_nodes", "unreachable_nodes", "details"} {
		assert.Contains(t, m, k)
	}
	assert.Equal(t, []any{}, m["unreachable_nodes"])
	d0 := m["details"].([]any)[0].(map[string]any)
	assert.NotContains(t, d0, "error")
	assert.Contains(t, d0, "rtt_seconds")
}

func TestCheckNoPeers(t *testing.T) {
	ep := freePort(t)
	self := startNode(t, "alone", ep)
	h, err := Check(context.Background(), self, nil)
	require.NoError(t, err)
	checkInvariants(t, h)
	assert.True(t, h.IsDistributed)
	assert.Zero(t, h.ConnectedCount)
	assert.False(t, IsHealthy(self), "no connection: not healthy")

	b, err := json.Marshal(h)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"connected_nodes":[]`)
	assert.Contains(t, string(b), `"details":[]`)
	assert.NotContains(t, string(b), "null")
}

func TestCheckNilAndStoppedNode(t *testing.T) {
	h, err := Check(context.Background(), nil, nil)
	require.NoError(t, err)
	checkInvariants(t, h)
	assert.Equal(t, "nonode@nohost", h.SelfNode)
	assert.False(t, h.IsDistributed)
	assert.Zero(t, h.ConnectedCount)
	assert.False(t, IsHealthy(nil))

	ep := freePort(t)
	self := startNode(t, "stopped", ep)
	peer := startNode(t, "peer", ep)
	connect(t, self, peer)
	require.True(t, IsHealthy(self))
	require.NoError(t, self.Stop())

	h, err = Check(context.Background(), self, nil)
	require.NoError(t, err)
	checkInvariants(t, h)
	assert.Equal(t, self.Self(), h.SelfNode)
	assert.False(t, h.IsDistributed)
	assert.Empty(t, h.ConnectedNodes)
	assert.False(t, IsHealthy(self))
}

func TestCheckContextAlreadyDone(t *testing.T) {
	ep := freePort(t)
	self := startNode(t, "ctxdone", ep)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	h, err := Check(ctx, self, nil)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, h)
}

// A peer that stops between two checks is gone from the next one, and the
// others stay reachable.
func TestCheckPeerStopped(t *testing.T) {
	ep := freePort(t)
	self := startNode(t, "self", ep)
	a, b := startNode(t, "a", ep), startNode(t, "b", ep)
	connect(t, self, a, b)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := Check(ctx, self, &Options{PingTimeout: 2 * time.Second})
	require.NoError(t, err)
	checkInvariants(t, h)
	require.Equal(t, 2, len(h.ReachableNodes))

	require.NoError(t, b.Stop())
	h, err = Check(ctx, self, &Options{PingTimeout: 2 * time.Second})
	require.NoError(t, err)
	checkInvariants(t, h)
	assert.Equal(t, []string{a.Self()}, h.ReachableNodes)
	assert.NotContains(t, h.ReachableNodes, b.Self())
	if slices.Contains(h.ConnectedNodes, b.Self()) {
		// The link had not noticed yet: then the ping must have failed.
		assert.Equal(t, []string{b.Self()}, h.UnreachableNodes)
	}
}

// A peer stopped while Check runs: whatever the timing, the partition holds
// and the live peer is reachable.
func TestCheckPeerStoppedDuringCheck(t *testing.T) {
	ep := freePort(t)
	self := startNode(t, "self", ep)
	peers := []*process.Node{startNode(t, "a", ep), startNode(t, "b", ep), startNode(t, "c", ep)}
	connect(t, self, peers...)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		_ = peers[1].Stop()
	}()
	h, err := Check(ctx, self, &Options{PingTimeout: 2 * time.Second})
	<-stopped
	require.NoError(t, err)
	checkInvariants(t, h)
	assert.Contains(t, h.ReachableNodes, peers[0].Self())
	assert.Contains(t, h.ReachableNodes, peers[2].Self())
	assert.NotContains(t, h.ConnectedNodes, self.Self())
}

// Frozen peers cost one deadline, not one each: five peers that never
// answer, with a 400 ms ping timeout, take well under the 2 s that
// sequential pings would.
func TestCheckConcurrentBoundedByPingTimeout(t *testing.T) {
	ep := freePort(t)
	self := startNode(t, "self", ep)
	live := startNode(t, "live", ep)
	connect(t, self, live)
	var silent []string
	for range 5 {
		p := startSilentPeer(t, "frozen", ep)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		require.NoError(t, self.Connect(ctx, p.name))
		cancel()
		silent = append(silent, p.name)
	}
	slices.Sort(silent)

	const timeout = 400 * time.Millisecond
	start := time.Now()
	h, err := Check(context.Background(), self, &Options{PingTimeout: timeout})
	elapsed := time.Since(start)
	require.NoError(t, err)
	checkInvariants(t, h)
	assert.GreaterOrEqual(t, elapsed, timeout, "the silent peers were waited for")
	assert.Less(t, elapsed, 1500*time.Millisecond, "pings run concurrently")
	assert.Equal(t, []string{live.Self()}, h.ReachableNodes)
	assert.Equal(t, silent, h.UnreachableNodes)
	for _, d := range h.Details {
		if !d.Reachable {
			assert.Contains(t, d.Error, "deadline exceeded")
		}
	}
	// A failed ping keeps the link by default.
	assert.Equal(t, 6, self.ConnectedCount())
}

// The caller's context bounds Check the same way when PingTimeout is 0,
// and DisconnectUnreachable drops the links of the nodes that failed.
func TestCheckBoundedByContextAndDisconnect(t *testing.T) {
	ep := freePort(t)
	self := startNode(t, "self", ep)
	live := startNode(t, "live", ep)
	connect(t, self, live)
	var silent []string
	for range 3 {
		p := startSilentPeer(t, "frozen", ep)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		require.NoError(t, self.Connect(ctx, p.name))
		cancel()
		silent = append(silent, p.name)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
	defer cancel()
	start := time.Now()
	h, err := Check(ctx, self, &Options{DisconnectUnreachable: true})
	elapsed := time.Since(start)
	require.NoError(t, err)
	checkInvariants(t, h)
	assert.Less(t, elapsed, 1200*time.Millisecond)
	assert.Equal(t, []string{live.Self()}, h.ReachableNodes)
	slices.Sort(silent)
	assert.Equal(t, silent, h.UnreachableNodes, "exactly the silent peers are unreachable")
	assert.Eventually(t, func() bool {
		return slices.Equal(self.Nodes(), []string{live.Self()})
	}, 3*time.Second, 20*time.Millisecond, "unreachable links dropped, the live one kept")
}

// A real BEAM node frozen with SIGSTOP: its TCP connection stays open and
// accepts our bytes, but nothing answers. Check still returns within the
// ping timeout, reports it unreachable, keeps its link, and reports the
// other node reachable.
func TestCheckFrozenErl(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		ep := freePort(t)
		self := startNode(t, "self", ep)
		live := startNode(t, "live", ep)
		erl := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt,
			Name: erltest.UniqueName("frozen"), LongNames: true, Cookie: testCookie, EPMDPort: ep,
		})
		connect(t, self, live)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, self.Connect(ctx, erl.Node()))

		h, err := Check(ctx, self, &Options{PingTimeout: 5 * time.Second})
		require.NoError(t, err)
		checkInvariants(t, h)
		require.Len(t, h.ReachableNodes, 2, "both answer before the freeze: %+v", h.Details)

		require.NoError(t, erl.Signal(syscall.SIGSTOP))
		t.Cleanup(func() { _ = erl.Signal(syscall.SIGCONT) })

		const timeout = 500 * time.Millisecond
		start := time.Now()
		h, err = Check(context.Background(), self, &Options{PingTimeout: timeout})
		elapsed := time.Since(start)
		require.NoError(t, err)
		checkInvariants(t, h)
		assert.GreaterOrEqual(t, elapsed, timeout)
		assert.Less(t, elapsed, 2*time.Second, "a frozen node costs one deadline")
		assert.Equal(t, []string{live.Self()}, h.ReachableNodes)
		assert.Equal(t, []string{erl.Node()}, h.UnreachableNodes)
		assert.Contains(t, self.Nodes(), erl.Node(), "the link to the frozen node is kept")
	})
}
