package handshake

import (
	"context"
	"net"
	"testing"
	"time"
)

// BenchmarkHandshake measures one full Initiate+Accept over net.Pipe,
// including the pipe itself and the acceptor's goroutine.
func BenchmarkHandshake(b *testing.B) {
	b.ReportAllocs()
	icfg := &Config{Name: "a@localhost", Cookie: "bench-cookie", Creation: 1, Timeout: 5 * time.Second}
	acfg := &Config{Name: "b@localhost", Cookie: "bench-cookie", Creation: 2, Timeout: 5 * time.Second}
	ctx := context.Background()
	for b.Loop() {
		ic, ac := net.Pipe()
		errc := make(chan error, 1)
		go func() {
			_, err := Accept(ctx, ac, acfg, nil)
			errc <- err
		}()
		_, err := Initiate(ctx, ic, icfg, "b@localhost")
		aerr := <-errc
		_ = ic.Close()
		_ = ac.Close()
		if err != nil || aerr != nil {
			b.Fatalf("initiate: %v; accept: %v", err, aerr)
		}
	}
}

func BenchmarkDigest(b *testing.B) {
	b.ReportAllocs()
	var c uint32
	for b.Loop() {
		c++
		_ = Digest("ABCDEFGHIJKLMNOPQRST", c*2654435761)
	}
}
