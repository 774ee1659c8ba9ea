// Package ergo_test checks interoperability between our node and the other Go implementation of the
// Erlang distribution, github.com/ergo-services/ergo v1.999.224, in one process: handshakes and
// cookies in both directions, the net_kernel is_auth call both ways, and many concurrent calls from
// ergo processes, each tagged with an ergo reference.
//
// The two frame messages differently after the handshake (see bridge), so the message tests run
// twice: directly, asserting how the link breaks, and through a bridge that rewrites the framing,
// asserting everything above it.
//
// One ergo node serves every test (see shared). It listens on 127.0.0.1 only, dials with handshake
// version 6, registers with a private EPMD on a free loopback port (it starts none of its own), and
// runs with anonymous metrics disabled: otherwise ergo sends a UDP packet to an outside host a minute
// after start.
package ergo_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(run{m})
}

// run runs the tests, then stops the shared ergo node before goleak looks for leaks.
type run struct{ m *testing.M }

func (r run) Run() int {
	defer stopShared()
	return r.m.Run()
}
