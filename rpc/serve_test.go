package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/rpc"
)

// testRegistry holds the Go functions the tests call from BEAM, in module gotest.
func testRegistry() *rpc.Registry {
	r := rpc.NewRegistry()
	r.Register("gotest", "add", 2, func(_ context.Context, a etf.List) (etf.Term, error) {
		x, ok1 := a[0].(int64)
		y, ok2 := a[1].(int64)
		if !ok1 || !ok2 {
			return nil, rpc.Error(etf.Atom("badarith"))
		}
		return x + y, nil
	})
	r.Register("gotest", "echo", rpc.AnyArity, func(_ context.Context, a etf.List) (etf.Term, error) {
		return a, nil
	})
	r.Register("gotest", "fail", 0, func(context.Context, etf.List) (etf.Term, error) {
		return nil, errors.New("it failed")
	})
	r.Register("gotest", "panic", 0, func(context.Context, etf.List) (etf.Term, error) {
		panic("it panicked")
	})
	r.Register("gotest", "throw", 0, func(context.Context, etf.List) (etf.Term, error) {
		return nil, rpc.Throw(etf.Atom("thrown"))
	})
	r.Register("gotest", "exit", 0, func(context.Context, etf.List) (etf.Term, error) {
		return nil, rpc.Exit(etf.Atom("exited"))
	})
	r.Register("gotest", "print", 1, func(ctx context.Context, a etf.List) (etf.Term, error) {
		b, _ := a[0].([]byte)
		if s, ok := a[0].(etf.String); ok {
			b = []byte(s)
		}
		if _, err := io.WriteString(rpc.Stdout(ctx), string(b)); err != nil {
			return nil, err
		}
		return etf.Atom("printed"), nil
	})
	r.Register("gotest", "wait", 0, func(ctx context.Context, _ etf.List) (etf.Term, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	return r
}

// TestBEAMCallsGo: erpc:call, rpc:call, erpc:multicall and rpc:multicall from Erlang reach Go
// functions, with every outcome shaped as BEAM shapes it.
func TestBEAMCallsGo(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		e := newEnv(t, rt)
		goN := fmt.Sprintf("'%s'", e.g.Self())
		catch := func(expr string) string { return e.eval(t, `try `+expr+` catch C:R -> {caught, C, R} end`) }

		assert.Equal(t, "3", e.eval(t, `erpc:call(`+goN+`, gotest, add, [1, 2])`))
		assert.Equal(t, "3", e.eval(t, `rpc:call(`+goN+`, gotest, add, [1, 2])`))
		assert.Equal(t, "3", e.eval(t, `erpc:call(`+goN+`, gotest, add, [1, 2], 5000)`))
		assert.Equal(t, "[a,<<\"b\">>,{c}]", e.eval(t, `erpc:call(`+goN+`, gotest, echo, [a, <<"b">>, {c}])`))
		assert.Equal(t, "[1,2,3]", e.eval(t, `erpc:call(`+goN+`, gotest, echo, [1, 2, 3])`), "a STRING_EXT argument list")
		assert.Equal(t, e.g.Self(), e.eval(t, `erpc:call(`+goN+`, erlang, node, [])`))

		// undef exactly as a BEAM node raises it: compare with the erl node itself.
		assert.Equal(t, "{caught,error,{exception,undef,[{nomod,nofun,[1],[]}]}}", catch(`erpc:call(`+goN+`, nomod, nofun, [1])`))
		assert.Equal(t, "true", e.eval(t, `[A, B] = erpc:multicall([`+goN+`, node()], nomod, nofun, [1]), A =:= B`))
		assert.Equal(t, "{badrpc,{'EXIT',{undef,[{nomod,nofun,[1],[]}]}}}", e.eval(t, `rpc:call(`+goN+`, nomod, nofun, [1])`))
		assert.Equal(t, "true", e.eval(t, `rpc:call(`+goN+`, gotest, add, [1]) =:= rpc:call(node(), gotest, add, [1])`))

		// Exceptions of each class, and Go errors and panics as error exceptions.
		assert.Equal(t, "{caught,throw,thrown}", catch(`erpc:call(`+goN+`, gotest, throw, [])`))
		assert.Equal(t, "{caught,exit,{exception,exited}}", catch(`erpc:call(`+goN+`, gotest, exit, [])`))
		assert.Equal(t, "{caught,error,{exception,badarith,[{gotest,add,2,[]}]}}", catch(`erpc:call(`+goN+`, gotest, add, [a, b])`))
		assert.Equal(t, `{caught,error,{exception,{go_error,<<"it failed">>},[{gotest,fail,0,[]}]}}`, catch(`erpc:call(`+goN+`, gotest, fail, [])`))
		assert.Equal(t, `{caught,error,{exception,{go_panic,<<"it panicked">>},[{gotest,panic,0,[]}]}}`, catch(`erpc:call(`+goN+`, gotest, panic, [])`))
		assert.Equal(t, "thrown", e.eval(t, `rpc:call(`+goN+`, gotest, throw, [])`))
		assert.Equal(t, "{badrpc,{'EXIT',exited}}", e.eval(t, `rpc:call(`+goN+`, gotest, exit, [])`))
		assert.Equal(t, `{badrpc,{'EXIT',{{go_panic,<<"it panicked">>},[{gotest,panic,0,[]}]}}}`, e.eval(t, `rpc:call(`+goN+`, gotest, panic, [])`))
		// The node keeps serving after a panic.
		assert.Equal(t, "5", e.eval(t, `erpc:call(`+goN+`, gotest, add, [2, 3])`))
		// A timeout on the caller's side; the Go function goes on until its process ends.
		assert.Equal(t, "{caught,error,{erpc,timeout}}", catch(`erpc:call(`+goN+`, gotest, wait, [], 100)`))

		// multicall over the Go node and the erl node.
		assert.Equal(t, fmt.Sprintf("[{ok,%s},{ok,%s}]", e.g.Self(), e.erl.Node()), e.eval(t, `erpc:multicall([`+goN+`, node()], erlang, node, [])`))
		assert.Equal(t, fmt.Sprintf("{[%s,%s],[]}", e.g.Self(), e.erl.Node()), e.eval(t, `rpc:multicall([`+goN+`, node()], erlang, node, [])`))
		assert.Equal(t, "[{ok,7},{error,{exception,undef,[{gotest,add,[3,4],[]}]}}]", e.eval(t, `erpc:multicall([`+goN+`, node()], gotest, add, [3, 4])`))

		// Output of a Go function goes to the caller's group leader.
		out := e.eval(t, `Self = self(), GL = spawn(fun L() -> receive {io_request, F, RA, {put_chars, unicode, B}} -> Self ! {out, B}, F ! {io_reply, RA, ok}, L() end end), `+
			`P = spawn(fun() -> group_leader(GL, self()), Self ! {ret, erpc:call(`+goN+`, gotest, print, [<<"hello">>])} end), `+
			`[receive {out, O} -> O after 5000 -> no_out end, receive {ret, R} -> R after 5000 -> no_ret end]`)
		assert.Equal(t, `[<<"hello">>,printed]`, out)

		// Spawning anything but erpc:execute_call/4 is refused at once with notsup.
		assert.Equal(t, "notsup", e.eval(t, `P = spawn(`+goN+`, fun() -> ok end), R = monitor(process, P), receive {'DOWN', R, process, P, Why} -> Why after 5000 -> timeout end`))
		assert.Equal(t, "notsup", e.eval(t, `Ref = spawn_request(`+goN+`, erlang, node, [], []), receive {spawn_reply, Ref, error, Why} -> Why after 5000 -> timeout end`))
		// A malformed execute_call is refused with badarg: spawn_request gets the error,
		// spawn/4 raises badarg.
		assert.Equal(t, "badarg", e.eval(t, `Ref = spawn_request(`+goN+`, erpc, execute_call, [a, b, c, d], []), receive {spawn_reply, Ref, error, Why} -> Why after 5000 -> timeout end`))
		assert.Equal(t, "{caught,error,badarg}", catch(`spawn(`+goN+`, erpc, execute_call, [a, b, c, d])`))

		// Hostile messages to rex and to a Go function's group leader writes are ignored; the
		// node keeps serving.
		e.eval(t, `{rex, `+goN+`} ! garbage, {rex, `+goN+`} ! {self(), {call, a}}, {rex, `+goN+`} ! {self(), {call, 1, 2, 3, 4}}, `+
			`{rex, `+goN+`} ! {'$gen_call', nope, x}, {rex, `+goN+`} ! {'$gen_cast', {cast, a, b, c, d}}, ok`)
		assert.Equal(t, "{rex,{badrpc,{'EXIT',badarg}}}", e.eval(t, `{rex, `+goN+`} ! {self(), {call, 1, 2, 3, user}}, receive {rex, _} = M -> M after 5000 -> timeout end`))
		assert.Equal(t, "3", e.eval(t, `erpc:call(`+goN+`, gotest, add, [1, 2])`))

		// erpc:call(GoNode, Fun) is execute_call of erlang:apply/2, which Go does not have.
		assert.Equal(t, "undef", e.eval(t, `try erpc:call(`+goN+`, fun() -> ok end) catch error:{exception, undef, [{erlang, apply, [F, []], []}]} when is_function(F) -> undef end`))
	})
}

// TestRexServed: rex's gen_server call, the C-node form, features_request, send_stdout_to_caller.
func TestRexServed(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		e := newEnv(t, rt)
		rex := fmt.Sprintf("{rex, '%s'}", e.g.Self())
		assert.Equal(t, "3", e.eval(t, `gen_server:call(`+rex+`, {call, gotest, add, [1, 2], group_leader()}, 5000)`))
		assert.Equal(t, "3", e.eval(t, `gen_server:call(`+rex+`, {block_call, gotest, add, [1, 2], group_leader()}, 5000)`))
		assert.Equal(t, "{badrpc,{'EXIT',{undef,[{nomod,nofun,[],[]}]}}}", e.eval(t, `gen_server:call(`+rex+`, {call, nomod, nofun, [], group_leader()}, 5000)`))
		assert.Equal(t, "{rex,3}", e.eval(t, rex+` ! {self(), {call, gotest, add, [1, 2], user}}, receive {rex, _} = M -> M after 5000 -> timeout end`))
		assert.Equal(t, fmt.Sprintf("{features_reply,%s,[erpc]}", e.g.Self()), e.eval(t, rex+` ! {self(), features_request}, receive {features_reply, _, _} = M -> M after 5000 -> timeout end`))
		assert.Equal(t, `[{rex_stdout,<<"out">>},{rex,printed}]`, e.eval(t, rex+` ! {self(), {call, gotest, print, [<<"out">>], send_stdout_to_caller}}, `+
			`[receive {rex_stdout, _} = M -> M after 5000 -> timeout end, receive {rex, _} = M2 -> M2 after 5000 -> timeout end]`))
		// rex:sbcast-style delivery.
		inbox := e.g.Spawn()
		require.NoError(t, inbox.Register("rex_inbox"))
		assert.Equal(t, fmt.Sprintf("{[%s],[]}", e.g.Self()), e.eval(t, `rpc:sbcast([`+fmt.Sprintf("'%s'", e.g.Self())+`], rex_inbox, hello)`))
		m, err := inbox.Receive(ctxFor(t, 5*time.Second))
		require.NoError(t, err)
		assert.Equal(t, etf.Atom("hello"), m)
	})
}

// TestElixirCallsGo: :erpc.call from Elixir, including undef and a panic.
func TestElixirCallsGo(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		erltest.RequireElixir(t)
		port := erltest.FreePort(t)
		erltest.StartEPMD(t, port)
		g, _ := startGo(t, port, testRegistry())
		o := erlOpts(rt, port)
		o.Control = false
		o.Name = erltest.UniqueName("ex")
		code := fmt.Sprintf(`go = :"%s"
IO.inspect(:erpc.call(go, :gotest, :add, [40, 2]))
IO.inspect(:rpc.call(go, :gotest, :echo, ["x", :y]))
try do
  :erpc.call(go, :nomod, :nofun, [])
catch
  c, r -> IO.inspect({c, r})
end
try do
  :erpc.call(go, :gotest, :panic, [])
catch
  c, r -> IO.inspect({c, r})
end`, g.Self())
		out := erltest.ElixirEval(t, o, code)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 4, out)
		assert.Equal(t, "42", lines[0])
		assert.Equal(t, `["x", :y]`, lines[1])
		assert.Equal(t, "{:error, {:exception, :undef, [{:nomod, :nofun, [], []}]}}", lines[2])
		assert.Equal(t, `{:error, {:exception, {:go_panic, "it panicked"}, [{:gotest, :panic, 0, []}]}}`, lines[3])
	})
}

// TestBEAMCallsGoConcurrent: 64 Erlang processes erpc:call Go functions at once.
func TestBEAMCallsGoConcurrent(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		e := newEnv(t, rt)
		goN := fmt.Sprintf("'%s'", e.g.Self())
		out := e.eval(t, `Self = self(), `+
			`Ps = [spawn(fun() -> R = [erpc:call(`+goN+`, gotest, add, [I, J], 20000) || J <- lists:seq(1, 50)], Self ! {done, self(), R =:= [I + J || J <- lists:seq(1, 50)]} end) || I <- lists:seq(1, 64)], `+
			`lists:usort([receive {done, P, Ok} -> Ok after 60000 -> timeout end || P <- Ps])`)
		assert.Equal(t, "[true]", out)
	})
}

// TestDistributeModule: the built-in distribute module from BEAM.
func TestDistributeModule(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		port := erltest.FreePort(t)
		erltest.StartEPMD(t, port)
		reg := testRegistry()
		var self string
		rpc.RegisterDistribute(reg, rpc.Distribute{
			Version: "1.2.3",
			Health: func(ctx context.Context) (rpc.HealthView, error) {
				n := rpc.Info(ctx).Node
				return rpc.HealthView{SelfNode: n.Self(), IsDistributed: true, ConnectedNodes: n.Nodes(),
					ConnectedCount: len(n.Nodes()), ReachableNodes: n.Nodes(), UnreachableNodes: []string{},
					Details: []rpc.NodeHealth{{Node: n.Nodes()[0], Reachable: true, RTTSeconds: 0.5}}}, nil
			},
		})
		g, _ := startGo(t, port, reg)
		self = g.Self()
		o := erlOpts(rt, port)
		erl := erltest.StartErl(t, o)
		e := &env{port: port, g: g, erl: erl}
		goN := fmt.Sprintf("'%s'", self)
		out := e.eval(t, `H = erpc:call(`+goN+`, distribute, health, []), `+
			`{maps:get(self_node, H), maps:get(is_distributed, H), maps:get(connected_nodes, H), maps:get(connected_count, H), `+
			`maps:get(reachable_nodes, H), maps:get(unreachable_nodes, H), maps:get(details, H), lists:sort(maps:keys(H))}`)
		assert.Equal(t, fmt.Sprintf("{%s,true,[%s],1,[%s],[],[#{error => undefined,node => %s,reachable => true,rtt_seconds => 0.5}],"+
			"[connected_count,connected_nodes,details,is_distributed,reachable_nodes,self_node,unreachable_nodes]}",
			self, erl.Node(), erl.Node(), erl.Node()), out)
		assert.Equal(t, fmt.Sprintf("[%s]", erl.Node()), e.eval(t, `erpc:call(`+goN+`, distribute, nodes, [])`))
		assert.Equal(t, `<<"1.2.3">>`, e.eval(t, `erpc:call(`+goN+`, distribute, version, [])`))
	})
}

// TestRexWithoutSpawn: a node that serves rex but not spawn requests (no Registry.Configure):
// rex still answers (features_reply without erpc), and OTP 25+ rpc:call, which never falls back
// to rex, says notsup (the node refuses the erpc spawn with notsup).
func TestRexWithoutSpawn(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		port := erltest.FreePort(t)
		erltest.StartEPMD(t, port)
		g, _ := startGo(t, port, nil)
		_, err := testRegistry().ServeRex(g)
		require.NoError(t, err)
		e := &env{port: port, g: g, erl: erltest.StartErl(t, erlOpts(rt, port))}
		goN := fmt.Sprintf("'%s'", g.Self())
		assert.Equal(t, "{rex,3}", e.eval(t, `{rex, `+goN+`} ! {self(), {call, gotest, add, [1, 2], user}}, receive {rex, _} = M -> M after 5000 -> timeout end`))
		assert.Equal(t, fmt.Sprintf("{features_reply,%s,[]}", g.Self()), e.eval(t, `{rex, `+goN+`} ! {self(), features_request}, receive {features_reply, _, _} = M -> M after 5000 -> timeout end`))
		assert.Equal(t, "{badrpc,notsup}", e.eval(t, `rpc:call(`+goN+`, gotest, add, [1, 2])`))
	})
}
