package process_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
)

// TestReplyTags: Reply answers the three tag forms as gen:reply does: a plain ref to the pid,
// [alias|A] and OTP 26+ multi_call's [[alias|A]|Ref] through the alias A.
func TestReplyTags(t *testing.T) {
	g := startGo(t, erltest.FreePort(t), nil)
	caller := g.Spawn()
	server := g.Spawn()
	alias := caller.Alias()
	ref := g.MakeRef()
	for _, tc := range []struct {
		what string
		tag  etf.Term
	}{
		{"ref", ref},
		{"[alias|A]", etf.ImproperList{Elems: []etf.Term{etf.Atom("alias")}, Tail: alias}},
		{"[[alias|A]|Ref]", etf.ImproperList{Elems: []etf.Term{etf.ImproperList{Elems: []etf.Term{etf.Atom("alias")}, Tail: alias}}, Tail: ref}},
	} {
		require.NoError(t, server.Reply(etf.Tuple{caller.Pid(), tc.tag}, etf.Atom("ok")), tc.what)
		m := recv(t, caller, nil)
		assert.Equal(t, etf.Tuple{tc.tag, etf.Atom("ok")}, m, tc.what)
	}
	// Once the alias is gone, a reply through it reaches nobody (a late reply is dropped), for
	// both alias forms: they go to the alias, never to the pid.
	require.True(t, caller.Unalias(alias))
	for _, tag := range []etf.Term{
		etf.ImproperList{Elems: []etf.Term{etf.Atom("alias")}, Tail: alias},
		etf.ImproperList{Elems: []etf.Term{etf.ImproperList{Elems: []etf.Term{etf.Atom("alias")}, Tail: alias}}, Tail: ref},
	} {
		require.NoError(t, server.Reply(etf.Tuple{caller.Pid(), tag}, etf.Atom("late")))
	}
	require.NoError(t, server.Send(caller.Pid(), etf.Atom("marker")))
	assert.Equal(t, etf.Atom("marker"), recv(t, caller, nil), "the late replies were dropped, not queued")
}
