package gen_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/gen"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/process"
)

// counter is a Go gen_server: {add, N} adds and replies the sum, fail returns an error,
// boom panics, {later, X} replies later, {notify, Pid} casts tell Pid the sum.
type counter struct {
	srv *gen.Server
	sum int64
}

func (c *counter) HandleCall(from gen.From, req etf.Term) (etf.Term, error) {
	switch r := req.(type) {
	case etf.Tuple:
		if len(r) == 2 && r[0] == etf.Atom("add") {
			n, _ := r[1].(int64)
			c.sum += n
			return c.sum, nil
		}
		if len(r) == 2 && r[0] == etf.Atom("later") {
			go func() { _ = c.srv.Reply(from, etf.Tuple{etf.Atom("later"), r[1]}) }()
			return nil, gen.ErrNoReply
		}
	case etf.Atom:
		switch r {
		case "fail":
			return nil, errors.New("handler failed")
		case "boom":
			panic("handler panicked")
		case "stop":
			return nil, gen.Stop(etf.Atom("stopped_by_request"))
		}
	}
	return etf.Tuple{etf.Atom("unknown"), req}, nil
}

func (c *counter) HandleCast(msg etf.Term) error {
	if t, ok := msg.(etf.Tuple); ok && len(t) == 2 && t[0] == etf.Atom("notify") {
		return c.srv.Process().Send(t[1], etf.Tuple{etf.Atom("sum"), c.sum})
	}
	return nil
}

func (c *counter) Init(s *gen.Server) error  { c.srv = s; return nil }
func (c *counter) HandleInfo(etf.Term) error { return nil }

func startCounter(t *testing.T, e *env, name etf.Atom) *counter {
	t.Helper()
	c := &counter{}
	srv, err := gen.StartServer(e.g, c, &gen.ServerOptions{Name: name})
	require.NoError(t, err)
	t.Cleanup(func() { srv.Stop(etf.Atom("shutdown")) })
	return c
}

// TestServeErlang: gen_server:call and cast from Erlang reach a Go server; a failing handler
// makes the caller exit with the server's reason and the node keeps serving.
func TestServeErlang(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		e := newEnv(t, rt)
		startCounter(t, e, "go_counter")
		to := fmt.Sprintf("{go_counter, '%s'}", e.g.Self())
		printed := fmt.Sprintf("{go_counter,%s}", e.g.Self()) // as ~0tp prints it
		assert.Equal(t, "5", e.eval(t, `gen_server:call(`+to+`, {add, 5}, 5000)`))
		assert.Equal(t, "12", e.eval(t, `gen_server:call(`+to+`, {add, 7}, 5000)`))
		assert.Equal(t, "{later,x}", e.eval(t, `gen_server:call(`+to+`, {later, x}, 5000)`))
		assert.Equal(t, "{error,{unknown_system_msg,get_state}}", e.eval(t, `try sys:get_state(`+to+`) catch error:R -> {error, R} end`))
		assert.Equal(t, "{sum,12}", e.eval(t, `gen_server:cast(`+to+`, {notify, self()}), receive {sum, _} = M -> M after 5000 -> timeout end`))
		// gen_statem:call speaks the same protocol.
		assert.Equal(t, "13", e.eval(t, `gen_statem:call(`+to+`, {add, 1})`))

		// A handler error: the caller exits with {Reason, {gen_server, call, ...}}.
		out := e.eval(t, `try gen_server:call(`+to+`, fail, 5000) catch exit:R -> R end`)
		assert.Equal(t, `{{go_error,<<"handler failed">>},{gen_server,call,[`+printed+`,fail,5000]}}`, out)

		// The node keeps running: a new server under the same name serves; a panic too ends
		// only that server.
		startCounter(t, e, "go_counter")
		assert.Equal(t, "1", e.eval(t, `gen_server:call(`+to+`, {add, 1}, 5000)`))
		out = e.eval(t, `try gen_server:call(`+to+`, boom, 5000) catch exit:R -> R end`)
		assert.Equal(t, `{{go_panic,<<"handler panicked">>},{gen_server,call,[`+printed+`,boom,5000]}}`, out)
		c := startCounter(t, e, "go_counter")
		out = e.eval(t, `try gen_server:call(`+to+`, stop, 5000) catch exit:R -> R end`)
		assert.Equal(t, `{stopped_by_request,{gen_server,call,[`+printed+`,stop,5000]}}`, out)
		<-c.srv.Done()
		assert.Equal(t, etf.Atom("stopped_by_request"), c.srv.Reason())
		// No server now: noproc.
		out = e.eval(t, `try gen_server:call(`+to+`, {add, 1}, 5000) catch exit:R -> R end`)
		assert.Equal(t, `{noproc,{gen_server,call,[`+printed+`,{add,1},5000]}}`, out)
	})
}

// TestServeElixir: Elixir's GenServer.call and GenServer.cast reach a Go server.
func TestServeElixir(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		erltest.RequireElixir(t)
		port := erltest.FreePort(t)
		erltest.StartEPMD(t, port)
		e := &env{port: port, g: startGo(t, port)}
		startCounter(t, e, "go_counter")
		o := erlOpts(rt, port)
		o.Control = false
		o.Name = erltest.UniqueName("ex")
		code := fmt.Sprintf(`to = {:go_counter, :"%s"}
IO.inspect(GenServer.call(to, {:add, 40}))
IO.inspect(GenServer.call(to, {:add, 2}, 5000))
GenServer.cast(to, {:notify, self()})
receive do
  m -> IO.inspect(m)
after 5000 -> IO.puts("no cast reply")
end
try do
  GenServer.call(to, :fail)
catch
  :exit, r -> IO.inspect(r, width: :infinity)
end`, e.g.Self())
		out := erltest.ElixirEval(t, o, code)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, lines, 4, out)
		assert.Equal(t, "40", lines[0])
		assert.Equal(t, "42", lines[1])
		assert.Equal(t, "{:sum, 42}", lines[2])
		assert.Equal(t, fmt.Sprintf(`{{:go_error, "handler failed"}, {GenServer, :call, [{:go_counter, :%s}, :fail, 5000]}}`, e.g.Self()), lines[3])
	})
}

// TestServeConcurrent: 64 Erlang processes call one Go server at once.
func TestServeConcurrent(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		e := newEnv(t, rt)
		startCounter(t, e, "go_counter")
		to := fmt.Sprintf("{go_counter, '%s'}", e.g.Self())
		out := e.eval(t, `Self = self(), `+
			`Ps = [spawn(fun() -> R = [gen_server:call(`+to+`, {add, 1}, 20000) || _ <- lists:seq(1, 100)], Self ! {done, self(), lists:all(fun erlang:is_integer/1, R)} end) || _ <- lists:seq(1, 64)], `+
			`All = [receive {done, P, Ok} -> Ok after 60000 -> timeout end || P <- Ps], `+
			`{lists:usort(All), gen_server:call(`+to+`, {add, 0})}`)
		assert.Equal(t, "{[true],6400}", out)
	})
}

// TestGoCallsGo: a Go server called from its own node (by name and by pid) and from another Go
// node; a handler failure reaches the Go caller as ErrServerExit with the reason.
func TestGoCallsGo(t *testing.T) {
	erltest.RequireEpmd(t)
	port := erltest.FreePort(t)
	erltest.StartEPMD(t, port)
	a, b := startGo(t, port), startGo(t, port)
	e := &env{port: port, g: a}
	c := startCounter(t, e, "go_counter")
	r, err := gen.Call(ctxFor(t, 10*time.Second), a, etf.Atom("go_counter"), etf.Tuple{etf.Atom("add"), int64(2)})
	require.NoError(t, err)
	assert.Equal(t, int64(2), r)
	r, err = gen.Call(ctxFor(t, 10*time.Second), a, c.srv.Pid(), etf.Tuple{etf.Atom("add"), int64(3)})
	require.NoError(t, err)
	assert.Equal(t, int64(5), r)
	r, err = gen.Call(ctxFor(t, 10*time.Second), b, process.Name{Name: "go_counter", Node: a.Self()}, etf.Tuple{etf.Atom("add"), int64(1)})
	require.NoError(t, err)
	assert.Equal(t, int64(6), r)
	_, err = gen.Call(ctxFor(t, 10*time.Second), b, process.Name{Name: "go_counter", Node: a.Self()}, etf.Atom("fail"))
	var ce *gen.CallError
	require.ErrorAs(t, err, &ce)
	assert.ErrorIs(t, err, gen.ErrServerExit)
	assert.Equal(t, etf.Tuple{etf.Atom("go_error"), []byte("handler failed")}, ce.Reason)
	_, err = gen.Call(ctxFor(t, 10*time.Second), a, etf.Atom("go_counter"), etf.Atom("x"))
	assert.ErrorIs(t, err, gen.ErrNoProc)
}
