package process_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/process"
)

// TestAliases: BEAM sends to a Go alias until it is deactivated; Go sends to a BEAM alias.
func TestAliases(t *testing.T) { erltest.ForEachRuntime(t, testAliases) }

func testAliases(t *testing.T, rt *erltest.Runtime) {
	e := setup(t, rt, nil, erltest.ErlOptions{})
	p := e.g.Spawn()
	a := p.Alias()
	e.give(t, "a", a)
	e.eval(t, `get(a) ! via_alias, ok`)
	assert.Equal(t, etf.Atom("via_alias"), recv(t, p, nil))
	require.True(t, p.Unalias(a))
	before := e.g.ProcessStats().NoProcess
	e.eval(t, `get(a) ! lost, {inbox, %s} ! after_lost, ok`, e.goNode())
	assert.Equal(t, etf.Atom("after_lost"), recv(t, e.inbox, nil))
	assert.Equal(t, before+1, e.g.ProcessStats().NoProcess, "a message to an inactive alias is dropped and counted")
	assert.Equal(t, 0, p.Len())

	// Go -> a BEAM alias.
	e.eval(t, `A = alias(), put(ba, A), {inbox, %s} ! {alias, A}, ok`, e.goNode())
	ba := tuple(recv(t, e.inbox, tagged("alias")))[1].(etf.Ref)
	require.NoError(t, p.Send(ba, etf.Atom("to_beam_alias")))
	assert.Equal(t, "true", e.eval(t, `receive to_beam_alias -> true after 20000 -> timeout end`))
}

// TestGenServerCalls: gen_server:call from BEAM to a Go process answered with Reply (the reply
// goes to the caller's alias on OTP 24+), and a call from Go to a BEAM gen_server.
func TestGenServerCalls(t *testing.T) { erltest.ForEachRuntime(t, testGenServerCalls) }

func testGenServerCalls(t *testing.T, rt *erltest.Runtime) {
	e := setup(t, rt, nil, erltest.ErlOptions{})
	server := e.g.SpawnHandler(func(p *process.Process, m etf.Term) {
		if c := tuple(m); len(c) == 3 && c[0] == etf.Atom("$gen_call") {
			_ = p.Reply(c[1], etf.Tuple{etf.Atom("echo"), c[2]})
		}
	})
	require.NoError(t, server.Register("echo"))
	assert.Equal(t, `{echo,hello}`, e.eval(t, `gen_server:call({echo, %s}, hello, 20000)`, e.goNode()))
	e.give(t, "srv", server.Pid())
	assert.Equal(t, `{echo,<<"by pid">>}`, e.eval(t, `gen_server:call(get(srv), <<"by pid">>, 20000)`))
	// A call to a Go name that does not exist exits with noproc, at once.
	assert.Contains(t, e.eval(t, `catch gen_server:call({nosuch, %s}, x, 20000)`, e.goNode()), "noproc")

	// Go calls a BEAM gen_server: net_kernel answers is_auth with yes.
	p := e.g.Spawn()
	ref := e.g.MakeRef()
	require.NoError(t, p.Send(process.Name{Name: "net_kernel", Node: e.erl.Node()},
		etf.Tuple{etf.Atom("$gen_call"), etf.Tuple{p.Pid(), ref}, etf.Tuple{etf.Atom("is_auth"), etf.Atom(e.g.Self())}}))
	assert.Equal(t, etf.Tuple{ref, etf.Atom("yes")}, recv(t, p, nil))
}
