package node

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// A copy of this test binary is re-run as an unprivileged user by
	// TestStartSystemError; it only tries one Start and exits.
	if os.Getenv(eaccesChildEnv) != "" {
		os.Exit(eaccesChild())
	}
	// An illegal attempt transition is a bug: crash the test binary, whichever goroutine
	// finds it.
	onIllegalTransition = func(_ *Node, what string) { panic("connection attempt: illegal transition " + what) }
	goleak.VerifyTestMain(m)
}
