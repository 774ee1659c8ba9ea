package test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// TestBEAMLargeMessagesReachUs: with FRAGMENTS negotiated, a BEAM node splits
// large messages into 131 69 / 131 70 fragments. A 2 MB is_auth call (the
// binary rides in the request) and a 3 MB message to an unknown name both
// arrive: the call is answered yes, which needs the whole message put back
// together and decoded, and the link stays up for a normal ping afterwards.
func TestBEAMLargeMessagesReachUs(t *testing.T) {
	t.Parallel()
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		epmdPort := erltest.FreePort(t)
		var logs interopLogs
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		n, err := process.Start(ctx, erltest.UniqueName("gofrag")+"@localhost", "frag-cookie", &process.Options{Node: node.Options{
			EPMDPort: epmdPort,
			Logger:   slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		}})
		require.NoError(t, err)
		t.Cleanup(func() { _ = n.Stop() })
		erl := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, Cookie: "frag-cookie", EPMDPort: epmdPort, Control: true})

		target := "'" + n.Self() + "'"
		out, err := erl.Eval(`gen_server:call({net_kernel, `+target+`}, {is_auth, binary:copy(<<7>>, 2000000)}, 20000)`, 25*time.Second)
		require.NoError(t, err, "our node logs:\n%s", logs.String())
		assert.Equal(t, "yes", out)
		out, err = erl.Eval(`{no_such_name, `+target+`} ! {big, binary:copy(<<9>>, 3000000)}, net_adm:ping(`+target+`)`, 25*time.Second)
		require.NoError(t, err)
		assert.Equal(t, "pong", out)
		assert.Equal(t, []string{erl.Node()}, n.Nodes(), "the link never dropped")
		assert.NotContains(t, logs.String(), "link down")
	})
}
