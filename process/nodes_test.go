package process_test

import (
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/process"
)

func nextEvent(t *testing.T, w *process.NodeWatch) process.NodeEvent {
	t.Helper()
	ev, err := w.Next(ctxFor(t, wait))
	require.NoError(t, err)
	return ev
}

// crossLinks links and monitors an erl process from fresh Go processes: a trapping linked one,
// a monitoring one and a node monitor. They are what a connection going down must reach.
type crossLinks struct {
	linked, monitor, nodeMon *process.Process
	target                   etf.Pid
	ref                      etf.Ref
}

func (e *peerEnv) crossLinks(t *testing.T, key string) *crossLinks {
	t.Helper()
	c := &crossLinks{linked: e.g.Spawn(), monitor: e.g.Spawn(), nodeMon: e.g.Spawn()}
	c.target = e.erlPid(t, key, stopper)
	c.linked.TrapExit(true)
	require.NoError(t, c.linked.Link(c.target))
	var err error
	c.ref, err = c.monitor.Monitor(c.target)
	require.NoError(t, err)
	c.nodeMon.MonitorNode(e.erl.Node())
	return c
}

// check asserts that each got noconnection (nodedown for the node monitor).
func (c *crossLinks) check(t *testing.T, node string) {
	t.Helper()
	assert.Equal(t, exitMsg(c.target, etf.Atom("noconnection")), recv(t, c.linked, nil))
	assert.Equal(t, downMsg(c.ref, c.target, etf.Atom("noconnection")), recv(t, c.monitor, nil))
	assert.Equal(t, etf.Tuple{etf.Atom("nodedown"), etf.Atom(node)}, recv(t, c.nodeMon, nil))
}

// TestNodeEvents: WatchNodes, MonitorNodes and MonitorNode see nodeup and nodedown (with a
// reason) for a connect and a Disconnect; links across the connection get noconnection,
// monitors a DOWN with noconnection.
func TestNodeEvents(t *testing.T) { erltest.ForEachRuntime(t, testNodeEvents) }

func testNodeEvents(t *testing.T, rt *erltest.Runtime) {
	port := erltest.FreePort(t)
	erltest.StartEPMD(t, port)
	g := startGo(t, port, nil)
	w := g.WatchNodes()
	defer w.Close()
	watcher := g.Spawn()
	g.MonitorNodes(watcher, true)
	inbox := g.Spawn()
	require.NoError(t, inbox.Register("inbox"))

	erl := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, EPMDPort: port, Cookie: testCookie, Control: true})
	node := erl.Node()
	// The erl side connects (inbound for us).
	out, err := erl.Eval(`net_adm:ping('`+g.Self()+`')`, 2*wait)
	require.NoError(t, err)
	require.Equal(t, "pong", out)
	assert.Equal(t, process.NodeEvent{Node: node, Up: true}, nextEvent(t, w))
	assert.Equal(t, etf.Tuple{etf.Atom("nodeup"), etf.Atom(node)}, recv(t, watcher, nil))

	_, err = erl.Eval(`{inbox, '`+g.Self()+`'} ! {shell, self()}, ok`, 2*wait)
	require.NoError(t, err)
	e := &peerEnv{g: g, erl: erl, rt: rt, port: port, inbox: inbox}
	e.shell = tuple(recv(t, inbox, tagged("shell")))[1].(etf.Pid)
	c := e.crossLinks(t, "x")
	e.sync(t)

	require.True(t, g.Disconnect(node))
	ev := nextEvent(t, w)
	assert.Equal(t, node, ev.Node)
	assert.False(t, ev.Up)
	assert.Error(t, ev.Reason, "nodedown carries a reason")
	assert.Equal(t, etf.Tuple{etf.Atom("nodedown"), etf.Atom(node)}, recv(t, watcher, nil))
	c.check(t, node)

	// Go connects again (outbound): nodeup again.
	require.NoError(t, g.Connect(ctxFor(t, wait), node))
	assert.Equal(t, process.NodeEvent{Node: node, Up: true}, nextEvent(t, w))
	assert.Equal(t, etf.Tuple{etf.Atom("nodeup"), etf.Atom(node)}, recv(t, watcher, nil))

	// Unsubscribed watchers see no more.
	g.MonitorNodes(watcher, false)
	w2 := g.WatchNodes()
	require.True(t, g.Disconnect(node))
	assert.False(t, nextEvent(t, w2).Up)
	assert.False(t, nextEvent(t, w).Up)
	w2.Close()
	_, err = w2.Next(ctxFor(t, wait))
	assert.ErrorIs(t, err, process.ErrStopped)
	assert.Equal(t, 0, watcher.Len())
}

// TestPeerKilled: kill -9 of the BEAM node: links get noconnection, monitors a DOWN with
// noconnection, node monitors nodedown, all within the tick time.
func TestPeerKilled(t *testing.T) { erltest.ForEachRuntime(t, testPeerKilled) }

func testPeerKilled(t *testing.T, rt *erltest.Runtime) {
	const tick = 4
	e := setup(t, rt, &process.Options{Node: nodeTick(tick)}, erltest.ErlOptions{TickTime: tick})
	w := e.g.WatchNodes()
	defer w.Close()
	c := e.crossLinks(t, "x")
	e.sync(t)
	start := time.Now()
	e.erl.Kill()
	c.check(t, e.erl.Node())
	ev := nextEvent(t, w)
	assert.Equal(t, e.erl.Node(), ev.Node)
	assert.False(t, ev.Up)
	assert.Error(t, ev.Reason)
	assert.Less(t, time.Since(start), 2*tick*time.Second, "noconnection within the tick time")
	assert.NotContains(t, e.g.Nodes(), e.erl.Node())
}

// TestPeerFrozen: a BEAM node that stops answering (SIGSTOP) is dropped by the ticks: links and
// monitors get noconnection within about the tick time.
func TestPeerFrozen(t *testing.T) { erltest.ForEachRuntime(t, testPeerFrozen) }

func testPeerFrozen(t *testing.T, rt *erltest.Runtime) {
	const tick = 2
	e := setup(t, rt, &process.Options{Node: nodeTick(tick)}, erltest.ErlOptions{TickTime: tick})
	c := e.crossLinks(t, "x")
	e.sync(t)
	start := time.Now()
	require.NoError(t, e.erl.Signal(syscall.SIGSTOP))
	c.check(t, e.erl.Node())
	elapsed := time.Since(start)
	assert.Greater(t, elapsed, tick*time.Second/2, "dropped by the ticks, not at once")
	assert.Less(t, elapsed, 3*tick*time.Second, "dropped within about the tick time")
	e.erl.Kill()
}
