package global_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/global"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/process"
	"github.com/distribute-go/distribute/rpc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testCookie = "globaltestcookie"

// wait bounds one wait for a peer's event; generous, for a loaded machine.
const wait = 20 * time.Second

type goNode struct {
	n   *process.Node
	g   *global.Global
	log *logBuf
}

// logBuf collects global's log lines.
type logBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startGoWithout starts a visible Go node without global.
func startGoWithout(t *testing.T, port int) *goNode {
	t.Helper()
	var o process.Options
	o.Node.EPMDPort = port
	o.Node.ListenAddr = "127.0.0.1"
	o.Node.Flags = handshake.FlagPublished | handshake.FlagSpawn
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	n, err := process.Start(ctx, erltest.UniqueName("go")+"@localhost", testCookie, &o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Stop() })
	return &goNode{n: n}
}

// startGo starts a visible Go node running global on the EPMD at port.
func startGo(t *testing.T, port int, tune ...func(*process.Options)) *goNode {
	t.Helper()
	reg := rpc.NewRegistry()
	var o process.Options
	o.Node.EPMDPort = port
	o.Node.ListenAddr = "127.0.0.1"
	o.Node.Flags = handshake.FlagPublished // until node gets its Visible option
	reg.Configure(&o)
	for _, f := range tune {
		f(&o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	n, err := process.Start(ctx, erltest.UniqueName("go")+"@localhost", testCookie, &o)
	require.NoError(t, err)
	lb := &logBuf{}
	g, err := global.Start(n, &global.Options{RPC: reg, Logger: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, err)
	t.Cleanup(func() {
		g.Stop()
		_ = n.Stop()
	})
	return &goNode{n: n, g: g, log: lb}
}

// startCluster starts k BEAM nodes in rt on a private EPMD, connected to each other and in
// sync; it returns the EPMD port and the nodes.
func startCluster(t *testing.T, rt *erltest.Runtime, k int, extra ...string) (int, []*erltest.Process) {
	t.Helper()
	epmd := rt.StartEPMD(t, 0)
	port := epmd.Port()
	nodes := make([]*erltest.Process, k)
	var wg sync.WaitGroup
	errs := make([]string, k)
	for i := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					errs[i] = fmt.Sprint(r)
				}
			}()
			nodes[i] = rt.StartErl(t, erltest.ErlOptions{
				Name: erltest.UniqueName(fmt.Sprintf("b%d", i)), EPMDPort: port, Cookie: testCookie,
				Control: true, Extra: extra,
			})
		}()
	}
	wg.Wait()
	for _, e := range errs {
		require.Empty(t, e)
	}
	for _, b := range nodes[1:] {
		require.Equal(t, "pong", eval(t, nodes[0], fmt.Sprintf("net_adm:ping('%s')", b.Node())))
	}
	for _, b := range nodes {
		require.Equal(t, "ok", eval(t, b, "global:sync()"))
	}
	return port, nodes
}

func eval(t *testing.T, p *erltest.Process, expr string) string {
	t.Helper()
	out, err := p.Eval(expr, wait)
	require.NoError(t, err, "eval %s on %s\n%s", expr, p.Node(), p.Output())
	return out
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitUntil evaluates cond (an Erlang boolean expression) on p until it is true, up to d.
func waitUntil(t *testing.T, p *erltest.Process, cond string, d time.Duration) {
	t.Helper()
	expr := fmt.Sprintf(`WF = fun WF(0) -> timeout; WF(I) -> case (%s) of true -> true; _ -> timer:sleep(20), WF(I-1) end end, WF(%d)`,
		cond, d/(20*time.Millisecond))
	require.Equal(t, "true", eval(t, p, expr), "waiting on %s for %s", p.Node(), cond)
}

func recv(t *testing.T, p *process.Process, match func(etf.Term) bool) etf.Term {
	t.Helper()
	m, err := p.ReceiveMatch(ctxFor(t, wait), match)
	require.NoError(t, err)
	return m
}

func atomIn(s string) string { return "'" + strings.ReplaceAll(s, "'", "\\'") + "'" }

// noGlobalComplaints checks that global logged nothing unexpected on the BEAM nodes.
func noGlobalComplaints(t *testing.T, bs []*erltest.Process) {
	t.Helper()
	for _, b := range bs {
		out := b.Output()
		assert.NotContains(t, out, "unexpected message", "%s logged", b.Node())
		assert.NotContains(t, out, "failed to connect", "%s logged", b.Node())
	}
}
