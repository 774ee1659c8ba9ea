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
	goleak.VerifyTestMain(m)
}
