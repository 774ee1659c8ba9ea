package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/internal/testcerts"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
	"github.com/distribute-go/distribute/tlsdist"
)

// startTLSPeer starts an in-process TLS node like startPeer.
func startTLSPeer(t *testing.T, prefix string, epmdPort int, cfg *tlsdist.Config) *process.Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := process.Start(ctx, uniqueAlive(prefix)+"@127.0.0.1", testCookie,
		&process.Options{Node: node.Options{EPMDPort: epmdPort, TLS: cfg}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

func TestTLSFlags(t *testing.T) {
	isolate(t)
	ca := testcerts.NewCA(t, "ca")
	pair := ca.Node(t, "n")
	conf := testcerts.OptFile(t, pair, ca.File, "", "")
	ep := freePort(t)
	plain := startPeer(t, "plain", ep, testCookie)
	cfg, err := tlsdist.LoadOptFile(conf)
	require.NoError(t, err)
	secure := startTLSPeer(t, "tls", ep, cfg)
	p := itoa(ep)
	direct := []string{"--tls-cert", pair.CertFile, "--tls-key", pair.KeyFile, "--tls-ca", ca.File}

	stdout, stderr, code := runCmd(t, append([]string{"ping", "--cookie", testCookie, "--epmd-port", p, secure.Self()}, direct...)...)
	assert.Equal(t, 0, code, stderr)
	assertPongs(t, stdout, secure.Self())
	stdout, stderr, code = runCmd(t, "ping", "--cookie", testCookie, "--epmd-port", p, "--ssl-dist-optfile", conf, secure.Self())
	assert.Equal(t, 0, code, stderr)
	assertPongs(t, stdout, secure.Self())
	stdout, stderr, code = runCmd(t, "health", "--cookie", testCookie, "--epmd-port", p, "--ssl-dist-optfile", conf, secure.Self())
	assert.Equal(t, 0, code, stderr+stdout)

	// Mismatches: pang, with the reason.
	stdout, _, code = runCmd(t, "ping", "--cookie", testCookie, "--epmd-port", p, secure.Self())
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "pang")
	assert.Contains(t, stdout, "tls_failed")
	assert.Contains(t, stdout, "TLS distribution")
	stdout, _, code = runCmd(t, "ping", "--cookie", testCookie, "--epmd-port", p, "--ssl-dist-optfile", conf, plain.Self())
	assert.Equal(t, 1, code)
	assert.Contains(t, stdout, "pang")
	assert.Contains(t, stdout, "plain distribution")

	// Usage errors.
	bad := filepath.Join(t.TempDir(), "bad.conf")
	require.NoError(t, os.WriteFile(bad, []byte("[{server, [{verify_fun, x}]}]."), 0o600))
	for _, args := range [][]string{
		{"--ssl-dist-optfile", conf, "--tls-cert", pair.CertFile},
		{"--tls-key", pair.KeyFile},
		{"--tls-ca", ca.File},
		{"--ssl-dist-optfile", filepath.Join(t.TempDir(), "missing.conf")},
		{"--ssl-dist-optfile", bad},
	} {
		_, stderr, code := runCmd(t, append([]string{"ping", "--cookie", testCookie, "--epmd-port", p, secure.Self()}, args...)...)
		assert.Equal(t, 2, code, "%q: %s", args, stderr)
		assert.NotEmpty(t, stderr)
	}
	_, stderr, code = runCmd(t, "names", "--tls-cert", pair.CertFile)
	assert.Equal(t, 2, code, "names stays a plain EPMD client: %s", stderr)
}

// TestTLSMetrics: `run` over TLS counts a plain peer's attempt under
// distribute_tls_failures_total and the handshake reason "tls".
func TestTLSMetrics(t *testing.T) {
	isolate(t)
	ca := testcerts.NewCA(t, "ca")
	conf := testcerts.OptFile(t, ca.Node(t, "n"), ca.File, "", "")
	ep := freePort(t)
	_, name, base := startRun(t, "--name", uniqueAlive("runner")+"@127.0.0.1", "--epmd-port", itoa(ep), "--ssl-dist-optfile", conf)
	plain := startPeer(t, "plain", ep, testCookie)
	err := plain.Connect(context.Background(), name)
	require.ErrorIs(t, err, node.ErrTLS)
	var got float64
	require.Eventually(t, func() bool {
		got = tlsFailures(scrape(t, base), "inbound", string(tlsdist.ReasonProtocolMismatch))
		return got == 1
	}, 5*time.Second, 20*time.Millisecond, "tls failures: %v", got)
	assert.Equal(t, 1.0, handshakes(scrape(t, base), "inbound", "failed", "tls"))
	assert.Equal(t, 0.0, tlsFailures(scrape(t, base), "outbound", string(tlsdist.ReasonUnknownCA)), "every series exists")
}

// TestTLSRunJoinsBEAM: `distribute run --ssl-dist-optfile dist.conf` joins an
// `erl -proto_dist inet_tls -ssl_dist_optfile dist.conf` node, same file,
// both directions, on every runtime.
func TestTLSRunJoinsBEAM(t *testing.T) {
	t.Setenv(erltest.CacheEnv, erltest.OTPCache()) // before isolate changes HOME
	isolate(t)
	erltest.ForEachRuntimeSerial(t, func(t *testing.T, rt *erltest.Runtime) {
		ca := testcerts.NewCAIn(t, rt.TempDir(t), "ca")
		conf := testcerts.OptFile(t, ca.Node(t, "node"), ca.File, "", "")
		erl := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, LongNames: true, Cookie: testCookie, Control: true,
			Extra: []string{"-proto_dist", "inet_tls", "-ssl_dist_optfile", conf}})
		_, name, base := startRun(t, "--name", uniqueAlive("runner")+"@127.0.0.1", "--epmd-port", itoa(erl.Port()),
			"--connect", erl.Node(), "--ssl-dist-optfile", conf)
		require.Eventually(t, func() bool {
			code, h := getHealth(t, base)
			return code == 200 && len(h.ReachableNodes) == 1
		}, 10*time.Second, 50*time.Millisecond, "run is healthy: connected to %s over TLS", erl.Node())
		v, err := erl.Eval("{ok, I} = net_kernel:node_info('"+name+"', address), {element(4, I), net_adm:ping('"+name+"')}", 10*time.Second)
		require.NoError(t, err)
		assert.Equal(t, "{tls,pong}", v)
		_, err = erl.Eval("erlang:disconnect_node('"+name+"')", 10*time.Second)
		require.NoError(t, err)
		v, err = erl.Eval("timer:sleep(200), net_adm:ping('"+name+"')", 10*time.Second)
		require.NoError(t, err)
		assert.Equal(t, "pong", v, "BEAM dials the run node over TLS")

		// call and eval take the same flags.
		stdout, stderr, code := runCmd(t, "call", "--cookie", testCookie, "--epmd-port", itoa(erl.Port()),
			"--ssl-dist-optfile", conf, erl.Node(), "erlang", "node")
		assert.Equal(t, 0, code, stderr)
		assert.Equal(t, "'"+erl.Node()+"'\n", stdout)
		stdout, stderr, code = runCmd(t, "eval", "--cookie", testCookie, "--epmd-port", itoa(erl.Port()),
			"--ssl-dist-optfile", conf, erl.Node(), "1 + 2.")
		assert.Equal(t, 0, code, stderr)
		assert.Equal(t, "3\n", stdout)
	})
}

func tlsFailures(f map[string]*dto.MetricFamily, dir, reason string) float64 {
	for _, m := range f["distribute_tls_failures_total"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		if l["direction"] == dir && l["reason"] == reason {
			return m.GetCounter().GetValue()
		}
	}
	return -1
}
