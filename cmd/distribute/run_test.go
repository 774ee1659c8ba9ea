package main

import (
	"context"
	"encoding/json"
	"net"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// metricValue returns the value of the series of family name whose labels
// include want, or -1.
func metricValue(f map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	for _, m := range f[name].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		ok := true
		for k, v := range want {
			ok = ok && l[k] == v
		}
		if !ok {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

// healthJSON is GET /health's body.
type healthJSON struct {
	Healthy          bool      `json:"healthy"`
	Reason           string    `json:"reason"`
	ExpectedNodes    []string  `json:"expected_nodes"`
	CheckedAt        time.Time `json:"checked_at"`
	AgeSeconds       float64   `json:"age_seconds"`
	CheckSeconds     float64   `json:"check_seconds"`
	SelfNode         string    `json:"self_node"`
	ConnectedNodes   []string  `json:"connected_nodes"`
	ConnectedCount   int       `json:"connected_count"`
	ReachableNodes   []string  `json:"reachable_nodes"`
	UnreachableNodes []string  `json:"unreachable_nodes"`
	Details          []struct {
		Node      string `json:"node"`
		Reachable bool   `json:"reachable"`
		Error     string `json:"error"`
	} `json:"details"`
}

func getHealth(t *testing.T, base string) (int, healthJSON) {
	t.Helper()
	code, body, hdr := httpDo(t, "GET", base+"/health")
	var h healthJSON
	if code == 200 || strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
		require.NoError(t, json.Unmarshal([]byte(body), &h), body)
	}
	return code, h
}

// startRun runs `distribute run` with the HTTP endpoints on loopback and a
// short health interval, and returns it with its node name and base URL.
func startRun(t *testing.T, args ...string) (b *background, name, base string) {
	t.Helper()
	b = startBackground(t, append([]string{"run", "--cookie", testCookie, "--http", "127.0.0.1:0", "--health-interval", "0.2"}, args...)...)
	name = strings.Fields(b.waitLine(t, "node "))[1]
	base = "http://" + strings.TrimPrefix(b.waitLine(t, "http listening on "), "http listening on ")
	return b, name, base
}

func TestRunHTTP(t *testing.T) {
	isolate(t)
	ep := freePort(t)
	name := uniqueAlive("runner") + "@127.0.0.1"
	b, _, base := startRun(t, "--name", name, "--epmd-port", itoa(ep), "--timeout", "2")
	assert.Regexp(t, `^node `+regexp.QuoteMeta(name)+` listening on port \d+ \(embedded EPMD started on port `+itoa(ep)+`\)$`, b.waitLine(t, "node "))

	for _, path := range []string{"/livez", "/healthz"} {
		code, body, _ := httpDo(t, "GET", base+path)
		assert.Equal(t, 200, code, path)
		assert.Equal(t, "ok\n", body, path)
	}

	// No connection yet: 503, with the JSON all the same.
	require.Eventually(t, func() bool { code, _ := getHealth(t, base); return code == 503 }, 10*time.Second, 20*time.Millisecond)
	code, h := getHealth(t, base)
	assert.Equal(t, 503, code)
	assert.Equal(t, name, h.SelfNode)
	assert.False(t, h.Healthy)
	assert.Equal(t, "no node connected", h.Reason)
	assert.Zero(t, h.ConnectedCount)
	assert.NotNil(t, h.ConnectedNodes)
	assert.NotNil(t, h.ExpectedNodes)
	assert.GreaterOrEqual(t, h.AgeSeconds, 0.0)
	assert.Less(t, h.AgeSeconds, 5.0)
	assert.WithinDuration(t, time.Now(), h.CheckedAt, 5*time.Second)
	code, body, _ := httpDo(t, "GET", base+"/readyz")
	assert.Equal(t, 503, code)
	assert.Regexp(t, `^not ready: no node connected \(checked [0-9.]+m?s ago\)\n$`, body)

	fams := scrape(t, base)
	assert.Equal(t, 0.0, gauge(fams, "distribute_connected_nodes"))
	assert.Equal(t, 1.0, gauge(fams, "distribute_epmd_registered"))
	assert.Equal(t, 0.0, handshakes(fams, "inbound", "ok", "ok"))
	assert.Equal(t, 1.0, metricValue(fams, "distribute_build_info", map[string]string{}))

	// A peer connects: 200, and the metrics follow.
	peer := startPeer(t, "peer", ep, testCookie)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, peer.Connect(ctx, name))
	require.Eventually(t, func() bool { code, _ := getHealth(t, base); return code == 200 }, 10*time.Second, 20*time.Millisecond)
	code, h = getHealth(t, base)
	assert.Equal(t, 200, code)
	assert.True(t, h.Healthy)
	assert.Equal(t, []string{peer.Self()}, h.ReachableNodes)
	code, body, _ = httpDo(t, "GET", base+"/readyz")
	assert.Equal(t, 200, code)
	assert.Regexp(t, `^ok \(checked [0-9.]+m?s ago\)\n$`, body)

	fams = scrape(t, base)
	assert.Equal(t, 1.0, gauge(fams, "distribute_connected_nodes"))
	assert.Equal(t, 1.0, metricValue(fams, "distribute_nodeup_total", nil))
	assert.Equal(t, 1.0, metricValue(fams, "distribute_peer_up", map[string]string{"node": peer.Self()}))
	assert.Greater(t, metricValue(fams, "distribute_peer_rtt_seconds", map[string]string{"node": peer.Self()}), 0.0)
	assert.GreaterOrEqual(t, fams["distribute_ping_rtt_seconds"].GetMetric()[0].GetHistogram().GetSampleCount(), uint64(1))

	// Peers with the wrong cookie: failed inbound handshakes, reason auth,
	// counted by address, and one rate-limited WARN line with the address.
	for i := range 3 {
		intruder := startPeer(t, "intruder"+itoa(i), ep, "WrongCookie99")
		assert.Error(t, intruder.Connect(ctx, name))
	}
	require.Eventually(t, func() bool {
		return handshakes(scrape(t, base), "inbound", "failed", "auth") == 3
	}, 5*time.Second, 20*time.Millisecond)
	fams = scrape(t, base)
	assert.Equal(t, 3.0, metricValue(fams, "distribute_inbound_auth_failures_total", map[string]string{"addr": "127.0.0.1"}))
	var warns []string
	for l := range strings.Lines(b.stderr.String()) {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "wrong cookie") {
			warns = append(warns, l)
		}
	}
	require.Len(t, warns, 1, b.stderr.String())
	assert.Contains(t, warns[0], "remote=127.0.0.1:")
	assert.NotContains(t, b.stderr.String(), "WrongCookie99")

	// The peer goes away: 503 again, one link down.
	require.NoError(t, peer.Stop())
	require.Eventually(t, func() bool { code, _ := getHealth(t, base); return code == 503 }, 10*time.Second, 20*time.Millisecond)
	fams = scrape(t, base)
	assert.Equal(t, 0.0, gauge(fams, "distribute_connected_nodes"))
	assert.GreaterOrEqual(t, fams["distribute_link_downs_total"].GetMetric()[0].GetCounter().GetValue(), 1.0)
	assert.Equal(t, 1.0, metricValue(fams, "distribute_nodedown_total", nil))

	// Methods and paths.
	for path, head := range map[string]int{"/health": 503, "/readyz": 503, "/livez": 200, "/healthz": 200, "/metrics": 200} {
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

	assert.Equal(t, 0, b.stop(t), "SIGTERM is a clean stop")
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

// TestRunExpectedPeers: with --connect X --connect Y, Y never reachable is
// unreachable and fails the check, and a stray connection that answers
// does not make the sidecar healthy; once Y comes, it is.
func TestRunExpectedPeers(t *testing.T) {
	isolate(t)
	ep := freePort(t)
	x := startPeer(t, "x", ep, testCookie)
	y := uniqueAlive("y") + "@127.0.0.1"
	b, runner, base := startRun(t, "--name", uniqueAlive("runner"), "--epmd-port", itoa(ep), "--timeout", "1",
		"--connect", x.Self(), "--connect", y)
	assert.Contains(t, b.waitLine(t, "node "), "(existing EPMD on port "+itoa(ep)+" used)")

	require.Eventually(t, func() bool { return slices.Contains(x.Nodes(), runner) }, 10*time.Second, 10*time.Millisecond)
	// A stray hidden node connects and stays: it answers pings.
	stray := startPeer(t, "stray", ep, testCookie)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, stray.Connect(ctx, runner))
	// So does a distribute ping from elsewhere.
	stdout, stderr, code := runCmd(t, "ping", "--cookie", testCookie, "--epmd-port", itoa(ep), runner)
	require.Equal(t, 0, code, stderr)
	assertPongs(t, stdout, runner)

	var h healthJSON
	require.Eventually(t, func() bool {
		code, h = getHealth(t, base)
		return code == 503 && slices.Contains(h.ReachableNodes, stray.Self()) && slices.Contains(h.ReachableNodes, x.Self())
	}, 10*time.Second, 20*time.Millisecond, "%+v", h)
	assert.False(t, h.Healthy)
	want := []string{x.Self(), y}
	slices.Sort(want)
	assert.Equal(t, want, h.ExpectedNodes)
	assert.Contains(t, h.UnreachableNodes, y)
	assert.Contains(t, h.Reason, y)
	for _, d := range h.Details {
		if d.Node == y {
			assert.Contains(t, d.Error, "not connected")
		}
	}
	code, body, _ := httpDo(t, "GET", base+"/readyz")
	assert.Equal(t, 503, code)
	assert.Contains(t, body, "expected nodes unreachable: "+y)
	fams := scrape(t, base)
	assert.Equal(t, 0.0, metricValue(fams, "distribute_peer_up", map[string]string{"node": y}))
	assert.Equal(t, 1.0, metricValue(fams, "distribute_peer_up", map[string]string{"node": x.Self()}))

	// distribute health X Y agrees: Y is unreachable.
	stdout, _, code = runCmd(t, "health", "--cookie", testCookie, "--epmd-port", itoa(ep), "--timeout", "1", x.Self(), y)
	assert.Equal(t, 1, code)
	assert.Regexp(t, regexp.QuoteMeta(y)+` +unreachable`, stdout)

	// Y comes up: the runner connects on its own and is healthy.
	yn, err := process.Start(ctx, y, testCookie, &process.Options{Node: node.Options{EPMDPort: ep}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = yn.Stop() })
	require.Eventually(t, func() bool { code, _ := getHealth(t, base); return code == 200 }, 20*time.Second, 50*time.Millisecond)
	code, _, _ = httpDo(t, "GET", base+"/readyz")
	assert.Equal(t, 200, code)
}

func TestRunConnectRetries(t *testing.T) {
	isolate(t)
	ep := freePort(t)
	// Keep the embedded EPMD up for the whole test with a node of our own.
	anchor := startPeer(t, "anchor", ep, testCookie)
	later := uniqueAlive("later") + "@127.0.0.1"
	b := startBackground(t, "run", "--name", uniqueAlive("runner"), "--cookie", testCookie,
		"--epmd-port", itoa(ep), "--connect", later, "--connect", anchor.Self(), "--timeout", "1")
	line := b.waitLine(t, "node ")
	// A bare --name got the long host of the (loopback) --connect nodes.
	runner := strings.Fields(line)[1]
	assert.True(t, strings.HasSuffix(runner, "@127.0.0.1"), runner)

	require.Eventually(t, func() bool { return slices.Contains(anchor.Nodes(), runner) }, 10*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool { return strings.Contains(b.stderr.String(), "connect failed; will retry") },
		10*time.Second, 10*time.Millisecond)
	assert.Contains(t, b.stderr.String(), "node_not_found")

	// The missing node appears: the runner connects on its own.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := process.Start(ctx, later, testCookie, &process.Options{Node: node.Options{EPMDPort: ep}})
	require.NoError(t, err)
	defer n.Stop()
	require.Eventually(t, func() bool { return slices.Contains(n.Nodes(), runner) }, 15*time.Second, 10*time.Millisecond)

	// The link drops: it is set up again.
	require.True(t, n.Disconnect(runner))
	require.Eventually(t, func() bool { return slices.Contains(n.Nodes(), runner) }, 15*time.Second, 10*time.Millisecond)

	assert.Equal(t, 0, b.signal(t, syscall.SIGINT), "SIGINT is a clean stop too")
	require.NoError(t, n.Stop())
}

// TestRunReadyzFrozenErl: with a real erl frozen (SIGSTOP), /readyz and
// /health answer at once from the background check, within a fraction of
// Kubernetes' 1 s probe timeout, while that check waits out --timeout; once
// it has, they say the node is unreachable.
func TestRunReadyzFrozenErl(t *testing.T) {
	isolate(t)
	erl := erltest.StartErl(t, erltest.ErlOptions{LongNames: true, Cookie: testCookie})
	ep := erl.Port()
	b, _, base := startRun(t, "--name", uniqueAlive("sidecar"), "--epmd", "external", "--epmd-port", itoa(ep),
		"--timeout", "3", "--connect", erl.Node())
	assert.Contains(t, b.waitLine(t, "node "), "(external EPMD on port "+itoa(ep)+")")
	require.Eventually(t, func() bool {
		code, _, _ := httpDo(t, "GET", base+"/readyz")
		return code == 200
	}, 20*time.Second, 50*time.Millisecond, "ready once erl answers\n%s", b.stderr.String())

	require.NoError(t, erl.Signal(syscall.SIGSTOP))
	t.Cleanup(func() { _ = erl.Signal(syscall.SIGCONT) })
	frozenAt := time.Now()
	var slowest time.Duration
	var h healthJSON
	for {
		start := time.Now()
		code, body, _ := httpDo(t, "GET", base+"/readyz")
		took := time.Since(start)
		slowest = max(slowest, took)
		hcode, hh := getHealth(t, base)
		slowest = max(slowest, time.Since(start)-took)
		if code == 503 && hcode == 503 {
			h = hh
			assert.Contains(t, body, "expected nodes unreachable: "+erl.Node())
			break
		}
		require.Less(t, time.Since(frozenAt), 30*time.Second, "never unready: %s", body)
		time.Sleep(50 * time.Millisecond)
	}
	assert.Less(t, slowest, 500*time.Millisecond, "the probes never wait for the frozen peer")
	assert.GreaterOrEqual(t, time.Since(frozenAt), 2*time.Second, "unready only once the check's ping timed out")
	assert.Equal(t, []string{erl.Node()}, h.UnreachableNodes)
	assert.GreaterOrEqual(t, h.CheckSeconds, 2.5, "the background check itself waited out --timeout")
	fams := scrape(t, base)
	assert.Equal(t, 0.0, metricValue(fams, "distribute_peer_up", map[string]string{"node": erl.Node()}))
	assert.GreaterOrEqual(t, metricValue(fams, "distribute_ping_failures_total", map[string]string{"node": erl.Node()}), 1.0)

}

func TestHTTPListenAddr(t *testing.T) {
	for in, want := range map[string]string{
		"18082": ":18082", ":18082": ":18082", "127.0.0.1:0": "127.0.0.1:0", "[::1]:80": "[::1]:80", "localhost:9": "localhost:9",
	} {
		got, err := httpListenAddr(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"nonsense", "99999", ":99999", "host:port", "a b:80", ""} {
		_, err := httpListenAddr(in)
		assert.Error(t, err, in)
	}
}

// TestPingRealErlNames: --sname and a bare --name take erl's meanings
// against real erl -sname and erl -name nodes, and a node of the other
// style is refused up front.
func TestPingRealErlNames(t *testing.T) {
	isolate(t)
	short := erltest.StartErl(t, erltest.ErlOptions{Cookie: testCookie})
	long := erltest.StartErl(t, erltest.ErlOptions{LongNames: true, Cookie: testCookie})
	for _, tc := range []struct {
		erl  *erltest.Process
		flag string
	}{{short, "--sname"}, {long, "--name"}} {
		stdout, stderr, code := runCmd(t, "ping", tc.flag, uniqueAlive("me"), "--cookie", testCookie,
			"--epmd-port", itoa(tc.erl.Port()), tc.erl.Node())
		assert.Equal(t, 0, code, "%s: %s", tc.flag, stderr)
		assertPongs(t, stdout, tc.erl.Node())
	}
	_, stderr, code := runCmd(t, "ping", "--name", "me", "--cookie", testCookie, "--epmd-port", itoa(short.Port()), short.Node())
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "cannot reach each other")
}

// TestRunHTTPBarePort: --http with a bare port listens on all interfaces,
// like --http :PORT.
func TestRunHTTPBarePort(t *testing.T) {
	isolate(t)
	for _, v := range []string{"0", ":0"} {
		b := startBackground(t, "run", "--name", uniqueAlive("bare")+"@127.0.0.1", "--cookie", testCookie,
			"--epmd-port", itoa(freePort(t)), "--http", v)
		addr := strings.TrimPrefix(b.waitLine(t, "http listening on "), "http listening on ")
		host, port, err := net.SplitHostPort(addr)
		require.NoError(t, err)
		assert.True(t, net.ParseIP(host).IsUnspecified(), "--http %s: all interfaces, got %s", v, addr)
		code, body, _ := httpDo(t, "GET", "http://127.0.0.1:"+port+"/livez")
		assert.Equal(t, 200, code)
		assert.Equal(t, "ok\n", body)
		assert.Equal(t, 0, b.stop(t))
	}
}
