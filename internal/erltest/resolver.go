package erltest

import (
	"context"
	"net"
	"strconv"
	"testing"
)

// LoopbackResolver returns a resolver that sends every DNS query to a UDP
// port on 127.0.0.1 where nothing listens, so host lookups that /etc/hosts
// cannot answer fail at once instead of leaving the machine. Tests of
// unresolvable hosts pass it as node.Options.Resolver.
func LoopbackResolver(t testing.TB) *net.Resolver {
	t.Helper()
	// Reserve a UDP port and free it: queries to it get "connection
	// refused" from the loopback interface.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("erltest: reserving a UDP port: %v", err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
	_ = pc.Close()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}
