package rpc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/process"
	"github.com/distribute-go/distribute/rpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testCookie = "rpctestcookie"

type runtime = erltest.Runtime

func forEachRuntime(t *testing.T, f func(t *testing.T, rt *runtime)) { erltest.ForEachRuntime(t, f) }

func erlOpts(rt *runtime, epmdPort int) erltest.ErlOptions {
	return erltest.ErlOptions{Runtime: rt, EPMDPort: epmdPort, Cookie: testCookie, Control: true}
}

// env is one test's private EPMD, a Go node and an erl node driven by Eval.
type env struct {
	port int
	g    *process.Node
	erl  *erltest.Process
}

func newEnv(t *testing.T, rt *runtime, extra ...string) *env {
	t.Helper()
	port := erltest.FreePort(t)
	erltest.StartEPMD(t, port)
	g, _ := startGo(t, port, testRegistry())
	o := erlOpts(rt, port)
	o.Extra = append(o.Extra, extra...)
	return &env{port: port, g: g, erl: erltest.StartErl(t, o)}
}

// startGo starts a Go node; with a registry it serves erpc and rex, without one it refuses
// spawn requests (notsup) and has no rex.
func startGo(t *testing.T, epmdPort int, reg *rpc.Registry) (*process.Node, string) {
	t.Helper()
	return startGoOpts(t, epmdPort, reg, process.Options{})
}

// startGoWith starts a Go node with options o and no registry.
func startGoWith(t *testing.T, epmdPort int, o *process.Options) *process.Node {
	t.Helper()
	n, _ := startGoOpts(t, epmdPort, nil, *o)
	return n
}

func startGoOpts(t *testing.T, epmdPort int, reg *rpc.Registry, o process.Options) (*process.Node, string) {
	t.Helper()
	o.Node.EPMDPort = epmdPort
	o.Node.ListenAddr = "127.0.0.1"
	if reg != nil {
		reg.Configure(&o)
	}
	alive := erltest.UniqueName("go")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := process.Start(ctx, alive+"@localhost", testCookie, &o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Stop() })
	if reg != nil {
		_, err := reg.ServeRex(n)
		require.NoError(t, err)
	}
	return n, alive
}

func (e *env) eval(t *testing.T, expr string) string {
	t.Helper()
	out, err := e.erl.Eval(expr, 30*time.Second)
	require.NoError(t, err, "eval %s\n%s", expr, e.erl.Output())
	return out
}

// loadModule compiles and loads an Erlang module given as source on the erl node.
func (e *env) loadModule(t *testing.T, src string) {
	t.Helper()
	expr := fmt.Sprintf(`{ok, Ts, _} = erl_scan:string(%q), `+
		`{_, Fs} = lists:foldl(fun({dot, _} = D, {Cur, Acc}) -> {[], [lists:reverse([D | Cur]) | Acc]}; (T, {Cur, Acc}) -> {[T | Cur], Acc} end, {[], []}, Ts), `+
		`Forms = [begin {ok, F} = erl_parse:parse_form(X), F end || X <- lists:reverse(Fs)], `+
		`{ok, M, Bin} = compile:forms(Forms, [return_errors]), {module, M} = code:load_binary(M, "nofile", Bin), M`,
		strings.TrimSpace(src))
	e.eval(t, expr)
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
