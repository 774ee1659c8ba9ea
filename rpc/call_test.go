package rpc_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/process"
	"github.com/distribute-go/distribute/rpc"
)

// TestCallIntoBEAM: Go runs functions on an erl node the erpc way and the rex way: results,
// each exception class, badrpc, nodedown, timeout, and the called function's stdout.
func TestCallIntoBEAM(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		e := newEnv(t, rt)
		peer := e.erl.Node()
		for _, m := range []rpc.Method{rpc.Auto, rpc.ERPC, rpc.Rex} {
			call := func(mod, fun etf.Atom, args etf.List) (etf.Term, error) {
				return rpc.CallWith(ctxFor(t, 20*time.Second), e.g, peer, mod, fun, args, &rpc.CallOptions{Method: m})
			}
			v, err := call("erlang", "node", nil)
			require.NoError(t, err)
			assert.Equal(t, etf.Atom(peer), v)
			v, err = call("lists", "reverse", etf.List{etf.List{etf.Atom("a"), etf.Atom("b")}})
			require.NoError(t, err)
			assert.Equal(t, etf.List{etf.Atom("b"), etf.Atom("a")}, v)

			_, err = call("nomod", "nofun", etf.List{etf.Atom("a")})
			var exc *rpc.Exception
			var bad *rpc.BadRPC
			if m == rpc.Rex {
				// rex rpc-ifies: {badrpc, {'EXIT', {undef, Stack}}}; a throw is a value.
				require.ErrorAs(t, err, &bad, "%v", m)
				assert.Equal(t, etf.Tuple{etf.Atom("EXIT"), etf.Tuple{etf.Atom("undef"),
					etf.List{etf.Tuple{etf.Atom("nomod"), etf.Atom("nofun"), etf.List{etf.Atom("a")}, etf.List{}}}}}, bad.Reason)
				v, err = call("erlang", "throw", etf.List{etf.Atom("t")})
				require.NoError(t, err)
				assert.Equal(t, etf.Atom("t"), v)
				_, err = call("erlang", "exit", etf.List{etf.Atom("x")})
				require.ErrorAs(t, err, &bad)
				assert.Equal(t, etf.Tuple{etf.Atom("EXIT"), etf.Atom("x")}, bad.Reason)
			} else {
				require.ErrorAs(t, err, &exc, "%v", m)
				assert.Equal(t, etf.Atom("error"), exc.Class)
				assert.Equal(t, etf.Atom("undef"), exc.Reason)
				assert.Equal(t, etf.List{etf.Tuple{etf.Atom("nomod"), etf.Atom("nofun"), etf.List{etf.Atom("a")}, etf.List{}}}, exc.Stack)

				_, err = call("erlang", "throw", etf.List{etf.Atom("t")})
				require.ErrorAs(t, err, &exc)
				assert.Equal(t, &rpc.Exception{Class: "throw", Reason: etf.Atom("t")}, exc)
				_, err = call("erlang", "exit", etf.List{etf.Atom("x")})
				require.ErrorAs(t, err, &exc)
				assert.Equal(t, &rpc.Exception{Class: "exit", Reason: etf.Atom("x")}, exc)
				_, err = call("erlang", "error", etf.List{etf.Atom("e")})
				require.ErrorAs(t, err, &exc)
				assert.Equal(t, etf.Atom("error"), exc.Class)
				assert.Equal(t, etf.Atom("e"), exc.Reason)
				assert.NotEmpty(t, exc.Stack)
			}

			// timeout
			start := time.Now()
			_, err = rpc.CallWith(ctxFor(t, 200*time.Millisecond), e.g, peer, "timer", "sleep", etf.List{int64(3000)}, &rpc.CallOptions{Method: m})
			assert.ErrorIs(t, err, rpc.ErrTimeout, "%v", m)
			assert.Less(t, time.Since(start), 2*time.Second)

			// stdout
			var buf bytes.Buffer
			v, err = rpc.CallWith(ctxFor(t, 20*time.Second), e.g, peer, "io", "format", etf.List{etf.String("hello ~p ~ts~n"), etf.List{int64(42), []byte("wörld")}},
				&rpc.CallOptions{Method: m, Stdout: &buf})
			require.NoError(t, err, "%v", m)
			assert.Equal(t, etf.Atom("ok"), v)
			assert.Equal(t, "hello 42 wörld\n", buf.String(), "%v", m)
			buf.Reset()
			_, err = rpc.CallWith(ctxFor(t, 20*time.Second), e.g, peer, "io", "put_chars", etf.List{[]byte("raw")},
				&rpc.CallOptions{Method: m, Stdout: &buf})
			require.NoError(t, err)
			assert.Equal(t, "raw", buf.String(), "%v", m)
			buf.Reset()
			_, err = rpc.CallWith(ctxFor(t, 20*time.Second), e.g, peer, "io", "format", etf.List{etf.String("~ts|~ts~n"), etf.List{[]byte("ü€"), etf.List{int64(0x1F600)}}},
				&rpc.CallOptions{Method: m, Stdout: &buf})
			require.NoError(t, err)
			assert.Equal(t, "ü€|\U0001F600\n", buf.String(), "%v", m)
			buf.Reset()
			_, err = rpc.CallWith(ctxFor(t, 20*time.Second), e.g, peer, "io", "put_chars", etf.List{etf.List{[]byte("ü€"), int64(0x1F600)}},
				&rpc.CallOptions{Method: m, Stdout: &buf})
			require.NoError(t, err)
			assert.Equal(t, "ü€\U0001F600", buf.String(), "%v", m)
		}

		// A node nobody runs: nodedown.
		_, err := rpc.Call(ctxFor(t, 20*time.Second), e.g, "nobody_here@localhost", "erlang", "node", nil)
		assert.ErrorIs(t, err, rpc.ErrNodeDown)
	})
}

// TestCallIntoBEAMKilled: the call's process is killed, and the node is killed mid-call.
func TestCallIntoBEAMKilled(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		e := newEnv(t, rt)
		peer := e.erl.Node()
		// The erpc process is killed: no result, {badrpc, {'EXIT', killed}} as rpc:call says.
		e.loadModule(t, `-module(rpc_test_help). -export([suicide/0]). suicide() -> exit(self(), kill), ok.`)
		_, err := rpc.Call(ctxFor(t, 20*time.Second), e.g, peer, "rpc_test_help", "suicide", nil)
		var bad *rpc.BadRPC
		require.ErrorAs(t, err, &bad)
		assert.Equal(t, etf.Tuple{etf.Atom("EXIT"), etf.Atom("killed")}, bad.Reason)

		errc := make(chan error, 1)
		go func() {
			_, err := rpc.Call(ctxFor(t, 60*time.Second), e.g, peer, "timer", "sleep", etf.List{int64(60000)})
			errc <- err
		}()
		require.Eventually(t, func() bool {
			out, err := e.erl.Eval(`length([P || P <- processes(), {current_function, {timer, sleep, 1}} =:= process_info(P, current_function)])`, 5*time.Second)
			return err == nil && out == "1"
		}, 10*time.Second, 20*time.Millisecond)
		start := time.Now()
		e.erl.Kill()
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, rpc.ErrNodeDown)
			assert.Less(t, time.Since(start), 30*time.Second)
		case <-time.After(45 * time.Second):
			t.Fatal("rpc still waiting after the node was killed")
		}
	})
}

// TestCallAutoRex: a Go node that does not advertise SPAWN negotiates no spawn_request, so Call
// goes through rex (a thrown value comes back as a result, as rex rpc-ifies it).
func TestCallAutoRex(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		port := erltest.FreePort(t)
		erltest.StartEPMD(t, port)
		g := startGoWith(t, port, &process.Options{NoSpawn: true})
		erl := erltest.StartErl(t, erlOpts(rt, port))
		v, err := rpc.Call(ctxFor(t, 20*time.Second), g, erl.Node(), "erlang", "node", nil)
		require.NoError(t, err)
		assert.Equal(t, etf.Atom(erl.Node()), v)
		v, err = rpc.Call(ctxFor(t, 20*time.Second), g, erl.Node(), "erlang", "throw", etf.List{etf.Atom("t")})
		require.NoError(t, err)
		assert.Equal(t, etf.Atom("t"), v)
		_, err = rpc.CallWith(ctxFor(t, 20*time.Second), g, erl.Node(), "erlang", "node", nil, &rpc.CallOptions{Method: rpc.ERPC})
		assert.ErrorIs(t, err, rpc.ErrNotSup, "no SPAWN negotiated: the process layer answers notsup")
	})
}

// TestCallIntoBEAMConcurrent: 64 goroutines rpc into one erl node at once, both ways of calling.
func TestCallIntoBEAMConcurrent(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		e := newEnv(t, rt)
		var wg sync.WaitGroup
		for i := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m := []rpc.Method{rpc.ERPC, rpc.Rex}[i%2]
				for j := range 30 {
					v, err := rpc.CallWith(ctxFor(t, 30*time.Second), e.g, e.erl.Node(), "erlang", "+", etf.List{int64(i), int64(j)}, &rpc.CallOptions{Method: m})
					if !assert.NoError(t, err) || !assert.Equal(t, int64(i+j), v) {
						return
					}
				}
			}()
		}
		wg.Wait()
	})
}

// TestEval: Erlang expressions evaluated on an erl node, as erl_call -e does.
func TestEval(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		e := newEnv(t, rt)
		peer := e.erl.Node()
		v, err := rpc.Eval(ctxFor(t, 20*time.Second), e.g, peer, "X = 6, X * 7.", nil)
		require.NoError(t, err)
		assert.Equal(t, int64(42), v)
		v, err = rpc.Eval(ctxFor(t, 20*time.Second), e.g, peer, `lists:reverse("h€llo")`, nil)
		require.NoError(t, err)
		assert.Equal(t, etf.List{int64('o'), int64('l'), int64('l'), int64('€'), int64('h')}, v)
		var buf bytes.Buffer
		v, err = rpc.Eval(ctxFor(t, 20*time.Second), e.g, peer, `io:format("~p~n", [node()]), done`, &rpc.CallOptions{Stdout: &buf})
		require.NoError(t, err)
		assert.Equal(t, etf.Atom("done"), v)
		assert.Equal(t, peer+"\n", buf.String())

		_, err = rpc.Eval(ctxFor(t, 20*time.Second), e.g, peer, "X = ", nil)
		var ee *rpc.EvalError
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "parse", ee.Stage)
		assert.Contains(t, ee.Message, "syntax error")
		_, err = rpc.Eval(ctxFor(t, 20*time.Second), e.g, peer, `"unterminated`, nil)
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "scan", ee.Stage)
		_, err = rpc.Eval(ctxFor(t, 20*time.Second), e.g, peer, "1 = 2", nil)
		var exc *rpc.Exception
		require.ErrorAs(t, err, &exc)
		assert.Equal(t, etf.Atom("error"), exc.Class)
		assert.Equal(t, etf.Tuple{etf.Atom("badmatch"), int64(2)}, exc.Reason)
		_, err = rpc.Eval(ctxFor(t, 20*time.Second), e.g, peer, "throw(up)", nil)
		require.ErrorAs(t, err, &exc)
		assert.Equal(t, &rpc.Exception{Class: "throw", Reason: etf.Atom("up")}, exc)
	})
}
