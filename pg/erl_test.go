package pg_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/pg"
)

// TestDefaultScopeWithBEAM: a visible Go node takes part in BEAM's default scope pg (kernel's
// start_pg) on every runtime: members joined on either side before the connection arrive with
// the sync and later ones with join; BEAM's pg:get_members lists the Go pids and the Go scope
// BEAM's; leaves go both ways; a Go process that ends leaves its groups on BEAM; a Go scope that
// stops takes its members with it; a BEAM node that goes down takes its members with it.
func TestDefaultScopeWithBEAM(t *testing.T) { erltest.ForEachRuntime(t, testDefaultScopeWithBEAM) }

func testDefaultScopeWithBEAM(t *testing.T, rt *erltest.Runtime) {
	port := erltest.FreePort(t)
	rt.StartEPMD(t, port)
	erl := startErl(t, rt, port)
	g := startGo(t, port, true)
	s := startScope(t, g, pg.DefaultScope, nil)

	// Before the connection: one member on each side.
	goEarly := g.Spawn()
	require.NoError(t, s.Join(etf.Atom("chat"), goEarly.Pid()))
	require.NoError(t, g.Connect(ctxFor(t, wait), erl.Node()))
	erl.learnShell(t, g)
	erlEarly := erl.spawnErl(t, g, "early")
	// BEAM's scope had no member when Go connected: the join reaches Go as a join.
	erl.eval(t, `pg:join(chat, get(early))`)
	members(t, s, etf.Atom("chat"), goEarly.Pid(), erlEarly)
	erl.give(t, g, "goearly", goEarly.Pid())
	erl.eventually(t, "true", `lists:sort(pg:get_members(chat)) =:= lists:sort([get(early), get(goearly)])`)
	assert.Equal(t, "true", erl.eval(t, `pg:get_local_members(chat) =:= [get(early)]`))

	// A composite group: a tuple with a binary and a charlist (STRING_EXT on the wire).
	group := etf.Tuple{etf.Atom("room"), []byte("lobby"), etf.List{int64(1), int64(2)}}
	goLate := g.Spawn()
	require.NoError(t, s.Join(group, goLate.Pid(), goLate.Pid()))
	erl.give(t, g, "golate", goLate.Pid())
	erl.eventually(t, "true", `pg:get_members({room, <<"lobby">>, [1,2]}) =:= [get(golate), get(golate)]`)
	erlLate := erl.spawnErl(t, g, "late")
	erl.eval(t, `pg:join({room, <<"lobby">>, [1,2]}, [get(late)])`)
	members(t, s, group, goLate.Pid(), goLate.Pid(), erlLate)
	assert.Equal(t, "[chat,{room,<<\"lobby\">>,[1,2]}]", erl.eval(t, `lists:sort(pg:which_groups())`))

	// Leaves, both ways.
	require.NoError(t, s.Leave(group, goLate.Pid()))
	erl.eventually(t, "true", `lists:sort(pg:get_members({room, <<"lobby">>, [1,2]})) =:= lists:sort([get(golate), get(late)])`)
	assert.Equal(t, "ok", erl.eval(t, `pg:leave({room, <<"lobby">>, [1,2]}, get(late))`))
	members(t, s, group, goLate.Pid())

	// A Go process that ends leaves every group it joined, on BEAM too.
	goLate.Exit(etf.Atom("done"))
	erl.eventually(t, "[]", `pg:get_members({room, <<"lobby">>, [1,2]})`)
	members(t, s, group)
	// A BEAM process that ends: BEAM's scope tells Go.
	erl.eval(t, `get(early) ! stop, ok`)
	members(t, s, etf.Atom("chat"), goEarly.Pid())

	// The Go scope stops: BEAM drops its members.
	s.Stop()
	erl.eventually(t, "[]", `pg:get_members(chat)`)
}

// TestBEAMNodeDown: when a BEAM node goes down (killed), its members leave the Go scope's view,
// and the other BEAM node's stay.
func TestBEAMNodeDown(t *testing.T) { erltest.ForEachRuntime(t, testBEAMNodeDown) }

func testBEAMNodeDown(t *testing.T, rt *erltest.Runtime) {
	port := erltest.FreePort(t)
	rt.StartEPMD(t, port)
	e1 := startErl(t, rt, port)
	e2 := startErl(t, rt, port)
	g := startGo(t, port, true)
	s := startScope(t, g, pg.DefaultScope, nil)
	var pids []etf.Pid
	for _, e := range []*erlNode{e1, e2} {
		require.NoError(t, g.Connect(ctxFor(t, wait), e.Node()))
		p := e.spawnErl(t, g, "m")
		e.eval(t, `pg:join(workers, get(m))`)
		pids = append(pids, p)
	}
	members(t, s, etf.Atom("workers"), pids...)
	e1.Kill()
	members(t, s, etf.Atom("workers"), pids[1])
}

// TestNamedScope: a scope a BEAM node starts with pg:start(Scope) works the same, and the
// default scope is separate from it.
func TestNamedScope(t *testing.T) { erltest.ForEachRuntime(t, testNamedScope) }

func testNamedScope(t *testing.T, rt *erltest.Runtime) {
	port := erltest.FreePort(t)
	rt.StartEPMD(t, port)
	erl := startErl(t, rt, port)
	g := startGo(t, port, true)
	s := startScope(t, g, "myscope", nil)
	def := startScope(t, g, pg.DefaultScope, nil)
	erl.eval(t, `{ok, _} = pg:start(myscope), ok`)
	require.NoError(t, g.Connect(ctxFor(t, wait), erl.Node()))
	erl.learnShell(t, g)
	p := g.Spawn()
	require.NoError(t, s.Join(etf.Atom("jobs"), p.Pid()))
	erl.give(t, g, "p", p.Pid())
	erl.eventually(t, "true", `pg:get_members(myscope, jobs) =:= [get(p)]`)
	q := erl.spawnErl(t, g, "q")
	erl.eval(t, `pg:join(myscope, jobs, get(q))`)
	members(t, s, etf.Atom("jobs"), p.Pid(), q)
	assert.Empty(t, def.GetMembers(etf.Atom("jobs")))
	assert.Equal(t, "[]", erl.eval(t, `pg:get_members(jobs)`))
}

// TestHiddenNodeDiscovers: BEAM's pg never discovers a hidden node, but answers one that
// discovers it: a hidden Go node with DiscoverHidden takes part in the default scope both
// ways, and Scope.Discover does the same for a scope started without it.
func TestHiddenNodeDiscovers(t *testing.T) { erltest.ForEachRuntime(t, testHiddenNodeDiscovers) }

func testHiddenNodeDiscovers(t *testing.T, rt *erltest.Runtime) {
	port := erltest.FreePort(t)
	rt.StartEPMD(t, port)
	erl := startErl(t, rt, port)
	g := startGo(t, port, false)
	s := startScope(t, g, pg.DefaultScope, &pg.Options{DiscoverHidden: true})
	other := startScope(t, g, "other", nil)
	erl.eval(t, `{ok, _} = pg:start(other), ok`)
	require.NoError(t, g.Connect(ctxFor(t, wait), erl.Node()))
	assert.False(t, g.Conn(erl.Node()).Visible())
	erl.learnShell(t, g)
	p := g.Spawn()
	require.NoError(t, s.Join(etf.Atom("h"), p.Pid()))
	erl.give(t, g, "p", p.Pid())
	erl.eventually(t, "true", `pg:get_members(h) =:= [get(p)]`)
	q := erl.spawnErl(t, g, "q")
	erl.eval(t, `pg:join(h, get(q))`)
	members(t, s, etf.Atom("h"), p.Pid(), q)

	// Without DiscoverHidden, an explicit Discover.
	require.NoError(t, other.Join(etf.Atom("h"), p.Pid()))
	require.NoError(t, other.Discover(ctxFor(t, wait), erl.Node()))
	erl.eventually(t, "true", `pg:get_members(other, h) =:= [get(p)]`)
	erl.eval(t, `pg:join(other, h, get(q))`)
	members(t, other, etf.Atom("h"), p.Pid(), q)
}

// TestBEAMScopeRestart: BEAM's scope process is killed and restarted by kernel's supervisor:
// the Go scope drops the old one's members (its monitor fires) and the new one, which
// discovers the Go node at start, learns the Go members again.
func TestBEAMScopeRestart(t *testing.T) { erltest.ForEachRuntime(t, testBEAMScopeRestart) }

func testBEAMScopeRestart(t *testing.T, rt *erltest.Runtime) {
	port := erltest.FreePort(t)
	rt.StartEPMD(t, port)
	erl := startErl(t, rt, port)
	g := startGo(t, port, true)
	s := startScope(t, g, pg.DefaultScope, nil)
	require.NoError(t, g.Connect(ctxFor(t, wait), erl.Node()))
	erl.learnShell(t, g)
	p := g.Spawn()
	require.NoError(t, s.Join(etf.Atom("svc"), p.Pid()))
	erl.give(t, g, "p", p.Pid())
	q := erl.spawnErl(t, g, "q")
	erl.eval(t, `pg:join(svc, get(q))`)
	members(t, s, etf.Atom("svc"), p.Pid(), q)
	erl.eventually(t, "true", `lists:sort(pg:get_members(svc)) =:= lists:sort([get(p), get(q)])`)

	erl.eval(t, `Old = whereis(pg), exit(Old, kill), ok`)
	members(t, s, etf.Atom("svc"), p.Pid())
	erl.eventually(t, "true", `pg:get_members(svc) =:= [get(p)]`)
}
