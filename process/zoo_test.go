package process_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/process"
)

// zoo is an Erlang list of terms of every external-format type a BEAM sends.
const zoo = `[0, 255, 256, -1, 1 bsl 27, -(1 bsl 27) - 1, 1 bsl 31, 1 bsl 63, -(1 bsl 64), 1 bsl 1000, ` +
	`1.5, -0.0, 1.0e300, foo, 'héllo wörld', '', <<>>, <<"bin">>, <<1:1>>, <<255, 3:3>>, ` +
	`"", "abc", [1, 2 | 3], [a | b], {}, {a, {b, {c}}}, list_to_tuple(lists:seq(1, 300)), ` +
	`lists:seq(1, 300), #{}, #{a => 1, {x} => [y], <<"k">> => #{nested => true}}, ` +
	`maps:from_list([{I, I} || I <- lists:seq(1, 40)]), self(), make_ref(), hd(erlang:ports()), ` +
	`fun lists:map/2, fun(X) -> X end, [unicode:characters_to_binary("日本")], "日本"]`

// TestTermZoo: every term of the zoo sent BEAM -> Go -> BEAM comes back equal (=:=), through a
// Go process that echoes what it receives.
func TestTermZoo(t *testing.T) { erltest.ForEachRuntime(t, testTermZoo) }

func testTermZoo(t *testing.T, rt *erltest.Runtime) {
	e := setup(t, rt, nil, erltest.ErlOptions{})
	echo := e.g.SpawnHandler(func(p *process.Process, m etf.Term) {
		if tt := tuple(m); len(tt) == 3 && tt[0] == etf.Atom("echo") {
			_ = p.Send(tt[1], etf.Tuple{etf.Atom("echoed"), tt[2]})
		}
	})
	require.NoError(t, echo.Register("echo"))
	out := e.eval(t, `Z = `+zoo+`, R = [begin {echo, %s} ! {echo, self(), T}, `+
		`receive {echoed, B} -> case B =:= T of true -> ok; false -> {T, B} end after 20000 -> {timeout, T} end end || T <- Z], `+
		`{length(Z), [X || X <- R, X =/= ok]}`, e.goNode())
	assert.Equal(t, "{38,[]}", out, "the terms that did not come back equal")
}
