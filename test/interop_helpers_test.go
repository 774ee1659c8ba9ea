package test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/distribute-go/distribute/internal/logbuf"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/internal/nodetest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// evalTimeout bounds one Process.Eval on a control erl node.
const evalTimeout = 10 * time.Second

// interopGo is a Go node under test with its debug log and its events.
type interopGo struct {
	*process.Node
	logs   *interopLogs
	events *interopEvents
}

// interopEvents records what a node reports to Options.OnEvent (nodetest.Events).
type interopEvents struct{ nodetest.Events }

func (e *interopEvents) add(ev node.Event) { e.Add(ev) }

// mark returns a position to count events from.
func (e *interopEvents) mark() int { return e.Mark() }

// since returns the events after position from.
func (e *interopEvents) since(from int) []node.Event { return e.Since(from) }

// count returns how many events of kind k about peer ("" = any) came after position from.
func (e *interopEvents) count(from int, k node.EventKind, peer string) int {
	return e.CountKind(from, k, peer)
}

// startInteropGo starts a Go node with a Debug logger into a buffer (printed if the test fails) and an
// event recorder, and stops it when the test ends. opts.EPMDPort must be set: every test has its own.
func startInteropGo(t *testing.T, name, cookie string, opts node.Options) *interopGo {
	t.Helper()
	require.NotZero(t, opts.EPMDPort, "every test uses a private EPMD port")
	g := &interopGo{logs: &interopLogs{}, events: &interopEvents{}}
	opts.Logger = slog.New(slog.NewTextHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.OnEvent = g.events.add
	g.Node = nodetest.Start(t, name, cookie, opts)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of %s:\n%s", name, g.logs.String())
		}
	})
	return g
}

// newInteropCookie returns a random cookie that no other text can contain by chance.
func newInteropCookie() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "ck" + hex.EncodeToString(b[:])
}

// goName returns a unique Go node name in the style of the erl nodes: short (@localhost) or long
// (@127.0.0.1).
func goName(prefix string, long bool) string {
	if long {
		return erltest.UniqueName(prefix) + "@127.0.0.1"
	}
	return erltest.UniqueName(prefix) + "@localhost"
}

// startControlErl starts an erl node that Process.Eval can drive.
func startControlErl(t *testing.T, o erltest.ErlOptions) *erltest.Process {
	t.Helper()
	o.Control = true
	p := erltest.StartErl(t, o)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("output of %s:\n%s", p.Node(), p.Output())
		}
	})
	return p
}

// evalOK evaluates expr on a control erl node and fails the test on any error.
func evalOK(t *testing.T, p *erltest.Process, expr string) string {
	t.Helper()
	v, err := p.Eval(expr, evalTimeout)
	require.NoError(t, err, "%s on %s", expr, p.Node())
	return v
}

// erlHas evaluates lists:member(Name, nodes(Which)) on p: Which is "visible", "hidden" or "connected".
func erlHas(t *testing.T, p *erltest.Process, which, name string) bool {
	t.Helper()
	v := evalOK(t, p, fmt.Sprintf("lists:member('%s', nodes(%s))", name, which))
	require.Contains(t, []string{"true", "false"}, v)
	return v == "true"
}

// erlMonitorNodes makes p print a line "ERLTEST-EVENT {nodeup|nodedown,Node,Info}" for every node up
// and down it sees, hidden nodes included. It returns once the monitor is in place.
func erlMonitorNodes(t *testing.T, p *erltest.Process) {
	t.Helper()
	evalOK(t, p, `Parent = self(), spawn(fun() -> ok = net_kernel:monitor_nodes(true, [{node_type, all}]), `+
		`Parent ! monitoring, (fun Loop() -> receive M -> io:format("ERLTEST-EVENT ~0tp~n", [M]), Loop() end end)() end), `+
		`receive monitoring -> ok after 5000 -> timeout end`)
}

// ctxFor returns a context that ends after d or with the test.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// noCookie asserts that none of the cookies occurs in text.
func noCookie(t *testing.T, what, text string, cookies ...string) {
	t.Helper()
	for _, c := range cookies {
		assert.False(t, strings.Contains(text, c), "%s contains a cookie: %s", what, strings.ReplaceAll(text, c, "<COOKIE>"))
	}
}

// poll calls cond in the test goroutine (so cond may use require) every interval until it is true,
// and fails the test after within.
func poll(t *testing.T, within, interval time.Duration, cond func() bool, msgAndArgs ...any) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			require.Fail(t, "condition not met within "+within.String(), msgAndArgs...)
		}
		time.Sleep(interval)
	}
}

// waitEvent waits until g has reported at least one event of kind k about peer after position from
// (a node updates Nodes() before it reports the event), and returns how many there are.
func waitEvent(t *testing.T, g *interopGo, from int, k node.EventKind, peer string) int {
	t.Helper()
	require.Eventually(t, func() bool { return g.events.count(from, k, peer) > 0 }, 5*time.Second, 2*time.Millisecond,
		"no %v event about %q on %s: %+v", k, peer, g.Self(), g.events.since(from))
	return g.events.count(from, k, peer)
}

// interopLogs collects a Go node's log output.
type interopLogs = logbuf.Buffer
