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
	"slices"
	"strings"
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
	"github.com/distribute-go/distribute/node"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestHelpEverySubcommand(t *testing.T) {
	isolate(t)
	common := []string{"--name", "--cookie", "--epmd-port", "--epmd MODE", "--timeout", "--ticktime", "--listen-port", "-v", "--help"}
	cases := map[string][]string{
		"ping":   common,
		"health": append([]string{"--json"}, common...),
		"run":    append([]string{"--connect", "--http"}, common...),
		"names":  {"--epmd-port", "--timeout", "-v", "HOST"},
		"epmd":   {"--port", "--address", "-v"},
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

func TestUsageErrors(t *testing.T) {
	isolate(t)
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"help", "frobnicate"},
		{"version", "extra"},
		{"ping"},
		{"ping", "--bogus", "a@127.0.0.1"},
		{"ping", "--timeout", "soon", "a@127.0.0.1"},
		{"ping", "--timeout", "0s", "a@127.0.0.1"},
		{"ping", "a@host1", "b@host.example.com"}, // short and long names mixed
		{"ping", "not-a-node-name"},
		{"ping", "--epmd", "bogus", "a@127.0.0.1"},
		{"ping", "--epmd", "none", "a@127.0.0.1"}, // needs --listen-port
		{"ping", "--epmd-port", "70000", "a@127.0.0.1"},
		{"ping", "--name", "bad name!", "a@127.0.0.1"},
		{"health"},
		{"health", "--json=maybe", "a@127.0.0.1"},
		{"run"}, // --name is required
		{"run", "--name", "x", "stray"},
		{"run", "--name", "x@127.0.0.1", "--cookie", testCookie, "--connect", "x@127.0.0.1"}, // itself
		{"run", "--name", "x", "--connect", "a@h1", "--connect", "b@h.example.com"},
		{"names", "host1", "host2"},
		{"names", "--timeout", "-1s"},
		{"epmd", "--port", "-3"},
		{"epmd", "--address", "not-an-ip"},
		{"epmd", "stray"},
	} {
		stdout, stderr, code := runCmd(t, args...)
		assert.Equal(t, 2, code, "args %q: stderr %s", args, stderr)
		assert.NotEmpty(t, stderr, "args %q", args)
		assert.Empty(t, stdout, "args %q", args)
	}
}

func TestUsageErrorEnv(t *testing.T) {
	isolate(t)
	t.Setenv("ERL_EPMD_PORT", "nonsense")
	_, stderr, code := runCmd(t, "ping", "--cookie", testCookie, "a@127.0.0.1")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "ERL_EPMD_PORT")
}

func TestPing(t *testing.T) {
	isolate(t)
	ep := freePort(t)
	a := startPeer(t, "a", ep, testCookie)
	b := startPeer(t, "b", ep, testCookie)
	p := itoa(ep)

	stdout, stderr, code := runCmd(t, "ping", "--cookie", testCookie, "--epmd-port", p, a.Self())
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, a.Self()+" pong\n", stdout)

	// Flags after the arguments; several nodes, in argument order.
	stdout, stderr, code = runCmd(t, "ping", b.Self(), a.Self(), "--cookie", testCookie, "--epmd-port", p, "--timeout", "3s")
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, b.Self()+" pong\n"+a.Self()+" pong\n", stdout)

	// The port from ERL_EPMD_PORT, the cookie from ERLANG_COOKIE.
	t.Setenv("ERL_EPMD_PORT", p)
	t.Setenv("ERLANG_COOKIE", testCookie)
	stdout, stderr, code = runCmd(t, "ping", "--name", "pinger", a.Self())
	assert.Equal(t, 0, code, stderr)
	assert.Equal(t, a.Self()+" pong\n", stdout)
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
	assert.Equal(t, a.Self()+" pong", lines[1])

	// A wrong cookie: auth_failed; neither cookie appears.
	stdout, stderr, code := runCmd(t, "ping", "--cookie", "OtherCookie77", "--epmd-port", p, a.Self())
	assert.Equal(t, 1, code)
	assert.True(t, strings.HasPrefix(stdout, a.Self()+" pang auth_failed"), stdout)
	assert.NotContains(t, stdout+stderr, "OtherCookie77")

	// Nothing listening on the EPMD port of a node's host.
	stdout, _, code = runCmd(t, "ping", "--cookie", testCookie, "--epmd", "external", "--epmd-port", itoa(freePort(t)), a.Self())
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout, "the node could not start: no ping line")
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

	stdout, _, code = runCmd(t, "names", "127.0.0.1", "--epmd-port", itoa(ep))
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "name "+alive+" at port ")

	stdout, stderr, code = runCmd(t, "names", "--epmd-port", itoa(freePort(t)))
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "cannot list names of the EPMD on localhost")
}

func TestEPMDCommand(t *testing.T) {
	isolate(t)
	b := startBackground(t, "epmd", "--port", "0", "--address", "127.0.0.1")
	line := b.waitLine(t, "epmd listening on ")
	_, port, err := net.SplitHostPort(strings.TrimPrefix(line, "epmd listening on "))
	require.NoError(t, err)
	var ep int
	_, err = fmt.Sscan(port, &ep)
	require.NoError(t, err)

	// A node registers with it (external mode fails without an EPMD) and names lists it.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := node.Start(ctx, uniqueAlive("ext")+"@127.0.0.1", testCookie, &node.Options{EPMD: node.EPMDExternal, EPMDPort: ep})
	require.NoError(t, err)
	defer n.Stop()
	assert.True(t, n.EPMDRegistered())
	names, err := (&epmd.Client{Port: ep}).Names(ctx, "127.0.0.1")
	require.NoError(t, err)
	require.Len(t, names, 1)
	assert.Equal(t, n.Port(), names[0].Port)

	require.NoError(t, n.Stop())
	assert.Equal(t, 0, b.stop(t))
	_, err = net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", port), time.Second)
	assert.Error(t, err, "the EPMD no longer listens")
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
		"distribute_handshakes_total", "distribute_link_downs_total", "distribute_epmd_registered"} {
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

func TestRunHTTP(t *testing.T) {
	isolate(t)
	ep := freePort(t)
	name := uniqueAlive("runner") + "@127.0.0.1"
	b := startBackground(t, "run", "--name", name, "--cookie", testCookie, "--epmd-port", itoa(ep),
		"--http", "127.0.0.1:0", "--timeout", "2s")
	nodeLine := b.waitLine(t, "node ")
	assert.Regexp(t, `^node `+strings.ReplaceAll(name, ".", `\.`)+` listening on port \d+ \(epmd embedded on port `+itoa(ep)+`\)$`, nodeLine)
	base := "http://" + strings.TrimPrefix(b.waitLine(t, "http listening on "), "http listening on ")

	code, body, _ := httpDo(t, "GET", base+"/healthz")
	assert.Equal(t, 200, code)
	assert.Equal(t, "ok\n", body)

	// No connection yet: 503, with the JSON all the same.
	code, body, hdr := httpDo(t, "GET", base+"/health")
	assert.Equal(t, 503, code)
	assert.Equal(t, "application/json", hdr.Get("Content-Type"))
	var h health.ClusterHealth
	require.NoError(t, json.Unmarshal([]byte(body), &h), body)
	assert.Equal(t, name, h.SelfNode)
	assert.True(t, h.IsDistributed)
	assert.Zero(t, h.ConnectedCount)
	assert.Contains(t, body, `"connected_nodes":[]`)

	fams := scrape(t, base)
	assert.Equal(t, 0.0, gauge(fams, "distribute_connected_nodes"))
	assert.Equal(t, 1.0, gauge(fams, "distribute_epmd_registered"))
	assert.Equal(t, 0.0, handshakes(fams, "inbound", "ok", "ok"))

	// A peer connects: 200, and the metrics follow.
	peer := startPeer(t, "peer", ep, testCookie)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, peer.Connect(ctx, name))
	// The acceptor installs its side of the link just after the initiator returns.
	require.Eventually(t, func() bool {
		return handshakes(scrape(t, base), "inbound", "ok", "ok") == 1
	}, 5*time.Second, 10*time.Millisecond)
	code, body, _ = httpDo(t, "GET", base+"/health")
	assert.Equal(t, 200, code, body)
	h = health.ClusterHealth{}
	require.NoError(t, json.Unmarshal([]byte(body), &h))
	assert.Equal(t, []string{peer.Self()}, h.ReachableNodes)

	fams = scrape(t, base)
	assert.Equal(t, 1.0, gauge(fams, "distribute_connected_nodes"))
	assert.Equal(t, uint64(1), fams["distribute_ping_rtt_seconds"].GetMetric()[0].GetHistogram().GetSampleCount())

	// A peer with the wrong cookie: a failed inbound handshake, reason auth.
	intruder := startPeer(t, "intruder", ep, "WrongCookie99")
	assert.Error(t, intruder.Connect(ctx, name))
	require.Eventually(t, func() bool {
		return handshakes(scrape(t, base), "inbound", "failed", "auth") == 1
	}, 5*time.Second, 20*time.Millisecond)

	// The peer goes away: 503 again, one link down.
	require.NoError(t, peer.Stop())
	require.Eventually(t, func() bool {
		code, _, _ := httpDo(t, "GET", base+"/health")
		return code == 503
	}, 5*time.Second, 20*time.Millisecond)
	fams = scrape(t, base)
	assert.Equal(t, 0.0, gauge(fams, "distribute_connected_nodes"))
	assert.GreaterOrEqual(t, fams["distribute_link_downs_total"].GetMetric()[0].GetCounter().GetValue(), 1.0)

	// Methods and paths.
	for path, head := range map[string]int{"/health": 503, "/healthz": 200, "/metrics": 200} {
		for _, m := range []string{"POST", "PUT", "DELETE"} {
			code, _, hdr := httpDo(t, m, base+path)
			assert.Equal(t, 405, code, m+" "+path)
			assert.Contains(t, hdr.Get("Allow"), "GET")
		}
		code, _, _ = httpDo(t, "HEAD", base+path)
		assert.Equal(t, head, code, "HEAD "+path+" answers as GET")
	}
	for _, path := range []string{"/", "/nope", "/health/x", "/metricsx"} {
		code, _, _ = httpDo(t, "GET", base+path)
		assert.Equal(t, 404, code, path)
	}

	assert.Equal(t, 0, b.stop(t))
	assert.Contains(t, b.stderr.String(), "stopped")
	// After a clean stop the name is unregistered and the HTTP server is gone.
	names, err := (&epmd.Client{Port: ep}).Names(ctx, "127.0.0.1")
	if err == nil {
		alive, _, _ := strings.Cut(name, "@")
		for _, e := range names {
			assert.NotEqual(t, alive, e.Name)
		}
	}
	_, err = net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second)
	assert.Error(t, err)
}

func TestRunConnectRetries(t *testing.T) {
	isolate(t)
	oldMin, oldMax, oldRecheck := connectRetryMin, connectRetryMax, connectRecheck
	connectRetryMin, connectRetryMax, connectRecheck = 20*time.Millisecond, 100*time.Millisecond, 50*time.Millisecond
	t.Cleanup(func() { connectRetryMin, connectRetryMax, connectRecheck = oldMin, oldMax, oldRecheck })

	ep := freePort(t)
	// Keep the embedded EPMD up for the whole test with a node of our own.
	anchor := startPeer(t, "anchor", ep, testCookie)
	laterAlive := uniqueAlive("later")
	later := laterAlive + "@127.0.0.1"
	b := startBackground(t, "run", "--name", uniqueAlive("runner"), "--cookie", testCookie,
		"--epmd-port", itoa(ep), "--connect", later, "--connect", anchor.Self(), "--timeout", "1s")
	line := b.waitLine(t, "node ")
	// The name got the long host of the (loopback) --connect nodes.
	runner := strings.Fields(line)[1]
	assert.True(t, strings.HasSuffix(runner, "@127.0.0.1"), runner)

	require.Eventually(t, func() bool { return slices.Contains(anchor.Nodes(), runner) }, 5*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return strings.Contains(b.stderr.String(), "connect failed; will retry") },
		5*time.Second, 10*time.Millisecond)
	assert.Contains(t, b.stderr.String(), "node_not_found")

	// The missing node appears: the runner connects on its own.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := node.Start(ctx, later, testCookie, &node.Options{EPMDPort: ep})
	require.NoError(t, err)
	defer n.Stop()
	require.Eventually(t, func() bool { return slices.Contains(n.Nodes(), runner) }, 5*time.Second, 10*time.Millisecond)

	// The link drops: it is set up again.
	require.True(t, n.Disconnect(runner))
	require.Eventually(t, func() bool { return slices.Contains(n.Nodes(), runner) }, 5*time.Second, 10*time.Millisecond)

	assert.Equal(t, 0, b.stop(t))
	require.NoError(t, n.Stop())
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
	assert.Equal(t, a.Self()+" pong\n", stdout)

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
	assert.True(t, strings.HasPrefix(reason(fmt.Errorf("x: %w", node.ErrPang)), "denied: "))
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
