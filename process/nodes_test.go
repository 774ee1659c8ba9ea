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

// TestOldConnectionDownAfterNewUp: the end of a connection whose reader was held up (here by a
// handler process) is reported after a new connection to the same node is up. The old one's
// nodedown still comes before the new one's nodeup, and what was set up over the new connection
// (a link, a monitor) is not broken by the old one's end.
func TestOldConnectionDownAfterNewUp(t *testing.T) {
	erltest.ForEachRuntime(t, testOldConnectionDownAfterNewUp)
}

func testOldConnectionDownAfterNewUp(t *testing.T, rt *erltest.Runtime) {
	e := setup(t, rt, nil, erltest.ErlOptions{})
	node := e.erl.Node()
	w := e.g.WatchNodes()
	defer w.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	blocker := e.g.SpawnHandler(func(p *process.Process, m etf.Term) {
		if m == etf.Atom("block") {
			close(entered)
			<-release
		}
	})
	require.NoError(t, blocker.Register("blocker"))
	e.eval(t, `{blocker, %s} ! block, ok`, e.goNode())
	<-entered // the first connection's reader is held in the handler
	old := e.g.Conn(node)
	require.True(t, e.g.Disconnect(node))
	<-old.Done()
	require.NoError(t, e.g.Connect(ctxFor(t, wait), node))
	require.NotSame(t, old, e.g.Conn(node))

	x := e.erlPid(t, "x", stopper)
	p := e.g.Spawn()
	p.TrapExit(true)
	require.NoError(t, p.Link(x))
	ref, err := p.Monitor(x)
	require.NoError(t, err)
	e.sync(t)
	close(release)

	var evs []process.NodeEvent
	for range 2 {
		ev := nextEvent(t, w)
		ev.Reason = nil
		evs = append(evs, ev)
	}
	assert.Equal(t, []process.NodeEvent{{Node: node}, {Node: node, Up: true}}, evs,
		"the old connection's nodedown, then the new one's nodeup")
	e.eval(t, `get(x) ! {stop, real}, ok`)
	got := []etf.Term{recv(t, p, nil), recv(t, p, nil)}
	assert.ElementsMatch(t, []etf.Term{exitMsg(x, etf.Atom("real")), downMsg(ref, x, etf.Atom("real"))}, got)
}
