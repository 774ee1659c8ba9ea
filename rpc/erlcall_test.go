package rpc_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/internal/erltest"
)

// TestErlCall: the real erl_call -a (and -fetch_stdout) against our node, through rex's C-node
// form.
func TestErlCall(t *testing.T) {
	forEachRuntime(t, func(t *testing.T, rt *runtime) {
		rt.RequireProgram(t, "erl_call")
		port := erltest.FreePort(t)
		erltest.StartEPMD(t, port)
		g, alive := startGo(t, port, testRegistry())
		run := func(args ...string) (string, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := rt.Command(ctx, "erl_call", append([]string{"-sname", alive + "@localhost", "-c", testCookie, "-timeout", "20"}, args...)...)
			cmd.Env = append(os.Environ(), "ERL_EPMD_PORT="+strconv.Itoa(port))
			out, err := cmd.CombinedOutput()
			return strings.ReplaceAll(string(out), testCookie, "<redacted>"), err
		}
		out, err := run("-a", "erlang node []")
		require.NoError(t, err, out)
		assert.Equal(t, g.Self(), strings.TrimSpace(out))
		out, err = run("-a", "gotest add [1,2]")
		require.NoError(t, err, out)
		assert.Equal(t, "3", strings.TrimSpace(out))
		out, err = run("-a", "nomod nofun [x]")
		require.NoError(t, err, out)
		assert.Equal(t, "{badrpc, {'EXIT', {undef, [{nomod, nofun, [x], []}]}}}", strings.TrimSpace(out))
		out, err = run("-fetch_stdout", "-a", `gotest print ["printed by go "]`)
		require.NoError(t, err, out)
		assert.Equal(t, "printed by go printed", strings.TrimSpace(out))
	})
}
