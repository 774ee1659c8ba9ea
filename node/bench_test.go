package node

import (
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"
)

// benchPair starts two connected nodes for a benchmark.
func benchPair(b *testing.B, connect bool) (x, y *Node) {
	b.Helper()
	port := freePort(b)
	quiet := slog.New(slog.DiscardHandler) // no logging cost in the numbers
	x = startNode(b, shortName("bx"), testCookie, Options{EPMDPort: port, Logger: quiet})
	y = startNode(b, shortName("by"), testCookie, Options{EPMDPort: port, Logger: quiet})
	if connect {
		if err := x.Connect(testCtx(b, 5*time.Second), y.Self()); err != nil {
			b.Fatal(err)
		}
	}
	return x, y
}

// BenchmarkPingGoGo: one is_auth round trip over an established in-process
// link.
func BenchmarkPingGoGo(b *testing.B) {
	x, y := benchPair(b, true)
	ctx := context.Background()
	peer := y.Self()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := pingRTT(x, ctx, peer); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPingParallel: 64 concurrent callers pinging over one link.
func BenchmarkPingParallel(b *testing.B) {
	x, y := benchPair(b, true)
	ctx := context.Background()
	peer := y.Self()
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := pingRTT(x, ctx, peer); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkConnect: a fresh connection (EPMD lookup, dial, handshake) and
// the first ping on it; the disconnect after each round is not timed.
func BenchmarkConnect(b *testing.B) {
	x, y := benchPair(b, false)
	peer := y.Self()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := x.Connect(ctx, peer); err != nil {
			b.Fatal(err)
		}
		if _, err := pingRTT(x, ctx, peer); err != nil {
			b.Fatal(err)
		}
		cancel()
		b.StopTimer()
		x.Disconnect(peer)
		deadline := time.Now().Add(5 * time.Second)
		for x.ConnectedCount() != 0 || y.ConnectedCount() != 0 {
			if time.Now().After(deadline) {
				b.Fatal("link did not go down")
			}
			time.Sleep(100 * time.Microsecond)
		}
		b.StartTimer()
	}
}
