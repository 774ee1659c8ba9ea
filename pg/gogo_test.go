package pg_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/pg"
)

// TestGoScopes: two Go nodes share a scope the way BEAM nodes do: members joined before the
// connection arrive with the sync, later joins and leaves as they happen, a process that ends
// leaves, repeated joins count, and a node that stops takes its members with it.
func TestGoScopes(t *testing.T) {
	t.Parallel()
	port := erltest.FreePort(t)
	a := startGo(t, port, true) // the first node starts the embedded EPMD
	b := startGo(t, port, true)
	sa := startScope(t, a, "chat", nil)
	sb := startScope(t, b, "chat", nil)

	early := a.Spawn()
	require.NoError(t, sa.Join("lobby", early.Pid()))
	assert.Equal(t, []etf.Pid{early.Pid()}, sa.GetLocalMembers("lobby"))
	require.NoError(t, a.Connect(ctxFor(t, wait), b.Self()))
	members(t, sb, "lobby", early.Pid())
	assert.Empty(t, sb.GetLocalMembers("lobby"))

	late := b.Spawn()
	require.NoError(t, sb.Join("lobby", late.Pid(), late.Pid()))
	members(t, sa, "lobby", early.Pid(), late.Pid(), late.Pid())
	require.NoError(t, sb.Leave("lobby", late.Pid()))
	members(t, sa, "lobby", early.Pid(), late.Pid())
	assert.ErrorIs(t, sb.Leave("elsewhere", late.Pid()), pg.ErrNotJoined)
	assert.ErrorIs(t, sb.Join("lobby", early.Pid()), pg.ErrNotLocal)

	// Groups are Erlang terms: a charlist given as etf.String and as a list of integers is one
	// group.
	require.NoError(t, sa.Join(etf.Tuple{etf.Atom("room"), etf.String("ab")}, early.Pid()))
	members(t, sb, etf.Tuple{etf.Atom("room"), etf.List{int64(97), int64(98)}}, early.Pid())
	// A Go string is a binary; which_groups' order is Erlang's (tuples before binaries).
	assert.Equal(t, []etf.Term{etf.Tuple{etf.Atom("room"), etf.String("ab")}, []byte("lobby")}, sb.WhichGroups())
	assert.Equal(t, []etf.Term{[]byte("lobby")}, sb.WhichLocalGroups())

	early.Exit(etf.Atom("bye"))
	members(t, sb, "lobby", late.Pid())
	members(t, sb, etf.Tuple{etf.Atom("room"), etf.String("ab")})
	assert.Empty(t, sa.GetLocalMembers("lobby"))

	require.NoError(t, b.Stop())
	members(t, sa, "lobby")
	assert.Empty(t, sa.WhichGroups())
	sa.Stop()
	assert.ErrorIs(t, sa.Join("lobby", a.Spawn().Pid()), pg.ErrStopped)
}
