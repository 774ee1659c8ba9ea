package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/health"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "distribute-cli-test-")
	if err == nil {
		binPath, err = buildBinary(dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

func TestHelpEverySubcommand(t *testing.T) {
	isolate(t)
	common := []string{"--name", "--sname", "--cookie", "--setcookie", "--epmd-port", "--timeout", "-v", "--help",
		"RELEASE_COOKIE", "erl itself does not read it"}
	cases := map[string][]string{
		"ping":   append([]string{"--json", "pong RTT", "no_epmd"}, common...),
		"health": append([]string{"--json", "interrupted"}, common...),
		"run": append([]string{"--connect", "--http", "--epmd MODE", "--ticktime SECONDS", "--listen-port", "--health-interval",
			"must be the\n        same on this node and its peers", "0.75 to 1.25", "/livez", "/readyz", "livenessProbe", "readinessProbe",
			"embedded EPMD started", "existing EPMD on port E used"}, common...),
		"names": {"--epmd-port", "--timeout", "-v", "HOST", "[::1]"},
		"epmd":  {"--port", "--address", "--names", "--kill", "--stop NAME", "--relaxed_command_check", "--daemon", "-d", "-v"},
	}
	for cmd, flags := range cases {
		for _, h := range []string{"--help", "-h"} {
			stdout, stderr, code := runCmd(t, cmd, h)
			assert.Equal(t, 0, code, "%s %s", cmd, h)
			assert.Empty(t, stderr)
			assert.Contains(t, stdout, "Usage: distribute "+cmd)
			for _, f := range flags {
				assert.Contains(t, stdout, f, "%s --help mentions %s", cmd, f)
			}
		}
		// Help after arguments works too, and "help CMD" is the same text.
		viaHelp, _, code := runCmd(t, "help", cmd)
		assert.Equal(t, 0, code)
		direct, _, _ := runCmd(t, cmd, "x@y", "--help")
		assert.Equal(t, direct, viaHelp)
	}

	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		stdout, _, code := runCmd(t, args...)
		assert.Equal(t, 0, code)
		for _, c := range []string{"ping", "health", "run", "names", "epmd", "version", "help"} {
			assert.Contains(t, stdout, "\n  "+c+" ")
		}
		assert.Contains(t, stdout, "130 for SIGINT, 143 for SIGTERM")
	}
	stdout, _, code := runCmd(t, "version")
	assert.Equal(t, 0, code)
	assert.True(t, strings.HasPrefix(stdout, "distribute "), stdout)
	for _, args := range [][]string{{"version", "--help"}, {"help", "version"}} {
		stdout, _, code = runCmd(t, args...)
		assert.Equal(t, 0, code)
		assert.Contains(t, stdout, "Usage: distribute version")
	}
}

// TestUsageErrors: every bad command line exits 2 with a message on stderr
// and nothing on stdout, before any network traffic.
func TestUsageErrors(t *testing.T) {
	isolate(t)
	long := strings.Repeat("c", 300)
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"help", "frobnicate"},
		{"version", "extra"},
		{"ping"},
		{"ping", "--bogus", "a@127.0.0.1"},
		{"ping", "--timeout", "soon", "a@127.0.0.1"},
		{"ping", "--timeout", "0s", "a@127.0.0.1"},
		{"ping", "--timeout", "0", "a@127.0.0.1"},
		{"ping", "a@host1", "b@host.example.com"}, // short and long names mixed
		{"ping", "not-a-node-name"},
		{"ping", "--epmd-port", "70000", "a@127.0.0.1"},
		{"ping", "--name", "bad name!", "a@127.0.0.1"},
		{"ping", "--cookie", long, "a@127.0.0.1"}, // a 300-byte cookie
		{"ping", "--name", "x", "--sname", "y", "a@127.0.0.1"},
		{"ping", "--sname", "me", "a@127.0.0.1"},              // a short name cannot reach a long-name host
		{"ping", "--name", "me", "a@host1"},                   // a bare --name is a long name
		{"ping", "--sname", "me@host.example.com", "a@host1"}, // --sname with a dotted host
		{"ping", "--name", "me@127.0.0.1", "a@host1"},         // long name, short target
		{"ping", "--epmd", "none", "a@127.0.0.1"},             // client commands have no EPMD mode
		{"health"},
		{"health", "--json=maybe", "a@127.0.0.1"},
		{"health", "--sname", "me", "a@127.0.0.1", "--cookie", testCookie},
		{"run"}, // --name is required
		{"run", "--name", "x", "stray"},
		{"run", "--name", "x@127.0.0.1", "--cookie", testCookie, "--connect", "x@127.0.0.1"}, // itself
		{"run", "--name", "x", "--connect", "a@h1", "--connect", "b@h.example.com"},
		{"run", "--sname", "x", "--cookie", testCookie, "--connect", "a@h.example.com"}, // style mismatch: no retry loop
		{"run", "--name", "x@127.0.0.1", "--cookie", long},
		{"run", "--name", "x@127.0.0.1", "--cookie", testCookie, "--http", "nonsense"},
		{"run", "--name", "x@127.0.0.1", "--cookie", testCookie, "--http", "99999"},
		{"run", "--name", "x@127.0.0.1", "--cookie", testCookie, "--http", "127.0.0.1:http-ish"},
		{"run", "--name", "x@127.0.0.1", "--cookie", testCookie, "--ticktime", "0"},
		{"run", "--name", "x@127.0.0.1", "--cookie", testCookie, "--ticktime", "1.5"},
		{"run", "--name", "x@127.0.0.1", "--cookie", testCookie, "--ticktime", "500ms"},
		{"run", "--name", "x@127.0.0.1", "--cookie", testCookie, "--ticktime", "-4"},
		{"run", "--name", "x@127.0.0.1", "--cookie", testCookie, "--health-interval", "0"},
		{"run", "--name", "x@127.0.0.1", "--cookie", testCookie, "--epmd", "bogus"},
		{"run", "--name", "x@127.0.0.1", "--cookie", testCookie, "--epmd", "none"}, // needs --listen-port
		{"names", "host1", "host2"},
		{"names", "--timeout", "-1s"},
		{"names", "127.0.0.1:4369"},
		{"names", "[::1]:4369"},
		{"names", "http://127.0.0.1"},
		{"epmd", "--port", "-3"},
		{"epmd", "--address", "not-an-ip"},
		{"epmd", "stray"},
		{"epmd", "-daemon"},
		{"epmd", "-names", "-kill"},
	} {
		start := time.Now()
		stdout, stderr, code := runCmd(t, args...)
		assert.Equal(t, 2, code, "args %q: stderr %s", args, stderr)
		assert.NotEmpty(t, stderr, "args %q", args)
		assert.Empty(t, stdout, "args %q", args)
		assert.NotContains(t, stderr, long, "args %q", args)
		assert.Less(t, time.Since(start), 10*time.Second, "args %q: a usage error is immediate", args)
	}
}

// TestUsageErrorMessages: the usage errors that need a hint give it.
func TestUsageErrorMessages(t *testing.T) {
	isolate(t)
	for hint, args := range map[string][]string{
		"short-name and long-name nodes cannot reach each other": {"ping", "--sname", "me", "a@127.0.0.1"},
		"long-name and short-name nodes cannot reach each other": {"ping", "--name", "me", "a@host1"},
		"--epmd-port 4369 127.0.0.1":                             {"names", "127.0.0.1:4369"},
		"--epmd-port 4369 ::1":                                   {"names", "[::1]:4369"},
		"is 300 bytes; at most 255":                              {"ping", "--cookie", strings.Repeat("c", 300), "a@127.0.0.1"},
		"-daemon is not supported":                               {"epmd", "-daemon"},
		"want a whole number of seconds, at least 1":             {"run", "--name", "x", "--ticktime", "0.5"},
		"want host:port, :port or a port number":                 {"run", "--name", "x@127.0.0.1", "--cookie", testCookie, "--http", "nonsense"},
	} {
		_, stderr, code := runCmd(t, args...)
		assert.Equal(t, 2, code, "%q", args)
		assert.Contains(t, stderr, hint, "%q", args)
		assert.NotContains(t, stderr, "no such host")
	}
}

func TestUsageErrorEnv(t *testing.T) {
	isolate(t)
	t.Setenv("ERL_EPMD_PORT", "nonsense")
	_, stderr, code := runCmd(t, "ping", "--cookie", testCookie, "a@127.0.0.1")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "ERL_EPMD_PORT")
	// A cookie too long from the environment is a usage error too.
	t.Setenv("ERL_EPMD_PORT", "")
	t.Setenv("RELEASE_COOKIE", strings.Repeat("r", 256))
	_, stderr, code = runCmd(t, "ping", "a@127.0.0.1")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "$RELEASE_COOKIE is 256 bytes")
}

var pongLine = regexp.MustCompile(`^(\S+) pong (\d+\.\d{3})ms$`)

// assertPongs checks ping's output: one pong line per node, in order, each
// with its round trip.
func assertPongs(t *testing.T, stdout string, nodes ...string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	require.Len(t, lines, len(nodes), stdout)
	for i, l := range lines {
		m := pongLine.FindStringSubmatch(l)
		require.NotNil(t, m, "pong line with RTT: %q", l)
		assert.Equal(t, nodes[i], m[1])
	}
}

func TestPing(t *testing.T) {
	isolate(t)
	ep := freePort(t)
	a := startPeer(t, "a", ep, testCookie)
	b := startPeer(t, "b", ep, testCookie)
	p := itoa(ep)

	stdout, stderr, code := runCmd(t, "ping", "--cookie", testCookie, "--epmd-port", p, a.Self())
	assert.Equal(t, 0, code, stderr)
	assertPongs(t, stdout, a.Self())

	// Flags after the arguments; several nodes, in argument order; --timeout in seconds.
	stdout, stderr, code = runCmd(t, "ping", b.Self(), a.Self(), "--setcookie", testCookie, "--epmd-port", p, "--timeout", "3")
	assert.Equal(t, 0, code, stderr)
	assertPongs(t, stdout, b.Self(), a.Self())

	// --json.
	stdout, stderr, code = runCmd(t, "ping", "--json", "--cookie", testCookie, "--epmd-port", p, a.Self(), uniqueAlive("nobody")+"@127.0.0.1")
	assert.Equal(t, 1, code, stderr)
	var res []map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &res), stdout)
	require.Len(t, res, 2)
	assert.Equal(t, a.Self(), res[0]["node"])
	assert.Equal(t, true, res[0]["pong"])
	assert.Greater(t, res[0]["rtt_seconds"], 0.0)
	assert.Equal(t, false, res[1]["pong"])
	assert.Equal(t, "node_not_found", res[1]["reason"])
	assert.NotEmpty(t, res[1]["error"])

	// The port from ERL_EPMD_PORT, the cookie from ERLANG_COOKIE; a bare --name is a long name.
	t.Setenv("ERL_EPMD_PORT", p)
	t.Setenv("ERLANG_COOKIE", testCookie)
	stdout, stderr, code = runCmd(t, "ping", "--name", "pinger", a.Self())
	assert.Equal(t, 0, code, stderr)
	assertPongs(t, stdout, a.Self())
	// RELEASE_COOKIE (an Elixir release's) comes before ERLANG_COOKIE.
	t.Setenv("RELEASE_COOKIE", "WrongReleaseCookie1")
	stdout, _, code = runCmd(t, "ping", a.Self())
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "pang auth_failed")
	assert.NotContains(t, stdout, "WrongReleaseCookie1")
	t.Setenv("RELEASE_COOKIE", testCookie)
	t.Setenv("ERLANG_COOKIE", "WrongErlangCookie2")
	stdout, stderr, code = runCmd(t, "ping", a.Self())
	assert.Equal(t, 0, code, stderr)
	assertPongs(t, stdout, a.Self())
}

// TestPingShortNames: --sname and short NODE names, as erl -sname.
func TestPingShortNames(t *testing.T) {
	isolate(t)
	ep := freePort(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := process.Start(ctx, uniqueAlive("short")+"@localhost", testCookie, &process.Options{Node: node.Options{EPMDPort: ep}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Stop() })
	for _, name := range [][]string{{"--sname", "me"}, {"--sname", "me@localhost"}, {}} {
		args := append([]string{"ping", "--cookie", testCookie, "--epmd-port", itoa(ep), s.Self()}, name...)
		stdout, stderr, code := runCmd(t, args...)
		assert.Equal(t, 0, code, "%q: %s", name, stderr)
		assertPongs(t, stdout, s.Self())
	}
}

// TestClientCommandsNeedNoEPMDOfTheirOwn: ping and health start no EPMD
// and register no name: with nothing on the EPMD port they say so at once,
// and the port stays free; with an EPMD they do not appear in its names.
func TestClientCommandsNeedNoEPMDOfTheirOwn(t *testing.T) {
	isolate(t)
	free := freePort(t)
	target := uniqueAlive("a") + "@127.0.0.1"
	for _, cmd := range []string{"ping", "health"} {
		start := time.Now()
		stdout, stderr, code := runCmd(t, cmd, "--cookie", testCookie, "--epmd-port", itoa(free), "--timeout", "10", target)
		assert.Equal(t, 1, code, stderr)
		assert.Contains(t, stdout, "no_epmd: no EPMD at 127.0.0.1:"+itoa(free), cmd)
		assert.NotContains(t, stdout, "node_not_found")
		assert.Less(t, time.Since(start), 5*time.Second, "%s fails fast, not after --timeout", cmd)
		_, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", itoa(free)), time.Second)
		assert.Error(t, err, "%s started no EPMD", cmd)
	}

	// With an EPMD: the client node is never in its names, even while it pings.
	ep := freePort(t)
	srv := &epmd.Server{}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", itoa(ep)))
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	var mu sync.Mutex
	var seen []string
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	peer, err := process.Start(ctx, uniqueAlive("peer")+"@127.0.0.1", testCookie, &process.Options{Node: node.Options{EPMD: node.EPMDExternal, EPMDPort: ep, OnEvent: func(e node.Event) {
		if e.Kind == node.EventHandshakeOK {
			mu.Lock()
			defer mu.Unlock()
			for _, i := range srv.Registered() {
				seen = append(seen, i.Name)
			}
		}
	}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = peer.Stop() })
	stdout, stderr, code := runCmd(t, "ping", "--cookie", testCookie, "--epmd-port", itoa(ep), "--name", "visitor", peer.Self())
	assert.Equal(t, 0, code, stderr)
	assertPongs(t, stdout, peer.Self())
	alive, _, _ := strings.Cut(peer.Self(), "@")
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{alive}, seen, "only the peer is registered while the ping's link comes up")
}

func TestPingFailures(t *testing.T) {
	isolate(t)
	ep := freePort(t)
	a := startPeer(t, "a", ep, testCookie)
	p := itoa(ep)
	unknown := uniqueAlive("nobody") + "@127.0.0.1"

	stdout, _, code := runCmd(t, "ping", "--cookie", testCookie, "--epmd-port", p, unknown)
	assert.Equal(t, 1, code)
	assert.True(t, strings.HasPrefix(stdout, unknown+" pang node_not_found"), stdout)
	assert.Equal(t, 1, strings.Count(stdout, "\n"), "one line")

	// A mix: one line each, in order, exit 1.
	stdout, _, code = runCmd(t, "ping", "--cookie", testCookie, "--epmd-port", p, unknown, a.Self())
	assert.Equal(t, 1, code)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	require.Len(t, lines, 2, stdout)
	assert.True(t, strings.HasPrefix(lines[0], unknown+" pang node_not_found"))
	assert.Regexp(t, pongLine, lines[1])

	// A wrong cookie: auth_failed; neither cookie appears.
	stdout, stderr, code := runCmd(t, "ping", "--cookie", "OtherCookie77", "--epmd-port", p, a.Self())
	assert.Equal(t, 1, code)
	assert.True(t, strings.HasPrefix(stdout, a.Self()+" pang auth_failed"), stdout)
	assert.NotContains(t, stdout+stderr, "OtherCookie77")
}

// frozenTarget registers a node name at the EPMD on ep whose listener
// accepts connections and never answers: a frozen node. accepted gets a
// value per connection.
func frozenTarget(t *testing.T, ep int) (name string, accepted <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	acc := make(chan struct{}, 16)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			select {
			case acc <- struct{}{}:
			default:
			}
		}
	})
	alive := uniqueAlive("frozen")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reg, err := (&epmd.Client{Port: ep}).Register(ctx, epmd.NodeInfo{Name: alive, Port: ln.Addr().(*net.TCPAddr).Port})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = reg.Close()
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return alive + "@127.0.0.1", acc
}

// TestTimeoutIsSeconds: --timeout 1 is one second, like erl_call's
// -timeout: a frozen node is given up after a second, not a nanosecond.
func TestTimeoutIsSeconds(t *testing.T) {
	isolate(t)
	ep := freePort(t)
	_ = startPeer(t, "anchor", ep, testCookie) // the embedded EPMD
	frozen, _ := frozenTarget(t, ep)
	start := time.Now()
	stdout, _, code := runCmd(t, "ping", "--cookie", testCookie, "--epmd-port", itoa(ep), "--timeout", "1", frozen)
	elapsed := time.Since(start)
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, frozen+" pang ")
	assert.GreaterOrEqual(t, elapsed, 900*time.Millisecond)
	assert.Less(t, elapsed, 8*time.Second)

	var d secondsValue
	for in, want := range map[string]time.Duration{"5": 5 * time.Second, "0.5": 500 * time.Millisecond, "250ms": 250 * time.Millisecond, "2m": 2 * time.Minute} {
		require.NoError(t, d.Set(in))
		assert.Equal(t, want, time.Duration(d), in)
	}
	assert.Error(t, d.Set("soon"))
}

// TestSignals: ping and health, interrupted, print what they have and
// exit 128+signal; health lists the nodes it could not finish as
// "interrupted".
func TestSignals(t *testing.T) {
	isolate(t)
	ep := freePort(t)
	a := startPeer(t, "a", ep, testCookie)
	frozen, accepted := frozenTarget(t, ep)

	for _, tc := range []struct {
		cmd  string
		sig  syscall.Signal
		code int
	}{{"health", syscall.SIGINT, 130}, {"ping", syscall.SIGTERM, 143}} {
		b := startBackground(t, tc.cmd, "-v", "--cookie", testCookie, "--epmd-port", itoa(ep), "--timeout", "60", a.Self(), frozen)
		select {
		case <-accepted:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s never dialled the frozen node\n%s", tc.cmd, b.stderr.String())
		}
		require.Eventually(t, func() bool {
			return strings.Contains(b.stderr.String(), "node="+a.Self())
		}, 20*time.Second, 10*time.Millisecond, "%s: a done\n%s", tc.cmd, b.stderr.String())
		start := time.Now()
		assert.Equal(t, tc.code, b.signal(t, tc.sig), tc.cmd)
		assert.Less(t, time.Since(start), 5*time.Second)
		out := b.stdout.String()
		if tc.cmd == "health" {
			assert.Regexp(t, regexp.QuoteMeta(a.Self())+` +reachable +[0-9.]+ms`, out)
			assert.Regexp(t, regexp.QuoteMeta(frozen)+` +unreachable +- +interrupted`, out)
		} else {
			assertLines := strings.Split(strings.TrimSpace(out), "\n")
			require.Len(t, assertLines, 2, out)
			assert.Regexp(t, pongLine, assertLines[0])
			assert.Equal(t, frozen+" pang interrupted", assertLines[1])
		}
	}
}

func TestHealthCommand(t *testing.T) {
	isolate(t)
	ep := freePort(t)
	a := startPeer(t, "a", ep, testCookie)
	b := startPeer(t, "b", ep, testCookie)
	p := itoa(ep)
	unknown := uniqueAlive("nobody") + "@127.0.0.1"

	stdout, stderr, code := runCmd(t, "health", "--json", "--cookie", testCookie, "--epmd-port", p, b.Self(), unknown, a.Self())
	assert.Equal(t, 1, code, stderr)
	var h health.ClusterHealth
	require.NoError(t, json.Unmarshal([]byte(stdout), &h), stdout)
	connected := []string{a.Self(), b.Self()}
	slices.Sort(connected)
	assert.True(t, strings.HasPrefix(h.SelfNode, "distribute-") && strings.HasSuffix(h.SelfNode, "@127.0.0.1"), h.SelfNode)
	assert.True(t, h.IsDistributed)
	assert.Equal(t, connected, h.ConnectedNodes)
	assert.Equal(t, 2, h.ConnectedCount)
	assert.Equal(t, connected, h.ReachableNodes)
	assert.Equal(t, []string{unknown}, h.UnreachableNodes)
	require.Len(t, h.Details, 3)
	assert.True(t, slices.IsSortedFunc(h.Details, func(x, y health.NodeStatus) int { return strings.Compare(x.Node, y.Node) }))
	for _, d := range h.Details {
		if d.Node == unknown {
			assert.False(t, d.Reachable)
			assert.Contains(t, d.Error, "node_not_found")
		} else {
			assert.True(t, d.Reachable)
			assert.Greater(t, d.RTTSeconds, 0.0)
		}
	}
	// Raw JSON: the keys, and empty lists as [].
	var raw map[string]any
	require.NoError(t, json.Unmarshal([]byte(stdout), &raw))
	for _, k := range []string{"self_node", "is_distributed", "connected_nodes", "connected_count", "reachable_nodes", "unreachable_nodes", "details"} {
		assert.Contains(t, raw, k)
	}

	stdout, stderr, code = runCmd(t, "health", a.Self(), b.Self(), "--cookie", testCookie, "--epmd-port", p)
	assert.Equal(t, 0, code, stderr)
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	require.Len(t, lines, 4, stdout)
	assert.Regexp(t, `^self distribute-[0-9a-f]+@127\.0\.0\.1 \(distributed\): 2 connected, 2 reachable, 0 unreachable$`, lines[0])
	assert.Regexp(t, `^NODE +STATUS +RTT +ERROR$`, lines[1])
	assert.Regexp(t, `^a_\w+@127\.0\.0\.1 +reachable +[0-9.]+ms +-$`, lines[2])
	assert.Regexp(t, `^b_\w+@127\.0\.0\.1 +reachable +[0-9.]+ms +-$`, lines[3])
}

func TestNames(t *testing.T) {
	isolate(t)
	ep := freePort(t)
	a := startPeer(t, "a", ep, testCookie)
	alive, _, _ := strings.Cut(a.Self(), "@")

	stdout, stderr, code := runCmd(t, "names", "--epmd-port", itoa(ep))
	assert.Equal(t, 0, code, stderr)
	assert.True(t, strings.HasPrefix(stdout, fmt.Sprintf("epmd: up and running on port %d with data:\n", ep)), stdout)
	assert.Contains(t, stdout, fmt.Sprintf("\nname %s at port %d\n", alive, a.Port()))

	stdout, _, code = runCmd(t, "names", "127.0.0.1", "--epmd-port", itoa(ep), "--timeout", "2")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "name "+alive+" at port ")

	// [IPv6] is taken without its brackets (whether or not ::1 answers here).
	_, stderr, code = runCmd(t, "names", "[::1]", "--epmd-port", itoa(ep), "--timeout", "2")
	assert.NotEqual(t, 2, code, stderr)
	assert.NotContains(t, stderr, "no such host")

	stdout, stderr, code = runCmd(t, "names", "--epmd-port", itoa(freePort(t)))
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "cannot list names of the EPMD on localhost")
}

// TestEPMDCommand: distribute epmd takes epmd's own flags.
func TestEPMDCommand(t *testing.T) {
	isolate(t)
	b := startBackground(t, "epmd", "-port", "0", "-address", "127.0.0.1", "-relaxed_command_check")
	line := b.waitLine(t, "epmd listening on ")
	_, port, err := net.SplitHostPort(strings.TrimPrefix(line, "epmd listening on "))
	require.NoError(t, err)
	var ep int
	_, err = fmt.Sscan(port, &ep)
	require.NoError(t, err)

	// A node registers with it (external mode fails without an EPMD) and names lists it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := process.Start(ctx, uniqueAlive("ext")+"@127.0.0.1", testCookie, &process.Options{Node: node.Options{EPMD: node.EPMDExternal, EPMDPort: ep}})
	require.NoError(t, err)
	defer n.Stop()
	assert.True(t, n.EPMDRegistered())
	names, err := (&epmd.Client{Port: ep}).Names(ctx, "127.0.0.1")
	require.NoError(t, err)
	require.Len(t, names, 1)
	assert.Equal(t, n.Port(), names[0].Port)

	// -names, -kill and -stop ask the running EPMD, like epmd's.
	alive, _, _ := strings.Cut(n.Self(), "@")
	stdout, stderr, code := runCmd(t, "epmd", "-names", "-port", port)
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, fmt.Sprintf("epmd: up and running on port %d with data:\nname %s at port %d\n", ep, alive, n.Port()), stdout)
	stdout, _, code = runCmd(t, "epmd", "-kill", "-port", port)
	assert.Equal(t, 1, code)
	assert.Equal(t, "Killing not allowed - living nodes in database.\n", stdout)
	_, stderr, code = runCmd(t, "epmd", "-stop", alive, "-port", port)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "refused the request")
	assert.True(t, n.EPMDRegistered(), "still registered")

	require.NoError(t, n.Stop())
	assert.Equal(t, 0, b.stop(t))
	_, err = net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), time.Second)
	assert.Error(t, err, "the EPMD no longer listens")
}

// TestEPMDKillRealEpmd: -kill against OTP's epmd with no node registered
// makes it exit, as `epmd -kill` does.
func TestEPMDKillRealEpmd(t *testing.T) {
	isolate(t)
	erltest.RequireEpmd(t)
	ep := freePort(t)
	real := erltest.StartEPMD(t, ep)
	stdout, stderr, code := runCmd(t, "epmd", "-kill", "-port", itoa(ep))
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, "Killed\n", stdout)
	select {
	case <-real.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("epmd did not exit after -kill")
	}
	_, stderr, code = runCmd(t, "epmd", "-names", "-port", itoa(ep))
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no EPMD answered at 127.0.0.1:"+itoa(ep))
}

// scrape fetches /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, base string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body, hdr := httpDo(t, "GET", base+"/metrics")
	require.Equal(t, 200, code)
	assert.Contains(t, hdr.Get("Content-Type"), "text/plain")
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err, body)
	for _, name := range []string{"distribute_connected_nodes", "distribute_ping_rtt_seconds",
		"distribute_handshakes_total", "distribute_link_downs_total", "distribute_epmd_registered",
		"distribute_nodeup_total", "distribute_nodedown_total", "distribute_build_info", "go_goroutines",
		"go_build_info", "process_resident_memory_bytes", "process_open_fds"} {
		require.Contains(t, fams, name)
	}
	return fams
}

func gauge(f map[string]*dto.MetricFamily, name string) float64 {
	return f[name].GetMetric()[0].GetGauge().GetValue()
}

func handshakes(f map[string]*dto.MetricFamily, dir, outcome, reason string) float64 {
	for _, m := range f["distribute_handshakes_total"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		if l["direction"] == dir && l["outcome"] == outcome && l["reason"] == reason {
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

func TestRunHTTPListenFails(t *testing.T) {
	isolate(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	stdout, stderr, code := runCmd(t, "run", "--name", uniqueAlive("r")+"@127.0.0.1", "--cookie", testCookie,
		"--epmd-port", itoa(freePort(t)), "--http", ln.Addr().String())
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "http")
}

func TestCookieFile(t *testing.T) {
	home := isolate(t)
	ep := freePort(t)
	a := startPeer(t, "a", ep, testCookie)
	path := filepath.Join(home, ".erlang.cookie")

	// Readable by others: refused, with a clear message and without the cookie.
	require.NoError(t, os.WriteFile(path, []byte(testCookie+"\n"), 0o644))
	require.NoError(t, os.Chmod(path, 0o644))
	stdout, stderr, code := runCmd(t, "ping", "--epmd-port", itoa(ep), a.Self())
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "accessible by its owner only")
	assert.Contains(t, stderr, "chmod 400 "+path)

	// Owner-only: used.
	require.NoError(t, os.Chmod(path, 0o400))
	stdout, stderr, code = runCmd(t, "ping", "--epmd-port", itoa(ep), a.Self())
	assert.Equal(t, 0, code, stderr)
	assertPongs(t, stdout, a.Self())

	// Missing: created with mode 0400 and a random cookie (so the ping fails on auth).
	require.NoError(t, os.Remove(path))
	stdout, _, code = runCmd(t, "ping", "--epmd-port", itoa(ep), a.Self())
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "pang auth_failed")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o400), fi.Mode().Perm())
}

func TestHandshakeReason(t *testing.T) {
	hs := func(kind error) error { return &handshake.Error{Step: handshake.StepRecvStatus, Kind: kind} }
	for want, err := range map[string]error{
		"auth":          hs(handshake.ErrAuth),
		"not_allowed":   hs(handshake.ErrNotAllowed),
		"timeout":       fmt.Errorf("wrapped: %w", &handshake.Error{Kind: handshake.ErrTimeout, Cause: os.ErrDeadlineExceeded}),
		"closed":        hs(handshake.ErrClosed),
		"protocol":      hs(handshake.ErrProtocol),
		"simultaneous":  hs(handshake.ErrSimultaneous),
		"name_mismatch": hs(handshake.ErrNameMismatch),
		"not_found":     fmt.Errorf("lookup: %w", epmd.ErrNotRegistered),
		"network":       &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED},
		"other":         errors.New("something else"),
	} {
		assert.Equal(t, want, handshakeReason(err), "%v", err)
		assert.Contains(t, handshakeReasons, want)
	}
	assert.Equal(t, "timeout", handshakeReason(context.DeadlineExceeded))
	assert.Equal(t, "not_found", handshakeReason(&net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}))
	assert.Equal(t, "protocol", handshakeReason(&epmd.ProtocolError{Op: "port_please", Reason: "short"}))
}

func TestReason(t *testing.T) {
	assert.Equal(t, "node_not_found: no such name", reason(&node.ConnectError{Kind: node.NodeNotFound, Detail: "no such\tname"}))
	assert.Equal(t, "node_not_found: a b", reason(&node.ConnectError{Kind: node.NodeNotFound, Detail: "a\n b"}))
	assert.Equal(t, "auth_failed", reason(&node.ConnectError{Kind: node.ConnectAuthFailed}))
	assert.True(t, strings.HasPrefix(reason(fmt.Errorf("x: %w", process.ErrPang)), "denied: "))
	assert.True(t, strings.HasPrefix(reason(fmt.Errorf("no answer: %w", context.DeadlineExceeded)), "timeout: "))
	assert.Equal(t, "error: boom", reason(errors.New("boom")))
}

func TestLocalHost(t *testing.T) {
	h, err := os.Hostname()
	require.NoError(t, err)
	short, _, _ := strings.Cut(h, ".")
	log := newLogger(&syncBuffer{}, false, 0)
	assert.Equal(t, short, localHost(false, nil, false, log))
	assert.Equal(t, "127.0.0.1", localHost(true, []string{"a@127.0.0.1", "b@127.0.0.2"}, false, log))
	long := localHost(true, []string{"a@host.example.com"}, false, log)
	assert.True(t, strings.Contains(long, ".") && !strings.Contains(long, "@"), long)
}
