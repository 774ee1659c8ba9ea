// Package test holds cross-process interoperability tests against real Erlang/OTP programs
// (erl, epmd, elixir), started through internal/erltest.
package test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
