package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/gen"
	"github.com/distribute-go/distribute/process"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestQuickSmoke runs the harness in quick mode on the rows that need no
// erl: the raw TCP floor and the ours->ours ping, 200 pings each.
func TestQuickSmoke(t *testing.T) {
	cfg := configFor(true)
	cfg.run = regexp.MustCompile(`^ping/(tcp|ours-ours)$`)
	cfg.pings, cfg.warmPings = 200, 20
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	rep, err := runBench(ctx, cfg, nil)
	require.NoError(t, err)
	require.NotNil(t, rep)

	for _, id := range []string{idTCP, idPingOO} {
		require.Contains(t, rep.res, id)
		r := rep.res[id]
		require.NoError(t, r.err, id)
		require.NotNil(t, r.lat, id)
		assert.Equal(t, 200, r.lat.n, id)
		assert.Positive(t, r.lat.p50, id)
		assert.LessOrEqual(t, r.lat.p50, r.lat.p99, id)
	}
	require.Len(t, rep.rows, 2)
	assert.Equal(t, "raw Go TCP 64 B (floor)", rep.rows[0].label)
	assert.Equal(t, "ours->ours", rep.rows[1].label)
	assert.Contains(t, []string{"PASS", "MISS"}, rep.rows[1].verdict)
	assert.Regexp(t, `^\d+\.\d\dx`, rep.rows[1].ratio)

	text, md := rep.text(), rep.markdown()
	assert.Contains(t, text, "ours->ours")
	assert.True(t, strings.HasPrefix(md, "Machine: "))
	assert.Contains(t, md, "| ping | ours->ours | p50 ")
}

func TestPercentiles(t *testing.T) {
	ds := make([]time.Duration, 100)
	for i := range ds {
		ds[i] = time.Duration(100-i) * time.Microsecond // reversed: distOf sorts
	}
	d := distOf(ds)
	assert.Equal(t, 100, d.n)
	assert.Equal(t, 50*time.Microsecond, d.p50)
	assert.Equal(t, 99*time.Microsecond, d.p99)
	assert.Equal(t, 100*time.Microsecond, d.max)
	assert.Equal(t, dist{}, distOf(nil))
}

func TestParseInts(t *testing.T) {
	v, err := parseInts("[1,22,333]")
	require.NoError(t, err)
	assert.Equal(t, []int64{1, 22, 333}, v)
	v, err = parseInts("[]")
	require.NoError(t, err)
	assert.Empty(t, v)
	_, err = parseInts("[1,x]")
	assert.Error(t, err)
}

// TestServersAndCall: our bench_sink counts what it is sent and answers
// the sync call, bench_echo answers gen.CallFrom with the request, between
// two Go nodes (the same code the messaging and call rows run against BEAM).
func TestServersAndCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	port, err := freePort()
	require.NoError(t, err)
	cookie := randomCookie()
	srv, err := startGo(ctx, uniqueName("ts"), cookie, port)
	require.NoError(t, err)
	cli, err := startGo(ctx, uniqueName("tc"), cookie, port)
	require.NoError(t, err)
	t.Cleanup(func() { stopAll([]*process.Node{cli, srv}) })
	require.NoError(t, startServers(ctx, srv))

	p := cli.Spawn()
	echo := process.Name{Name: echoName, Node: srv.Self()}
	r, err := gen.CallFrom(ctx, p, echo, echoReq)
	require.NoError(t, err)
	assert.True(t, equalEcho(r), "echo answered %v", r)

	sink := process.Name{Name: sinkName, Node: srv.Self()}
	for range 100 {
		require.NoError(t, p.Send(sink, benchMsg))
	}
	r, err = gen.CallFrom(ctx, p, sink, atomSync)
	require.NoError(t, err)
	assert.Equal(t, etf.Tuple{atomSynced, int64(100)}, r)

	// A call to a name nobody holds ends with the monitor's DOWN.
	_, err = gen.CallFrom(ctx, p, process.Name{Name: "nobody", Node: srv.Self()}, echoReq)
	assert.ErrorContains(t, err, "noproc")
}

func TestFmtCount(t *testing.T) {
	assert.Equal(t, "1,000,000", fmtCount(1000000))
	assert.Equal(t, "100", fmtCount(100))
	assert.Equal(t, "10,000", fmtCount(10000))
}

// TestCPUColumn: CPU per operation from two snapshots, and how the column
// reads with and without this process's part.
func TestCPUColumn(t *testing.T) {
	a := usage{cpu: time.Second, ok: true, peers: []time.Duration{10 * time.Second, 0}}
	b := usage{cpu: 3 * time.Second, ok: true, peers: []time.Duration{11 * time.Second, 50 * time.Millisecond}}
	parts := cpuPer(a, b, 1000, group{name: "the BEAM target", pids: []int{1}, abbr: "BEAM B"}, group{name: "D", pids: []int{2}})
	require.Len(t, parts, 3)
	assert.Equal(t, "Go 2.00 ms, BEAM B 1.00 ms, D n/a", cpuText(parts, true))
	assert.Equal(t, "BEAM B 1.00 ms, D n/a", cpuText(parts, false))
	us, ok := cpuOf(parts, "BEAM B")
	assert.True(t, ok)
	assert.InDelta(t, 1000, us, 1e-9)
	_, ok = cpuOf(parts, "D")
	assert.False(t, ok, "50 ms of ticks is too few to report")
	assert.False(t, goInRow("BEAM->BEAM, 1 sender"))
	assert.True(t, goInRow("BEAM->ours, 1 sender"))
}
