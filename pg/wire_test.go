package pg_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
)

// TestWireShapes records what BEAM's scope process sends, with a plain Go process registered as
// pg in place of a Scope: on a visible nodeup {discover, ScopePid} (OTP 29: {discover,
// ScopePid, 1}, its data_publisher's protocol version); to our {discover, Pid} it answers
// {'$gen_cast', {sync, ScopePid, [{Group, Pids}]}} and, not knowing us yet, a discover of its
// own; and it sends {join, ScopePid, Group, PidOrPids} to a peer it knows: OTP 25 and 27 pass on
// what pg:join was given (a bare pid), OTP 29 always sends a list.
func TestWireShapes(t *testing.T) { erltest.ForEachRuntime(t, testWireShapes) }

func testWireShapes(t *testing.T, rt *erltest.Runtime) {
	port := erltest.FreePort(t)
	rt.StartEPMD(t, port)
	erl := startErl(t, rt, port)
	g := startGo(t, port, true)
	raw := g.Spawn()
	require.NoError(t, raw.Register("pg"))
	erl.eval(t, `pg:join(early, spawn(fun() -> receive stop -> ok end end))`)
	require.NoError(t, g.Connect(ctxFor(t, wait), erl.Node()))

	recv := func() etf.Tuple {
		t.Helper()
		m, err := raw.Receive(ctxFor(t, wait))
		require.NoError(t, err)
		tt, ok := m.(etf.Tuple)
		require.True(t, ok, "%v", m)
		return tt
	}
	isPidOf := func(v etf.Term) etf.Pid {
		t.Helper()
		p, ok := v.(etf.Pid)
		require.True(t, ok, "%v is a pid", v)
		assert.Equal(t, etf.Atom(erl.Node()), p.Node)
		return p
	}
	// The nodeup discover.
	d := recv()
	require.Equal(t, etf.Atom("discover"), d[0])
	scope := isPidOf(d[1])
	if rt.Release >= "29" {
		assert.Equal(t, etf.Tuple{etf.Atom("discover"), scope, int64(1)}, d)
	} else {
		assert.Len(t, d, 2)
	}

	// Our discover: a sync cast, then (we are new to it) its own discover.
	require.NoError(t, raw.Send(scope, etf.Tuple{etf.Atom("discover"), raw.Pid()}))
	s := recv()
	require.Len(t, s, 2)
	assert.Equal(t, etf.Atom("$gen_cast"), s[0])
	sync := s[1].(etf.Tuple)
	require.Len(t, sync, 3)
	assert.Equal(t, etf.Atom("sync"), sync[0])
	assert.Equal(t, scope, sync[1])
	groups := sync[2].(etf.List)
	require.Len(t, groups, 1)
	assert.Equal(t, etf.Atom("early"), groups[0].(etf.Tuple)[0])
	require.Len(t, groups[0].(etf.Tuple)[1], 1)
	isPidOf(groups[0].(etf.Tuple)[1].(etf.List)[0])
	d2 := recv()
	assert.Equal(t, etf.Atom("discover"), d2[0])
	assert.Equal(t, scope, d2[1])

	// A join of one pid on BEAM.
	erl.eval(t, `pg:join(late, spawn(fun() -> receive stop -> ok end end))`)
	j := recv()
	require.Len(t, j, 4)
	assert.Equal(t, etf.Atom("join"), j[0])
	assert.Equal(t, scope, j[1])
	assert.Equal(t, etf.Atom("late"), j[2])
	if rt.Release >= "29" {
		require.Len(t, j[3], 1)
		isPidOf(j[3].(etf.List)[0])
	} else {
		isPidOf(j[3])
	}
	// A leave: {leave, ScopePid, PidOrPids, [Group]}.
	erl.eval(t, `[P] = pg:get_local_members(late), pg:leave(late, P)`)
	l := recv()
	require.Len(t, l, 4)
	assert.Equal(t, etf.Atom("leave"), l[0])
	assert.Equal(t, scope, l[1])
	assert.Equal(t, etf.List{etf.Atom("late")}, l[3])
	if rt.Release >= "29" {
		require.Len(t, l[2], 1)
		isPidOf(l[2].(etf.List)[0])
	} else {
		isPidOf(l[2])
	}
}
