package test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/internal/logbuf"
)

var buildEcho = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "distribute-echo-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "echo")
	out, err := exec.Command("go", "build", "-o", bin, "../examples/echo").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./examples/echo: %w\n%s", err, out)
	}
	return bin, nil
})

// TestREADMEWalkthrough runs the README's processes walkthrough as a new user would: the Go
// program examples/echo answers a message from erl, and monitors an Elixir process and sees it
// die, on every runtime.
func TestREADMEWalkthrough(t *testing.T) {
	bin, err := buildEcho()
	require.NoError(t, err)
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		ep := erltest.FreePort(t)
		rt.StartEPMD(t, ep)
		cookie := newInteropCookie()
		alive := erltest.UniqueName("gopher")
		goNode := alive + "@localhost"
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, "-sname", goNode, "-cookie", cookie, "-epmd-port", strconv.Itoa(ep))
		var out logbuf.Buffer // goroutine-safe: the child writes, the test reads
		cmd.Stdout, cmd.Stderr = &out, &out
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { cancel(); _ = cmd.Wait() })
		waitOutput := func(what string) string {
			t.Helper()
			var line string
			require.Eventually(t, func() bool {
				for l := range strings.Lines(out.String()) {
					if strings.Contains(l, what) {
						line = strings.TrimSpace(l)
						return true
					}
				}
				return false
			}, 20*time.Second, 10*time.Millisecond, "no %q in the program's output:\n%s", what, out.String())
			return line
		}
		waitOutput("ready; process echo is <")

		// erl: {echo, Node} ! {self(), hello}, and the answer comes back.
		got := erltest.ErlEval(t, erltest.ErlOptions{Runtime: rt, Name: erltest.UniqueName("e"), Cookie: cookie, EPMDPort: ep},
			`{echo, '`+goNode+`'} ! {self(), hello}, receive Reply -> io:format("~p~n", [Reply]) after 5000 -> io:format("timeout~n") end`)
		assert.Equal(t, "{echo,hello}\n", got)
		waitOutput("got {<")

		// Elixir: a process the Go program monitors dies with :boom; the program sees the DOWN.
		if rt.Elixir == "" {
			t.Skipf("%s has no Elixir", rt.Name)
		}
		erltest.ElixirEval(t, erltest.ErlOptions{Runtime: rt, Name: erltest.UniqueName("ex"), Cookie: cookie, EPMDPort: ep}, `
n = :"`+goNode+`"
true = Node.connect(n)
pid = spawn(fn -> receive do :never -> :ok end end)
send({:echo, n}, {:monitor, pid})
wait = fn wait -> case Process.info(pid, :monitored_by) do {:monitored_by, [_ | _]} -> :ok; _ -> :timer.sleep(10); wait.(wait) end end
wait.(wait)
Process.exit(pid, :boom)
:pong = Node.ping(n)`)
		down := waitOutput("got {'DOWN',")
		assert.Contains(t, down, ",process,<")
		assert.True(t, strings.HasSuffix(down, ",boom}"), down)
	})
}
