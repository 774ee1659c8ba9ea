package pg_test

import (
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/process"
)

// TestPeerMessages: a Go scope fed by a hand-driven peer on another node. Malformed messages and
// messages of unknown peers change nothing and cost nothing; the sync, join and leave shapes of
// OTP 25 and 27 (a bare pid or a list) and OTP 29's local_data and update forms all work; a
// peer that ends takes its members with it; and what the scope sends back is pg's protocol.
func TestPeerMessages(t *testing.T) {
	t.Parallel()
	port := erltest.FreePort(t)
	a := startGo(t, port, true)
	b := startGo(t, port, true)
	s := startScope(t, a, "sc", nil)
	require.NoError(t, b.Connect(ctxFor(t, wait), a.Self()))
	peer := b.Spawn() // plays the peer's scope process
	m1, m2 := b.Spawn().Pid(), b.Spawn().Pid()
	to := process.Name{Name: "sc", Node: a.Self()}
	send := func(msg etf.Term) { t.Helper(); require.NoError(t, peer.Send(s.Pid(), msg)) }
	recv := func() etf.Term {
		t.Helper()
		m, err := peer.Receive(ctxFor(t, wait))
		require.NoError(t, err)
		return m
	}

	// Not pg's protocol, or from a peer the scope does not know: ignored.
	for _, m := range []etf.Term{
		etf.Atom("junk"), etf.Tuple{}, etf.Tuple{etf.Atom("discover"), etf.Atom("notapid")},
		etf.Tuple{etf.Atom("$gen_cast"), etf.Tuple{etf.Atom("sync"), peer.Pid(), etf.Atom("notalist")}},
		etf.Tuple{etf.Atom("$gen_cast"), etf.Tuple{etf.Atom("sync"), peer.Pid(), etf.List{etf.Tuple{etf.Atom("g"), etf.List{int64(1)}}}}},
		etf.Tuple{etf.Atom("join"), peer.Pid(), etf.Atom("g"), m1},
		etf.Tuple{etf.Atom("leave"), peer.Pid(), m1, etf.List{etf.Atom("g")}},
		etf.Tuple{etf.Atom("$gen_call"), etf.Tuple{peer.Pid(), etf.Atom("tag")}, etf.Atom("x")},
		etf.Tuple{etf.Atom("DOWN"), etf.Atom("x"), etf.Atom("process"), m1, etf.Atom("normal")},
		etf.Tuple{etf.Atom("join"), peer.Pid(), new(big.Int).Lsh(big.NewInt(1), 100), etf.List{}},
	} {
		send(m)
	}
	// The discover of a new peer: our sync cast, then our discover.
	require.NoError(t, peer.Send(to, etf.Tuple{etf.Atom("discover"), peer.Pid(), int64(1)}))
	assert.Equal(t, etf.Tuple{etf.Atom("$gen_cast"), etf.Tuple{etf.Atom("sync"), s.Pid(), etf.List{}}}, recv())
	assert.Equal(t, etf.Tuple{etf.Atom("discover"), s.Pid()}, recv())
	assert.Empty(t, s.WhichGroups(), "nothing before came through")

	send(etf.Tuple{etf.Atom("$gen_cast"), etf.Tuple{etf.Atom("sync"), peer.Pid(), etf.List{etf.Tuple{etf.Atom("g"), etf.List{m1}}}}})
	members(t, s, etf.Atom("g"), m1)
	send(etf.Tuple{etf.Atom("join"), peer.Pid(), etf.Atom("g"), m2})
	members(t, s, etf.Atom("g"), m1, m2)
	send(etf.Tuple{etf.Atom("leave"), peer.Pid(), etf.List{m1, m2}, etf.List{etf.Atom("g"), etf.Atom("nosuch")}})
	members(t, s, etf.Atom("g"))
	// OTP 29's forms.
	send(etf.Tuple{etf.Atom("$gen_cast"), etf.Tuple{etf.Atom("local_data"), peer.Pid(), int64(1),
		etf.Map{{Key: etf.Atom("h"), Value: etf.List{m1, m2}}}}})
	members(t, s, etf.Atom("h"), m1, m2)
	send(etf.Tuple{etf.Atom("update"), peer.Pid(), etf.List{etf.Tuple{etf.Atom("h"), etf.List{}, etf.List{m2}},
		etf.Tuple{etf.Atom("i"), etf.List{m2}, etf.List{}}}})
	members(t, s, etf.Atom("h"), m1)
	members(t, s, etf.Atom("i"), m2)
	// A sync replaces what the peer said before.
	send(etf.Tuple{etf.Atom("$gen_cast"), etf.Tuple{etf.Atom("sync"), peer.Pid(), etf.List{etf.Tuple{etf.Atom("j"), etf.List{m1}}}}})
	members(t, s, etf.Atom("j"), m1)
	assert.Equal(t, []etf.Term{etf.Atom("j")}, s.WhichGroups())

	// Our own join and leave reach the peer in pg's shapes.
	p := a.Spawn()
	require.NoError(t, s.Join(etf.Atom("k"), p.Pid()))
	assert.Equal(t, etf.Tuple{etf.Atom("join"), s.Pid(), etf.Atom("k"), etf.List{p.Pid()}}, recv())
	require.NoError(t, s.Join(etf.Atom("k"), p.Pid()))
	assert.Equal(t, etf.Tuple{etf.Atom("join"), s.Pid(), etf.Atom("k"), etf.List{p.Pid()}}, recv())
	require.NoError(t, s.Leave(etf.Atom("k"), p.Pid()))
	assert.Equal(t, etf.Tuple{etf.Atom("leave"), s.Pid(), etf.List{p.Pid()}, etf.List{etf.Atom("k")}}, recv())
	// A member that ends: one leave per group, the pid once per join.
	require.NoError(t, s.Join(etf.Atom("k"), p.Pid()))
	recv()
	p.Exit(etf.Atom("bye"))
	assert.Equal(t, etf.Tuple{etf.Atom("leave"), s.Pid(), etf.List{p.Pid(), p.Pid()}, etf.List{etf.Atom("k")}}, recv())

	// The peer ends: its members go.
	peer.Exit(etf.Atom("normal"))
	members(t, s, etf.Atom("j"))
	assert.Empty(t, s.WhichGroups())
}
