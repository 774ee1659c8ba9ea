package process_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/distribute-go/distribute/internal/erltest"
)

// TestNetKernelAnswers: the built-in net_kernel answers BEAM's calls to it as BEAM's
// net_kernel does, and sys:get_state raises at once instead of timing out.
func TestNetKernelAnswers(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		e := setup(t, rt, nil, erltest.ErlOptions{})
		g := e.goNode()
		assert.Equal(t, "yes", e.eval(t, `gen_server:call({net_kernel, %s}, {is_auth, node()}, 5000)`, g))
		assert.Equal(t, "false", e.eval(t, `gen_server:call({net_kernel, %s}, longnames, 5000)`, g))
		assert.Equal(t, g, "'"+e.eval(t, `gen_server:call({net_kernel, %s}, nodename, 5000)`, g)+"'")
		assert.Equal(t, "60", e.eval(t, `gen_server:call({net_kernel, %s}, ticktime, 5000)`, g))
		// connect to a node that does not exist: false, once the attempt failed.
		assert.Equal(t, "false", e.eval(t, `gen_server:call({net_kernel, %s}, {connect, normal, 'nobody@localhost'}, 15000)`, g))
		start := time.Now()
		out := e.eval(t, `try sys:get_state({net_kernel, %s}, 5000) catch error:R -> {raised, R} end`, g)
		assert.Equal(t, "{raised,{unknown_system_msg,get_state}}", out)
		assert.Less(t, time.Since(start), 4*time.Second, "answered, not timed out")
		// An unknown call gets no answer, as from BEAM's net_kernel.
		assert.Equal(t, "timeout", e.eval(t, `try gen_server:call({net_kernel, %s}, what, 300) catch exit:{timeout, _} -> timeout end`, g))
	})
}
