package process_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/process"
)

// stopper is an erl process body that exits with the reason it is told.
const stopper = `receive {stop, R} -> exit(R) end`

// sync makes sure the erl node has handled everything Go sent it so far: the shell gets a
// message sent after it (one connection, in order) and answers.
func (e *peerEnv) sync(t *testing.T) {
	t.Helper()
	require.NoError(t, e.g.Send(e.shell, etf.Atom("sync")))
	e.eval(t, `receive sync -> ok after 20000 -> timeout end`)
}

// linkedOnErl reports whether the erl process stored as key has a link to pid.
func (e *peerEnv) linkedOnErl(t *testing.T, key string, pid etf.Pid) bool {
	t.Helper()
	e.give(t, "probe", pid)
	return e.eval(t, `{links, L} = process_info(get(%s), links), lists:member(get(probe), L)`, key) == "true"
}

func exitMsg(from etf.Pid, reason etf.Term) etf.Tuple {
	return etf.Tuple{etf.Atom("EXIT"), from, reason}
}

// TestLinkGoToBEAM: a Go process links to BEAM processes: trapped exits arrive as {'EXIT', Pid,
// Reason}, untrapped ones end it with the reason, normal is ignored, a dead or unknown pid gives
// noproc.
func TestLinkGoToBEAM(t *testing.T) { erltest.ForEachRuntime(t, testLinkGoToBEAM) }

func testLinkGoToBEAM(t *testing.T, rt *erltest.Runtime) {
	e := setup(t, rt, nil, erltest.ErlOptions{})
	reason := etf.Tuple{etf.Atom("shutdown"), []byte("why")}

	// Trapping: {'EXIT', Pid, Reason}.
	x := e.erlPid(t, "x", stopper)
	trapper := e.g.Spawn()
	trapper.TrapExit(true)
	require.NoError(t, trapper.Link(x))
	e.sync(t)
	assert.True(t, e.linkedOnErl(t, "x", trapper.Pid()), "the link is set on the BEAM side")
	e.eval(t, `get(x) ! {stop, {shutdown, <<"why">>}}, ok`)
	assert.Equal(t, exitMsg(x, reason), recv(t, trapper, nil))

	// Not trapping: the Go process ends with the reason.
	y := e.erlPid(t, "y", stopper)
	victim := e.g.Spawn()
	require.NoError(t, victim.Link(y))
	e.sync(t)
	e.eval(t, `get(y) ! {stop, boom}, ok`)
	assert.Equal(t, etf.Atom("boom"), waitDone(t, victim))
	assert.False(t, e.g.IsAlive(victim.Pid()))
	_, err := victim.Receive(ctxFor(t, wait))
	var ee *process.ExitError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, etf.Atom("boom"), ee.Reason)

	// Normal is ignored by a process that does not trap exits. The shell waits for z's end,
	// then messages the survivor: z's exit signal went out before that message.
	z := e.erlPid(t, "z", stopper)
	survivor := e.g.Spawn()
	require.NoError(t, survivor.Link(z))
	ref, err := survivor.Monitor(z)
	require.NoError(t, err)
	e.sync(t)
	e.give(t, "survivor", survivor.Pid())
	e.eval(t, `R = monitor(process, get(z)), get(z) ! {stop, normal}, receive {'DOWN', R, _, _, _} -> get(survivor) ! after_z, ok end`)
	assert.Equal(t, etf.Tuple{etf.Atom("DOWN"), ref, etf.Atom("process"), z, etf.Atom("normal")}, recv(t, survivor, tagged("DOWN")))
	assert.Equal(t, etf.Atom("after_z"), recv(t, survivor, nil))
	assert.True(t, e.g.IsAlive(survivor.Pid()), "a normal exit signal from a link does not end the process")

	// A dead pid: noproc, trapped or ending the process.
	dead := e.erlPid(t, "dead", `ok`)
	e.eval(t, `R = monitor(process, get(dead)), receive {'DOWN', R, _, _, _} -> ok end`)
	require.NoError(t, trapper.Link(dead))
	assert.Equal(t, exitMsg(dead, etf.Atom("noproc")), recv(t, trapper, nil))
	plain := e.g.Spawn()
	require.NoError(t, plain.Link(dead))
	assert.Equal(t, etf.Atom("noproc"), waitDone(t, plain))
	// A pid that never existed on that node: noproc too.
	unknown := etf.Pid{Node: x.Node, ID: 32000, Serial: 7, Creation: x.Creation}
	require.NoError(t, trapper.Link(unknown))
	assert.Equal(t, exitMsg(unknown, etf.Atom("noproc")), recv(t, trapper, nil))
	assert.True(t, e.g.IsAlive(trapper.Pid()))
}

// TestLinkBEAMToGo: BEAM processes link to Go processes: a Go exit reaches a trapping BEAM
// process as {'EXIT', GoPid, Reason}, a BEAM exit ends the linked Go process, a dead Go pid gives
// noproc.
func TestLinkBEAMToGo(t *testing.T) { erltest.ForEachRuntime(t, testLinkBEAMToGo) }

// reporter is an erl process body: it traps exits, links to get(target) of the shell (passed as
// T), and reports every message to the Go inbox as {got, Key, Msg}.
func reporter(e *peerEnv, key string) string {
	return `process_flag(trap_exit, true), link(T), {inbox, ` + e.goNode() + `} ! {got, ` + key + `, linked}, ` +
		`(fun L() -> receive M -> {inbox, ` + e.goNode() + `} ! {got, ` + key + `, M}, L() end end)()`
}

func got(key string) func(etf.Term) bool {
	return func(m etf.Term) bool {
		tt := tuple(m)
		return len(tt) == 3 && tt[0] == etf.Atom("got") && tt[1] == etf.Atom(key)
	}
}

func testLinkBEAMToGo(t *testing.T, rt *erltest.Runtime) {
	e := setup(t, rt, nil, erltest.ErlOptions{})

	// A trapping BEAM process sees the Go process's exit reason.
	g1 := e.g.Spawn()
	e.give(t, "g1", g1.Pid())
	e.eval(t, `T = get(g1), spawn(fun() -> %s end), ok`, reporter(e, "r1"))
	assert.Equal(t, etf.Atom("linked"), tuple(recv(t, e.inbox, got("r1")))[2])
	g1.Exit(etf.Tuple{etf.Atom("bye"), int64(1)})
	assert.Equal(t, exitMsg(g1.Pid(), etf.Tuple{etf.Atom("bye"), int64(1)}), tuple(recv(t, e.inbox, got("r1")))[2])

	// A Go process killed by exit/2 exits with killed, and its links see killed.
	g2 := e.g.Spawn()
	g2.TrapExit(true)
	e.give(t, "g2", g2.Pid())
	e.eval(t, `T = get(g2), spawn(fun() -> %s end), ok`, reporter(e, "r2"))
	assert.Equal(t, etf.Atom("linked"), tuple(recv(t, e.inbox, got("r2")))[2])
	e.eval(t, `exit(get(g2), kill), ok`)
	assert.Equal(t, etf.Atom("killed"), waitDone(t, g2))
	assert.Equal(t, exitMsg(g2.Pid(), etf.Atom("killed")), tuple(recv(t, e.inbox, got("r2")))[2])

	// A BEAM process that links to a Go process and dies takes it along.
	g3 := e.g.Spawn()
	e.give(t, "g3", g3.Pid())
	e.eval(t, `T = get(g3), P = spawn(fun() -> link(T), %s end), put(l3, P), ok`, stopper)
	e.eval(t, `(fun W(0) -> false; W(K) -> case process_info(get(l3), links) of {links, [_]} -> true; _ -> timer:sleep(10), W(K - 1) end end)(2000)`)
	e.eval(t, `get(l3) ! {stop, {crash, 3}}, ok`)
	assert.Equal(t, etf.Tuple{etf.Atom("crash"), int64(3)}, waitDone(t, g3))

	// Linking to a dead Go pid: noproc.
	g4 := e.g.Spawn()
	g4.Exit(etf.Atom("normal"))
	e.give(t, "g4", g4.Pid())
	e.eval(t, `T = get(g4), spawn(fun() -> %s end), ok`, reporter(e, "r4"))
	assert.Equal(t, etf.Atom("linked"), tuple(recv(t, e.inbox, got("r4")))[2])
	assert.Equal(t, exitMsg(g4.Pid(), etf.Atom("noproc")), tuple(recv(t, e.inbox, got("r4")))[2])
}

// TestUnlinkBothWays: after an unlink (UNLINK_ID on OTP 23+), the other side's exit sends no
// signal, in either direction.
func TestUnlinkBothWays(t *testing.T) { erltest.ForEachRuntime(t, testUnlinkBothWays) }

func testUnlinkBothWays(t *testing.T, rt *erltest.Runtime) {
	e := setup(t, rt, nil, erltest.ErlOptions{})
	// Go unlinks, then the BEAM process exits: no signal.
	x := e.erlPid(t, "x", stopper)
	p := e.g.Spawn()
	p.TrapExit(true)
	require.NoError(t, p.Link(x))
	e.sync(t)
	require.True(t, e.linkedOnErl(t, "x", p.Pid()))
	assert.Equal(t, []etf.Pid{x}, p.Links())
	require.NoError(t, p.Unlink(x))
	assert.Empty(t, p.Links())
	e.sync(t)
	assert.False(t, e.linkedOnErl(t, "x", p.Pid()), "the unlink reached the BEAM side")
	ref, err := p.Monitor(x)
	require.NoError(t, err)
	e.eval(t, `get(x) ! {stop, unlinked}, ok`)
	assert.Equal(t, etf.Atom("DOWN"), tuple(recv(t, p, nil))[0], "the DOWN comes, and no EXIT before it")
	assert.Equal(t, 0, p.Len())
	_ = ref

	// BEAM unlinks, then the Go process exits: the BEAM process gets no EXIT.
	q := e.g.Spawn()
	e.give(t, "q", q.Pid())
	e.eval(t, `T = get(q), spawn(fun() -> process_flag(trap_exit, true), link(T), unlink(T), R = monitor(process, T), `+
		`{inbox, %s} ! {got, u, unlinked}, receive {'DOWN', R, _, _, Why} -> `+
		`{inbox, %s} ! {got, u, {down, Why, receive {'EXIT', _, _} = E -> E after 0 -> no_exit end}} end end), ok`, e.goNode(), e.goNode())
	assert.Equal(t, etf.Atom("unlinked"), tuple(recv(t, e.inbox, got("u")))[2])
	assert.Empty(t, q.Links(), "the BEAM side's unlink removed the link here")
	q.Exit(etf.Atom("gone"))
	assert.Equal(t, etf.Tuple{etf.Atom("down"), etf.Atom("gone"), etf.Atom("no_exit")}, tuple(recv(t, e.inbox, got("u")))[2])
}
