package pg_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/pg"
	"github.com/distribute-go/distribute/process"
)

const testCookie = "pgtestcookie"

// wait bounds one wait for a peer; generous, for a loaded machine.
const wait = 20 * time.Second

// startGo starts a Go node on the EPMD at port, visible or hidden, stopped when the test ends.
func startGo(t *testing.T, port int, visible bool) *process.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	n, err := process.Start(ctx, erltest.UniqueName("go")+"@localhost", testCookie, &process.Options{
		Node: node.Options{EPMDPort: port, ListenAddr: "127.0.0.1", Visible: visible}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

// startScope starts scope name on n.
func startScope(t *testing.T, n *process.Node, name etf.Atom, o *pg.Options) *pg.Scope {
	t.Helper()
	s, err := pg.Start(n, name, o)
	require.NoError(t, err)
	return s
}

// erlNode is a real erl node driven with Eval; its shell process holds the values given to it.
type erlNode struct {
	*erltest.Process
	shell etf.Pid
}

// startErl starts an erl node in rt on the EPMD at port with the default pg scope running.
func startErl(t *testing.T, rt *erltest.Runtime, port int) *erlNode {
	t.Helper()
	e := rt.StartErl(t, erltest.ErlOptions{EPMDPort: port, Cookie: testCookie, Control: true,
		Extra: []string{"-kernel", "start_pg", "true"}})
	return &erlNode{Process: e}
}

// eval runs an expression (a format with args) and returns its printed value.
func (e *erlNode) eval(t *testing.T, format string, args ...any) string {
	t.Helper()
	expr := fmt.Sprintf(format, args...)
	out, err := e.Eval(expr, 2*wait)
	require.NoError(t, err, "eval %s\n%s", expr, e.Output())
	return out
}

// eventually waits until expr (a format with args) evaluates to want on the erl node.
func (e *erlNode) eventually(t *testing.T, want, format string, args ...any) {
	t.Helper()
	expr := fmt.Sprintf(format, args...)
	var last string
	poll(t, func() bool {
		out, err := e.Eval(expr, 2*wait)
		if err != nil {
			last = err.Error()
			return false
		}
		last = out
		return out == want
	}, func() string { return fmt.Sprintf("%s never gave %s (last %s)", expr, want, last) })
}

// poll checks cond every few milliseconds until it holds, and fails the test with msg() when
// it still does not after wait.
func poll(t *testing.T, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// learnShell has the erl shell send its pid to a Go process, so Go can give it values.
func (e *erlNode) learnShell(t *testing.T, g *process.Node) {
	t.Helper()
	inbox := g.Spawn()
	defer inbox.Exit(etf.Atom("normal"))
	require.NoError(t, inbox.Register("pg_test_inbox"))
	e.eval(t, `{pg_test_inbox, '%s'} ! {shell, self()}, ok`, g.Self())
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	m, err := inbox.Receive(ctx)
	require.NoError(t, err)
	e.shell = m.(etf.Tuple)[1].(etf.Pid)
}

// give stores v in the erl shell's process dictionary as key.
func (e *erlNode) give(t *testing.T, g *process.Node, key string, v etf.Term) {
	t.Helper()
	require.NoError(t, g.Send(e.shell, etf.Tuple{etf.Atom("give"), etf.Atom(key), v}))
	e.eval(t, `receive {give, %s, V} -> put(%s, V), ok after 20000 -> timeout end`, key, key)
}

// spawnErl spawns a process on the erl node that waits for stop, stores it as key, and returns
// its pid.
func (e *erlNode) spawnErl(t *testing.T, g *process.Node, key string) etf.Pid {
	t.Helper()
	inbox := g.Spawn()
	defer inbox.Exit(etf.Atom("normal"))
	e.eval(t, `P = spawn(fun() -> receive stop -> ok end end), put(%s, P), ok`, key)
	require.NoError(t, inbox.Register(etf.Atom("pg_test_"+key)))
	e.eval(t, `{pg_test_%s, '%s'} ! get(%s), ok`, key, g.Self(), key)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	m, err := inbox.Receive(ctx)
	require.NoError(t, err)
	return m.(etf.Pid)
}

// members waits until the scope's members of group, sorted, are want.
func members(t *testing.T, s *pg.Scope, group etf.Term, want ...etf.Pid) {
	t.Helper()
	want = slices.Clone(want)
	sortPids(want)
	var got []etf.Pid
	poll(t, func() bool {
		got = s.GetMembers(group)
		sortPids(got)
		return slices.Equal(got, want)
	}, func() string { return fmt.Sprintf("members of %v: want %v, have %v", group, want, got) })
}

func sortPids(p []etf.Pid) { slices.SortFunc(p, func(a, b etf.Pid) int { return etf.Compare(a, b) }) }

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
