package rpc_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestREADMEShowsTheExample: the README's calls-and-RPC code is example() of example_test.go,
// word for word, so what the README shows is what go test runs.
func TestREADMEShowsTheExample(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	src, err := os.ReadFile("example_test.go")
	require.NoError(t, err)
	_, section, ok := strings.Cut(string(readme), "\n### Calls and RPC, both ways\n")
	require.True(t, ok, "README has the calls section")
	_, block, ok := strings.Cut(section, "```go\n")
	require.True(t, ok)
	block, _, ok = strings.Cut(block, "```")
	require.True(t, ok)
	_, fn, ok := strings.Cut(string(src), "\nfunc example() error {")
	require.True(t, ok)
	assert.Equal(t, "func example() error {"+fn, block)
}
