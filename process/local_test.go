package process_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// goPair starts two Go nodes on one EPMD.
func goPair(t testing.TB, opts *process.Options) (*process.Node, *process.Node) {
	t.Helper()
	port := erltest.FreePort(t)
	erltest.StartEPMD(t, port)
	return startGo(t, port, opts), startGo(t, port, opts)
}

func TestSelectiveReceive(t *testing.T) {
	t.Parallel()
	a, _ := goPair(t, nil)
	p := a.Spawn()
	for i := 1; i <= 5; i++ {
		require.NoError(t, a.Send(p.Pid(), etf.Tuple{etf.Atom("n"), int64(i)}))
	}
	require.NoError(t, a.Send(p, etf.Atom("wanted")))
	require.NoError(t, a.Send(p, etf.Tuple{etf.Atom("n"), int64(6)}))
	// The wanted message is taken from the middle; the others stay, in order.
	assert.Equal(t, etf.Atom("wanted"), recv(t, p, func(m etf.Term) bool { return m == etf.Atom("wanted") }))
	m := recv(t, p, func(m etf.Term) bool { return tuple(m)[1] == int64(4) })
	assert.Equal(t, etf.Tuple{etf.Atom("n"), int64(4)}, m)
	for _, i := range []int64{1, 2, 3, 5, 6} {
		assert.Equal(t, etf.Tuple{etf.Atom("n"), i}, recv(t, p, nil))
	}
	// A match that waits: a later message that matches ends it.
	go func() { _ = a.Send(p, etf.Atom("later")) }()
	assert.Equal(t, etf.Atom("later"), recv(t, p, func(m etf.Term) bool { return m == etf.Atom("later") }))
}

func TestReceiveTimeoutAndExit(t *testing.T) {
	t.Parallel()
	a, _ := goPair(t, nil)
	p := a.Spawn()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.Receive(ctx)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// A Receive waiting when the process exits returns an *ExitError with the reason.
	errc := make(chan error, 1)
	go func() {
		_, err := p.Receive(context.Background())
		errc <- err
	}()
	p.Exit(etf.Atom("stopped"))
	err = <-errc
	var ee *process.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, etf.Atom("stopped"), ee.Reason)
	_, err = p.Receive(ctxFor(t, wait))
	require.ErrorAs(t, err, &ee)
	assert.False(t, a.IsAlive(p.Pid()))
	assert.NoError(t, a.Send(p.Pid(), etf.Atom("to the dead")), "a message to a dead pid is dropped, as in BEAM")
}

// TestConcurrentReceivers: two goroutines receiving from one process, one selectively, each get
// their message: a message that one receiver passes over wakes the other.
func TestConcurrentReceivers(t *testing.T) {
	t.Parallel()
	a, _ := goPair(t, nil)
	for i := 0; i < 200; i++ {
		p := a.Spawn()
		var wg sync.WaitGroup
		wg.Add(2)
		var gotA, gotB etf.Term
		var errA, errB error
		go func() {
			defer wg.Done()
			gotA, errA = p.ReceiveMatch(ctxFor(t, wait), func(m etf.Term) bool { return m == etf.Atom("a") })
		}()
		go func() {
			defer wg.Done()
			gotB, errB = p.ReceiveMatch(ctxFor(t, wait), func(m etf.Term) bool { return m == etf.Atom("b") })
		}()
		runtime.Gosched()
		require.NoError(t, a.Send(p, etf.Atom("b")))
		require.NoError(t, a.Send(p, etf.Atom("a")))
		wg.Wait()
		require.NoError(t, errA, "round %d", i)
		require.NoError(t, errB, "round %d", i)
		assert.Equal(t, etf.Atom("a"), gotA)
		assert.Equal(t, etf.Atom("b"), gotB)
		p.Exit(etf.Atom("normal"))
	}
}

// TestSelectiveReceiveWhileOthersTake: a selective receive keeps finding its message when another
// receiver takes messages from the front of the mailbox meanwhile.
func TestSelectiveReceiveWhileOthersTake(t *testing.T) {
	t.Parallel()
	a, _ := goPair(t, nil)
	for i := 0; i < 200; i++ {
		p := a.Spawn()
		require.NoError(t, a.Send(p, etf.Atom("x1")))
		require.NoError(t, a.Send(p, etf.Atom("x2")))
		res := make(chan error, 1)
		go func() {
			_, err := p.ReceiveMatch(ctxFor(t, 5*time.Second), func(m etf.Term) bool { return m == etf.Atom("target") })
			res <- err
		}()
		runtime.Gosched()
		_, err := p.Receive(ctxFor(t, wait)) // takes x1 while the other waits
		require.NoError(t, err)
		require.NoError(t, a.Send(p, etf.Atom("target")))
		require.NoError(t, <-res, "round %d", i)
		p.Exit(etf.Atom("normal"))
	}
}

// TestLocalLinksAndMonitors: links, monitors and exit signals between processes of one node.
func TestLocalLinksAndMonitors(t *testing.T) {
	t.Parallel()
	a, _ := goPair(t, nil)
	p, q, r := a.Spawn(), a.Spawn(), a.Spawn()
	p.TrapExit(true)
	require.NoError(t, p.Link(q.Pid()))
	assert.Equal(t, []etf.Pid{p.Pid()}, q.Links())
	q.Exit(etf.Atom("boom"))
	assert.Equal(t, exitMsg(q.Pid(), etf.Atom("boom")), recv(t, p, nil))
	assert.Empty(t, p.Links())

	require.NoError(t, p.Register("pname"))
	ref1, err := r.Monitor(p.Pid())
	require.NoError(t, err)
	ref2, err := r.Monitor(etf.Atom("pname"))
	require.NoError(t, err)
	p.Exit(etf.Atom("x"))
	got := []etf.Term{recv(t, r, nil), recv(t, r, nil)}
	assert.ElementsMatch(t, []etf.Term{downMsg(ref1, p.Pid(), etf.Atom("x")),
		downMsg(ref2, etf.Tuple{etf.Atom("pname"), etf.Atom(a.Self())}, etf.Atom("x"))}, got)

	// Dead targets: noproc.
	ref3, err := r.Monitor(p.Pid())
	require.NoError(t, err)
	assert.Equal(t, downMsg(ref3, p.Pid(), etf.Atom("noproc")), recv(t, r, nil))
	r.TrapExit(true)
	require.NoError(t, r.Link(p.Pid()))
	assert.Equal(t, exitMsg(p.Pid(), etf.Atom("noproc")), recv(t, r, nil))
	s := a.Spawn()
	require.NoError(t, s.Link(p.Pid()))
	assert.Equal(t, etf.Atom("noproc"), waitDone(t, s))

	// kill ends a trapping process with killed; its links see killed.
	u, v := a.Spawn(), a.Spawn()
	u.TrapExit(true)
	require.NoError(t, r.Link(u.Pid()))
	require.NoError(t, v.SendExit(u.Pid(), etf.Atom("kill")))
	assert.Equal(t, etf.Atom("killed"), waitDone(t, u))
	assert.Equal(t, exitMsg(u.Pid(), etf.Atom("killed")), recv(t, r, nil))
	// A linked process ending with kill sends kill, an ordinary reason: trapped here.
	w := a.Spawn()
	require.NoError(t, r.Link(w.Pid()))
	w.Exit(etf.Atom("kill"))
	assert.Equal(t, exitMsg(w.Pid(), etf.Atom("kill")), recv(t, r, nil))
	assert.True(t, a.IsAlive(r.Pid()))
	// exit(self(), normal) ends a process that does not trap exits.
	x := a.Spawn()
	require.NoError(t, x.SendExit(x.Pid(), etf.Atom("normal")))
	assert.Equal(t, etf.Atom("normal"), waitDone(t, x))
}

// TestGoToGo: two Go nodes: send to a name and to a pid, links, monitors and exit signals across.
func TestGoToGo(t *testing.T) {
	t.Parallel()
	a, b := goPair(t, nil)
	pb := b.Spawn()
	require.NoError(t, pb.Register("box"))
	pa := a.Spawn()
	require.NoError(t, pa.Send(process.Name{Name: "box", Node: b.Self()}, etf.Tuple{etf.Atom("hi"), pa.Pid()}))
	m := tuple(recv(t, pb, nil))
	assert.Equal(t, etf.Tuple{etf.Atom("hi"), pa.Pid()}, m)
	require.NoError(t, pb.Send(m[1], etf.Atom("back")))
	assert.Equal(t, etf.Atom("back"), recv(t, pa, nil))
	// A *Process of the other node is sent to over the connection, in order with its pid.
	for i := 0; i < 1000; i++ {
		var to any = pb
		if i%2 == 1 {
			to = pb.Pid()
		}
		require.NoError(t, pa.Send(to, int64(i)))
	}
	for i := 0; i < 1000; i++ {
		require.Equal(t, int64(i), recv(t, pb, nil))
	}

	// Link and monitor across; the remote end's exit reaches both.
	pa.TrapExit(true)
	require.NoError(t, pa.Link(pb.Pid()))
	ref, err := pa.Monitor(pb)
	require.NoError(t, err)
	require.NoError(t, pa.Send(pb, etf.Atom("sync")))
	recv(t, pb, nil) // pb has the LINK and the MONITOR_P: they came before
	assert.Equal(t, []etf.Pid{pa.Pid()}, pb.Links())
	pb.Exit(etf.Atom("over"))
	got := []etf.Term{recv(t, pa, nil), recv(t, pa, nil)}
	assert.ElementsMatch(t, []etf.Term{exitMsg(pb.Pid(), etf.Atom("over")), downMsg(ref, pb.Pid(), etf.Atom("over"))}, got)

	// exit/2 across: kill.
	pc := b.Spawn()
	pc.TrapExit(true)
	require.NoError(t, pa.SendExit(pc.Pid(), etf.Atom("kill")))
	assert.Equal(t, etf.Atom("killed"), waitDone(t, pc))
	// Ping both ways.
	assert.True(t, a.Ping(ctxFor(t, wait), b.Self()))
	assert.True(t, b.Ping(ctxFor(t, wait), a.Self()))
}

// TestStopEndsEverything: Stop ends every process with shutdown (remote links see it), leaves
// no process behind, and a process spawned afterwards is dead at once.
func TestStopEndsEverything(t *testing.T) {
	t.Parallel()
	a, b := goPair(t, nil)
	watch := b.Spawn()
	watch.TrapExit(true)
	procs := make([]*process.Process, 100)
	for i := range procs {
		procs[i] = a.Spawn()
	}
	require.NoError(t, watch.Link(procs[0].Pid()))
	require.NoError(t, watch.Send(procs[0], etf.Atom("sync")))
	recv(t, procs[0], nil)
	require.Greater(t, a.ProcessCount(), 100)
	require.NoError(t, a.Stop())
	assert.Equal(t, 0, a.ProcessCount())
	for _, p := range procs {
		select {
		case <-p.Done():
		default:
			t.Fatalf("process %v still running after Stop", p.Pid())
		}
		assert.Equal(t, etf.Atom("shutdown"), p.Reason())
	}
	m := recv(t, watch, nil)
	assert.Equal(t, procs[0].Pid(), tuple(m)[1])
	assert.Contains(t, []etf.Term{etf.Atom("shutdown"), etf.Atom("noconnection")}, tuple(m)[2])
	late := a.Spawn()
	<-late.Done()
	_, err := late.Receive(ctxFor(t, wait))
	var ee *process.ExitError
	assert.True(t, errors.As(err, &ee))
	assert.NoError(t, a.Stop(), "Stop twice")
}

// TestNameTupleDestination: {Name, Node} as an etf.Tuple works for Send and Monitor, like a Name.
func TestNameTupleDestination(t *testing.T) {
	t.Parallel()
	a, b := goPair(t, nil)
	q := b.Spawn()
	require.NoError(t, q.Register("box"))
	p := a.Spawn()
	dest := etf.Tuple{etf.Atom("box"), etf.Atom(b.Self())}
	require.NoError(t, p.Send(dest, etf.Atom("hi")))
	assert.Equal(t, etf.Atom("hi"), recv(t, q, nil))
	ref, err := p.Monitor(dest)
	require.NoError(t, err)
	require.NoError(t, p.Send(q, etf.Atom("sync")))
	recv(t, q, nil)
	q.Exit(etf.Atom("bye"))
	assert.Equal(t, downMsg(ref, dest, etf.Atom("bye")), recv(t, p, nil))
	assert.ErrorIs(t, p.Send(etf.Tuple{etf.Atom("x")}, etf.Atom("hi")), process.ErrBadDestination)
}

// TestWantMessage: the process layer tells the link layer which fragmented messages to skip:
// those to a pid, name or alias of this node with no process (counted as NoProcess).
func TestWantMessage(t *testing.T) {
	t.Parallel()
	a, _ := goPair(t, nil)
	w, ok := a.Handler().(interface {
		WantMessage(*node.Conn, control.Message) bool
	})
	require.True(t, ok, "the Handler offers WantMessage")
	p := a.Spawn()
	require.NoError(t, p.Register("here"))
	gone := a.Spawn()
	gone.Exit(etf.Atom("normal"))
	assert.True(t, w.WantMessage(nil, control.RegSend{To: "here"}))
	assert.True(t, w.WantMessage(nil, control.Send{To: p.Pid()}))
	assert.True(t, w.WantMessage(nil, control.AliasSend{Alias: p.Alias()}))
	assert.True(t, w.WantMessage(nil, control.Link{From: p.Pid(), To: p.Pid()}))
	before := a.ProcessStats().NoProcess
	assert.False(t, w.WantMessage(nil, control.RegSend{To: "nosuch"}))
	assert.False(t, w.WantMessage(nil, control.SendSender{To: gone.Pid()}))
	assert.False(t, w.WantMessage(nil, control.AliasSend{Alias: a.MakeRef()}))
	assert.Equal(t, before+3, a.ProcessStats().NoProcess)
}

// TestRegistry: names are unique per node, a process has at most one (registering it again,
// even under the same name, fails as register/2's badarg does), Unregister frees the name, an
// exited process drops it.
func TestRegistry(t *testing.T) {
	t.Parallel()
	a, _ := goPair(t, nil)
	p, q := a.Spawn(), a.Spawn()
	require.NoError(t, p.Register("one"))
	assert.ErrorIs(t, p.Register("one"), process.ErrNameTaken)
	assert.ErrorIs(t, p.Register("two"), process.ErrNameTaken)
	assert.ErrorIs(t, q.Register("one"), process.ErrNameTaken)
	assert.Error(t, q.Register("undefined"))
	pid, ok := a.Whereis("one")
	assert.True(t, ok)
	assert.Equal(t, p.Pid(), pid)
	assert.Contains(t, a.Registered(), etf.Atom("one"))
	assert.True(t, a.Unregister("one"))
	assert.False(t, a.Unregister("one"))
	require.NoError(t, q.Register("one"))
	require.NoError(t, p.Register("two"))
	q.Exit(etf.Atom("normal"))
	_, ok = a.Whereis("one")
	assert.False(t, ok)
	assert.ErrorIs(t, q.Register("three"), process.ErrNoProcess)
	b, _ := goPair(t, nil)
	assert.Error(t, b.Register("foreign", a.Spawn()), "a process of another node")
}
