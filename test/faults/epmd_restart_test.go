package faults

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
)

// TestEPMDRestart kills a real epmd (SIGKILL) under our node (EPMDExternal)
// and starts it again on the same port, three times: each time our node is
// registered again within 3 s, and a new BEAM node pings it pong.
func TestEPMDRestart(t *testing.T) {
	erltest.ForEachRuntimeSerial(t, func(t *testing.T, rt *erltest.Runtime) {
		const (
			rounds = 3
			within = 3 * time.Second
		)
		cookie := newCookie("epmdrestart")
		port := erltest.FreePort(t)
		daemon := rt.StartEPMD(t, port)
		var ev events
		n := startNode(t, shortName("survivor"), cookie, node.Options{
			EPMD: node.EPMDExternal, EPMDPort: port, Logger: debugLogger(&logBuf{}), OnEvent: ev.add,
		})
		alive, _, _ := strings.Cut(n.Self(), "@")
		require.True(t, n.EPMDRegistered())
		rw := report.add(t, "SIGKILL the real epmd under our node (EPMDExternal), restart it on the same port", rounds, "")

		listed := func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			names, err := (&epmd.Client{Port: port}).Names(ctx, "")
			return err == nil && slices.ContainsFunc(names, func(e epmd.NameEntry) bool { return e.Name == alive && e.Port == n.Port() })
		}
		require.True(t, listed(), "our node is listed by epmd")
		var took []string
		for i := range rounds {
			daemon.Kill() // SIGKILL, and reaped
			_, ok := waitFor(5*time.Second, func() bool { return !n.EPMDRegistered() })
			require.True(t, ok, "round %d: our node noticed the epmd is gone", i)

			daemon = rt.StartEPMD(t, port)
			restarted := time.Now()
			_, ok = waitFor(within+2*time.Second, func() bool { return n.EPMDRegistered() && listed() })
			again := time.Since(restarted)
			require.True(t, ok, "round %d: registered again with the restarted epmd", i)
			assert.LessOrEqual(t, again, within, "round %d: registered again within %v", i, within)

			beam := startErl(t, rt, fmt.Sprintf("beam_new%d", i), cookie, port, 0)
			assert.Equal(t, "pong", erlPing(t, beam, n.Self()), "round %d: a new BEAM node pings our node", i)
			assert.Contains(t, n.Nodes(), beam.Node())
			beam.Kill()
			took = append(took, again.Round(time.Millisecond).String())
		}
		assert.Equal(t, rounds, ev.count(node.EventEPMDLost, "", nil), "one registration lost per kill")
		assert.Equal(t, rounds, ev.count(node.EventEPMDRegistered, "", nil), "one registration again per restart")
		report.set(rw, rounds, "registered again "+strings.Join(took, ", ")+" after each restart (limit 3s); a new BEAM node pinged pong each time")
	})
}
