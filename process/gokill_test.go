package process_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/process"
)

const (
	helperEnv     = "DISTRIBUTE_PROCESS_HELPER" // "1" in the helper process only
	helperNameEnv = "DISTRIBUTE_PROCESS_NAME"
	helperEPMDEnv = "DISTRIBUTE_PROCESS_EPMD"
)

// TestProcessHelper is not a test: TestGoNodeKilled runs the test binary again with
// -test.run=^TestProcessHelper$ and helperEnv=1, and this runs a Go node in that second OS
// process, with a process registered as victim that answers {From, hello} with {pid, Self}. It
// prints "READY" and runs until it is killed or its standard input closes.
func TestProcessHelper(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestGoNodeKilled")
	}
	port, err := strconv.Atoi(os.Getenv(helperEPMDEnv))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	n, err := process.Start(ctx, os.Getenv(helperNameEnv), testCookie,
		&process.Options{Node: nodeOpts(port)})
	require.NoError(t, err)
	defer n.Stop()
	victim := n.Spawn()
	require.NoError(t, victim.Register("victim"))
	go func() {
		for {
			m, err := victim.Receive(context.Background())
			if err != nil {
				return
			}
			if tt := tuple(m); len(tt) == 2 && tt[1] == etf.Atom("hello") {
				_ = victim.Send(tt[0], etf.Tuple{etf.Atom("pid"), victim.Pid()})
			}
		}
	}()
	fmt.Println("READY")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
}

// TestGoNodeKilled: kill -9 of the OS process that runs a Go node: the BEAM processes linked
// to and monitoring its processes get noconnection, monitor_node gets nodedown.
func TestGoNodeKilled(t *testing.T) { erltest.ForEachRuntime(t, testGoNodeKilled) }

func testGoNodeKilled(t *testing.T, rt *erltest.Runtime) {
	port := erltest.FreePort(t)
	erltest.StartEPMD(t, port)
	goNode := erltest.UniqueName("gohelper") + "@localhost"
	cmd := exec.Command(os.Args[0], "-test.run=^TestProcessHelper$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperNameEnv+"="+goNode, helperEPMDEnv+"="+strconv.Itoa(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	t.Cleanup(func() {
		select {
		case <-exited:
			// Reaped: its pid (the group id) may be another process group's by now.
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		_ = stdin.Close()
		<-exited
	})
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		seen := false
		for sc.Scan() {
			if !seen && strings.HasPrefix(sc.Text(), "READY") {
				seen = true
				ready <- true
			}
		}
		if !seen {
			ready <- false
		}
		_ = cmd.Wait()
		close(exited)
	}()
	select {
	case ok := <-ready:
		require.True(t, ok, "the helper node did not start")
	case <-time.After(2 * wait):
		t.Fatal("the helper node did not start in time")
	}

	erl := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, EPMDPort: port, Cookie: testCookie, Control: true})
	eval := func(expr string) string {
		t.Helper()
		v, err := erl.Eval(expr, 2*wait)
		require.NoError(t, err, expr)
		return v
	}
	g := "'" + goNode + "'"
	require.Equal(t, "pong", eval(`net_adm:ping(`+g+`)`))
	eval(`{victim, ` + g + `} ! {self(), hello}, receive {pid, P} -> put(victim, P), ok after 20000 -> timeout end`)
	eval(`Me = self(), V = get(victim), put(watcher, spawn(fun() -> process_flag(trap_exit, true), link(V), ` +
		`R = monitor(process, V), monitor_node(node(V), true), Me ! watching, ` +
		`Got = [receive M -> M end || _ <- [1, 2, 3]], Me ! {got, R, Got} end)), receive watching -> ok end`)
	// The link is in place on the BEAM side once the Go side has answered something sent after it.
	eval(`{victim, ` + g + `} ! {self(), hello}, receive {pid, _} -> ok after 20000 -> timeout end`)
	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL))
	got := eval(`V = get(victim), N = node(V), receive {got, R, Got} -> ` +
		`lists:sort(Got) =:= lists:sort([{'EXIT', V, noconnection}, {'DOWN', R, process, V, noconnection}, {nodedown, N}]) ` +
		`orelse Got after 20000 -> timeout end`)
	assert.Equal(t, "true", got)
}
