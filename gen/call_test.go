package gen_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/gen"
	"github.com/distribute-go/distribute/process"
)

const erlServer = `
-module(gen_test_srv).
-behaviour(gen_server).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2]).
init(X) -> {ok, X}.
handle_call({echo, X}, _From, S) -> {reply, {echo, X}, S};
handle_call({sleep, Ms}, _From, S) -> timer:sleep(Ms), {reply, {slept, Ms}, S};
handle_call(hang, _From, S) -> {noreply, S};
handle_call(crash, _From, _S) -> exit(boom).
handle_cast({notify, To, X}, S) -> To ! {cast_got, X}, {noreply, S}.
handle_info(_, S) -> {noreply, S}.
`

const erlStatem = `
-module(gen_test_statem).
-behaviour(gen_statem).
-export([init/1, callback_mode/0, idle/3]).
callback_mode() -> state_functions.
init(_) -> {ok, idle, 0}.
idle({call, From}, {echo, X}, D) -> {keep_state, D + 1, [{reply, From, {statem_echo, X, D}}]};
idle({call, _From}, hang, D) -> {keep_state, D};
idle({call, _From}, crash, _D) -> {stop, statem_boom};
idle(cast, {notify, To, X}, D) -> To ! {statem_cast, X}, {keep_state, D}.
`

const elixirServer = `defmodule GenTestEx do
  use GenServer
  def init(x), do: {:ok, x}
  def handle_call({:echo, x}, _from, s), do: {:reply, {:ex_echo, x}, s}
  def handle_call(:hang, _from, s), do: {:noreply, s}
  def handle_call(:crash, _from, _s), do: raise "ex boom"
end`

// beamServers starts the three kinds of server on the erl node, registered as gen_test_srv,
// gen_test_statem and gen_test_ex.
func beamServers(t *testing.T, e *env) {
	t.Helper()
	e.loadModule(t, erlServer)
	e.loadModule(t, erlStatem)
	e.eval(t, `{ok, _} = gen_server:start({local, gen_test_srv}, gen_test_srv, [], []), ok`)
	e.eval(t, `{ok, _} = gen_statem:start({local, gen_test_statem}, gen_test_statem, [], []), ok`)
	e.eval(t, fmt.Sprintf(`{ok, _} = application:ensure_all_started(elixir), ok = io:setopts(standard_io, [list]), 'Elixir.Code':eval_string(%q), `+
		`{ok, _} = 'Elixir.GenServer':start('Elixir.GenTestEx', 0, [{name, gen_test_ex}]), ok`, elixirServer))
}

const elixirEbin = "/usr/lib/elixir/lib/elixir/ebin"

// TestCallBEAM: Go calls an Erlang gen_server, a gen_statem and an Elixir GenServer: replies,
// noproc, timeout without a late reply left anywhere, server crash, cast.
func TestCallBEAM(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		e := newEnv(t, rt, "-pa", elixirEbin)
		beamServers(t, e)
		peer := e.erl.Node()
		srv := process.Name{Name: "gen_test_srv", Node: peer}
		statem := process.Name{Name: "gen_test_statem", Node: peer}
		ex := process.Name{Name: "gen_test_ex", Node: peer}

		r, err := gen.Call(ctxFor(t, 10*time.Second), e.g, srv, etf.Tuple{etf.Atom("echo"), int64(7)})
		require.NoError(t, err)
		assert.Equal(t, etf.Tuple{etf.Atom("echo"), int64(7)}, r)

		r, err = gen.Call(ctxFor(t, 10*time.Second), e.g, statem, etf.Tuple{etf.Atom("echo"), int64(8)})
		require.NoError(t, err)
		assert.Equal(t, etf.Tuple{etf.Atom("statem_echo"), int64(8), int64(0)}, r)

		r, err = gen.Call(ctxFor(t, 10*time.Second), e.g, ex, etf.Tuple{etf.Atom("echo"), []byte("x")})
		require.NoError(t, err)
		assert.Equal(t, etf.Tuple{etf.Atom("ex_echo"), []byte("x")}, r)

		// By pid.
		inbox := e.g.Spawn()
		require.NoError(t, inbox.Register("gen_test_inbox"))
		e.eval(t, fmt.Sprintf(`{gen_test_inbox, '%s'} ! whereis(gen_test_srv), ok`, e.g.Self()))
		m, err := inbox.Receive(ctxFor(t, 10*time.Second))
		require.NoError(t, err)
		srvPid, ok := m.(etf.Pid)
		require.True(t, ok, "%v", m)
		r, err = gen.Call(ctxFor(t, 10*time.Second), e.g, srvPid, etf.Tuple{etf.Atom("echo"), int64(9)})
		require.NoError(t, err)
		assert.Equal(t, etf.Tuple{etf.Atom("echo"), int64(9)}, r)

		// noproc: a name nobody holds.
		_, err = gen.Call(ctxFor(t, 10*time.Second), e.g, process.Name{Name: "nobody_here", Node: peer}, etf.Atom("x"))
		require.Error(t, err)
		assert.ErrorIs(t, err, gen.ErrNoProc)
		var ce *gen.CallError
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, etf.Atom("noproc"), ce.Reason)

		// timeout, from a process of ours: the late reply must not land in its mailbox.
		for _, target := range []process.Name{srv, statem, ex} {
			caller := e.g.Spawn()
			before := e.g.ProcessStats().NoProcess
			var req etf.Term = etf.Atom("hang")
			if target == srv {
				req = etf.Tuple{etf.Atom("sleep"), int64(300)}
			}
			start := time.Now()
			_, err = gen.CallFrom(ctxFor(t, 100*time.Millisecond), caller, target, req)
			assert.ErrorIs(t, err, gen.ErrTimeout, "%v", target)
			assert.Less(t, time.Since(start), 5*time.Second)
			if target == srv {
				// The next call's reply comes after the late one on the same connection.
				_, err = gen.CallFrom(ctxFor(t, 10*time.Second), caller, target, etf.Tuple{etf.Atom("echo"), int64(2)})
				require.NoError(t, err)
				assert.Greater(t, e.g.ProcessStats().NoProcess, before, "the late reply reached the dead alias and was dropped")
			}
			assert.Equal(t, 0, caller.Len(), "nothing left in the caller's mailbox")
			caller.Exit(etf.Atom("normal"))
		}

		// cast
		require.NoError(t, gen.Cast(e.g, srv, etf.Tuple{etf.Atom("notify"), inbox.Pid(), int64(5)}))
		require.NoError(t, gen.Cast(e.g, statem, etf.Tuple{etf.Atom("notify"), inbox.Pid(), int64(6)}))
		m1, err := inbox.Receive(ctxFor(t, 10*time.Second))
		require.NoError(t, err)
		m2, err := inbox.Receive(ctxFor(t, 10*time.Second))
		require.NoError(t, err)
		assert.ElementsMatch(t, []etf.Term{etf.Tuple{etf.Atom("cast_got"), int64(5)}, etf.Tuple{etf.Atom("statem_cast"), int64(6)}}, []etf.Term{m1, m2})

		// crash: the error carries the server's exit reason.
		_, err = gen.Call(ctxFor(t, 10*time.Second), e.g, srv, etf.Atom("crash"))
		require.ErrorAs(t, err, &ce)
		assert.ErrorIs(t, err, gen.ErrServerExit)
		assert.Equal(t, etf.Atom("boom"), ce.Reason)
		_, err = gen.Call(ctxFor(t, 10*time.Second), e.g, statem, etf.Atom("crash"))
		require.ErrorAs(t, err, &ce)
		assert.Equal(t, etf.Atom("statem_boom"), ce.Reason)
		_, err = gen.Call(ctxFor(t, 10*time.Second), e.g, ex, etf.Atom("crash"))
		require.ErrorAs(t, err, &ce)
		reason, ok := ce.Reason.(etf.Tuple) // {%RuntimeError{message: "ex boom"}, Stack}
		require.True(t, ok, "%v", ce.Reason)
		exc, ok := reason[0].(etf.Map)
		require.True(t, ok, "%v", reason[0])
		assert.Contains(t, exc, etf.MapEntry{Key: etf.Atom("message"), Value: []byte("ex boom")})

		// Calling the dead server now: noproc.
		_, err = gen.Call(ctxFor(t, 10*time.Second), e.g, srv, etf.Atom("x"))
		assert.ErrorIs(t, err, gen.ErrNoProc)
	})
}

// TestCallNodeKilled: the peer is killed during a call: the error is nodedown, well before the
// deadline, and nothing is left behind.
func TestCallNodeKilled(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		e := newEnv(t, rt)
		e.loadModule(t, erlServer)
		e.eval(t, `{ok, _} = gen_server:start({local, gen_test_srv}, gen_test_srv, [], []), ok`)
		caller := e.g.Spawn()
		defer caller.Exit(etf.Atom("normal"))
		errc := make(chan error, 1)
		go func() {
			_, err := gen.CallFrom(ctxFor(t, 60*time.Second), caller, process.Name{Name: "gen_test_srv", Node: e.erl.Node()}, etf.Atom("hang"))
			errc <- err
		}()
		// Wait until the call is in the server: its monitor on the server exists.
		require.Eventually(t, func() bool {
			out, err := e.erl.Eval(`{monitored_by, L} = process_info(whereis(gen_test_srv), monitored_by), length(L)`, 10*time.Second)
			return err == nil && out == "1"
		}, 10*time.Second, 20*time.Millisecond)
		start := time.Now()
		e.erl.Kill()
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, gen.ErrNodeDown)
			var ce *gen.CallError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, etf.Tuple{etf.Atom("nodedown"), etf.Atom(e.erl.Node())}, ce.Reason)
			assert.Less(t, time.Since(start), 30*time.Second)
		case <-time.After(45 * time.Second):
			t.Fatal("call still waiting after the peer was killed")
		}
		assert.Equal(t, 0, caller.Len())

		// A call to the dead node now fails at once.
		_, err := gen.Call(ctxFor(t, 20*time.Second), e.g, process.Name{Name: "gen_test_srv", Node: e.erl.Node()}, etf.Atom("x"))
		assert.ErrorIs(t, err, gen.ErrNodeDown)
	})
}

// TestCallConcurrent: 64 Go callers call an Erlang gen_server at once.
func TestCallConcurrent(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		e := newEnv(t, rt)
		e.loadModule(t, erlServer)
		e.eval(t, `{ok, _} = gen_server:start({local, gen_test_srv}, gen_test_srv, [], []), ok`)
		srv := process.Name{Name: "gen_test_srv", Node: e.erl.Node()}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 50 {
					r, err := gen.Call(ctxFor(t, 30*time.Second), e.g, srv, etf.Tuple{etf.Atom("echo"), int64(i*1000 + j)})
					if err != nil {
						errs <- err
						return
					}
					if want := (etf.Tuple{etf.Atom("echo"), int64(i*1000 + j)}); !assert.Equal(t, want, r) {
						errs <- errors.New("wrong reply")
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
}
