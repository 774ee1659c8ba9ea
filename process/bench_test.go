package process_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/process"
)

// heapAfterGC returns the live heap after a full collection.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestIdleProcessMemory: 1,000,000 idle processes in one node cost at most 1 KiB each (the
// process, its pid and its place in the process table) and no goroutine.
func TestIdleProcessMemory(t *testing.T) {
	n := 1_000_000
	if testing.Short() || raceEnabled {
		n = 100_000 // the race detector makes a million slow; the size per process is the same
	}
	a, _ := goPair(t, nil)
	goroutines := runtime.NumGoroutine()
	before := heapAfterGC()
	procs := make([]*process.Process, n)
	for i := range procs {
		procs[i] = a.Spawn()
	}
	after := heapAfterGC()
	perProc := float64(after-before-uint64(n)*8) / float64(n) // minus the test's own slice
	t.Logf("%d idle processes: %.0f bytes each", n, perProc)
	assert.LessOrEqual(t, perProc, 1024.0, "bytes per idle process")
	assert.Equal(t, goroutines, runtime.NumGoroutine(), "an idle process has no goroutine")
	require.Equal(t, n, a.ProcessCount()-3, "the processes and the three built-in ones")
	// They work: the last one gets a message.
	require.NoError(t, a.Send(procs[n-1].Pid(), etf.Atom("hi")))
	assert.Equal(t, etf.Atom("hi"), recv(t, procs[n-1], nil))
	for _, p := range procs {
		p.Exit(etf.Atom("normal"))
	}
	assert.Equal(t, 3, a.ProcessCount())
	runtime.KeepAlive(procs)
}

// BenchmarkLocalSendReceive: one message sent to a local process and received.
func BenchmarkLocalSendReceive(b *testing.B) {
	a, _ := goPair(b, nil)
	p := a.Spawn()
	ctx := ctxFor(b, time.Hour)
	msg := etf.Tuple{etf.Atom("n"), int64(1)}
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Send(p, msg); err != nil {
			b.Fatal(err)
		}
		if _, err := p.Receive(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLocalSendReceiveParallel: many senders to one receiver.
func BenchmarkLocalSendReceiveParallel(b *testing.B) {
	a, _ := goPair(b, nil)
	p := a.Spawn()
	ctx := ctxFor(b, time.Hour)
	done := make(chan struct{})
	total := 0
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		defer close(done)
		for {
			if _, err := p.Receive(ctx); err != nil {
				return
			}
			total++
		}
	}()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = a.Send(p, int64(1))
		}
	})
	p.Exit(etf.Atom("normal"))
	<-done
}

// BenchmarkGoGoRoundTrip: a message to a process of another Go node and its answer.
func BenchmarkGoGoRoundTrip(b *testing.B) {
	a, c := goPair(b, nil)
	echo := c.SpawnHandler(func(p *process.Process, m etf.Term) {
		t := m.(etf.Tuple)
		_ = p.Send(t[0], t[1])
	})
	p := a.Spawn()
	ctx := ctxFor(b, time.Hour)
	msg := etf.Tuple{p.Pid(), []byte("payload")}
	// Connect first.
	if err := p.Send(echo.Pid(), msg); err != nil {
		b.Fatal(err)
	}
	if _, err := p.Receive(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Send(echo.Pid(), msg); err != nil {
			b.Fatal(err)
		}
		if _, err := p.Receive(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSpawn: spawning and ending a process.
func BenchmarkSpawn(b *testing.B) {
	a, _ := goPair(b, nil)
	b.ReportAllocs()
	for b.Loop() {
		a.Spawn().Exit(atomNormal)
	}
}

var atomNormal = etf.Atom("normal")
