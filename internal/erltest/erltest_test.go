package erltest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestUniqueName(t *testing.T) {
	seen := map[string]bool{}
	re := regexp.MustCompile(`^[0-9A-Za-z_]+$`)
	for i := 0; i < 1000; i++ {
		n := UniqueName("a-b.c")
		require.False(t, seen[n], "repeated %q", n)
		require.Regexp(t, re, n)
		require.True(t, strings.HasPrefix(n, "abc_"), n)
		seen[n] = true
	}
	assert.True(t, strings.HasPrefix(UniqueName("@@"), "n_"))
}

func TestFreePort(t *testing.T) {
	p := FreePort(t)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	require.NoError(t, err)
	require.NoError(t, ln.Close())
}

// groupGone reports whether no process of the group is left.
func groupGone(pgid int) bool {
	return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}

func TestStartEPMDKilledOnCleanup(t *testing.T) {
	RequireEpmd(t)
	var p *Process
	t.Run("inner", func(t *testing.T) {
		p = StartEPMD(t, 0)
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p.Port()))
		require.NoError(t, err)
		require.NoError(t, c.Close())
	})
	assert.True(t, groupGone(p.Pid()), "cleanup must kill the group")
	_, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p.Port()), time.Second)
	assert.Error(t, err)
}

func TestStartErlAndEval(t *testing.T) { ForEachRuntime(t, testStartErlAndEval) }

func testStartErlAndEval(t *testing.T, rt *Runtime) {
	var node *Process
	cookie := "secret_" + UniqueName("c")
	t.Run("inner", func(t *testing.T) {
		name := UniqueName("erltest")
		node = StartErl(t, ErlOptions{Runtime: rt, Name: name, Cookie: cookie, TickTime: 8,
			Eval: `io:format("ticktime=~p cookie_ok=~p~n", [net_kernel:get_net_ticktime(), erlang:get_cookie() =:= '` + cookie + `'])`})
		assert.Equal(t, name+"@localhost", node.Node())
		assert.NotZero(t, node.Port(), "a private epmd was started")
		assert.Equal(t, cookie, node.Cookie())
		assert.NotContains(t, node.desc, cookie, "cookie redacted from messages")
		assert.Contains(t, node.desc, "<redacted>")

		out := ErlEval(t, ErlOptions{Runtime: rt, EPMDPort: node.Port()}, `{ok, Names} = erl_epmd:names({127,0,0,1}), io:format("~p~n", [Names]).`)
		assert.Contains(t, out, `"`+name+`"`, "the node is registered with its epmd when StartErl returns")

		require.Eventually(t, func() bool { return strings.Contains(node.Stdout(), "ticktime=8 cookie_ok=true") },
			10*time.Second, 10*time.Millisecond, node.Output())
		require.NoError(t, node.Signal(syscall.SIGSTOP))
		require.NoError(t, node.Signal(syscall.SIGCONT))
		select {
		case <-node.Done():
			t.Fatal("node exited early")
		default:
		}
	})
	<-node.Done()
	assert.Error(t, node.Err(), "killed by cleanup")
	assert.True(t, groupGone(node.Pid()), "erl and its helpers are gone")
	assert.ErrorIs(t, node.Signal(syscall.SIGTERM), os.ErrProcessDone)
}

func TestErlEvalLongNames(t *testing.T) {
	RequireErl(t)
	out := ErlEval(t, ErlOptions{Name: UniqueName("eval"), LongNames: true}, `io:format("~s~n", [node()])`)
	assert.Regexp(t, `^eval_\w+@127\.0\.0\.1\n$`, out)
}

func TestControlEvalAndWaitLine(t *testing.T) { ForEachRuntime(t, testControlEvalAndWaitLine) }

func testControlEvalAndWaitLine(t *testing.T, rt *Runtime) {
	cookie := "secret_" + UniqueName("c")
	node := StartErl(t, ErlOptions{Runtime: rt, Cookie: cookie, Control: true,
		Eval: `io:format("before-control~n")`})

	v, err := node.Eval("1 + 1, [a, {b, \"xy\"}]", 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, `[a,{b,"xy"}]`, v)
	v, err = node.Eval("node().", 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, node.Node(), v, "~p quotes atoms only when needed")
	v, err = node.Eval("lists:seq(1, 60)", 10*time.Second)
	require.NoError(t, err)
	assert.NotContains(t, v, "\n", "one line")
	assert.True(t, strings.HasSuffix(v, ",60]"), v)

	v, err = node.Eval("erlang:get_cookie()", 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, "<redacted>", v)

	_, err = node.Eval("no_such_module:f()", 10*time.Second)
	var ee *EvalError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "error:undef", ee.Exception)

	line, err := node.WaitLine("before-", time.Second)
	require.NoError(t, err)
	assert.Equal(t, "before-control", line)
	_, err = node.WaitLine("never-printed", 100*time.Millisecond)
	assert.Error(t, err)

	// Evals from several goroutines get their own answers.
	errs := make(chan error, 4)
	for i := range 4 {
		go func() {
			v, err := node.Eval("timer:sleep(20), "+strconv.Itoa(i*i), 10*time.Second)
			if err == nil && v != strconv.Itoa(i*i) {
				err = errors.New("got " + v)
			}
			errs <- err
		}()
	}
	for range 4 {
		assert.NoError(t, <-errs)
	}

	node.Kill()
	_, err = node.Eval("1", time.Second)
	assert.Error(t, err, "a dead node answers nothing")

	// A node that ends during an Eval: the error says how it ended.
	halting := StartErl(t, ErlOptions{Runtime: rt, Control: true})
	_, err = halting.Eval("erlang:halt(3)", 10*time.Second)
	assert.ErrorContains(t, err, "the node exited (exit status 3) before answering")

	plain := StartErl(t, ErlOptions{Runtime: rt})
	_, err = plain.Eval("1", time.Second)
	assert.Error(t, err, "no control pipe")
}

func TestElixirEval(t *testing.T) { ForEachRuntime(t, testElixirEval) }

func testElixirEval(t *testing.T, rt *Runtime) {
	out := ElixirEval(t, ErlOptions{Runtime: rt}, `IO.puts(Node.self())`)
	assert.Equal(t, "nonode@nohost\n", out)
	out = ElixirEval(t, ErlOptions{Runtime: rt}, `IO.puts(System.version())`)
	assert.Equal(t, rt.Elixir+"\n", out, "Runtime.Elixir is the elixir that runs")

	name := UniqueName("ex")
	cookie := "secret_" + UniqueName("c")
	out = ElixirEval(t, ErlOptions{Runtime: rt, Name: name, Cookie: cookie},
		`IO.puts(Node.self()); IO.puts(Node.get_cookie() == :"`+cookie+`")`)
	assert.Equal(t, name+"@localhost\ntrue\n", out)
	out = ElixirEval(t, ErlOptions{Runtime: rt, Name: name, LongNames: true, TickTime: 7},
		`IO.puts(Node.self()); IO.puts(:net_kernel.get_net_ticktime())`)
	assert.Equal(t, name+"@127.0.0.1\n7\n", out)
}

// TestRuntimeVersions checks that each runtime's fields are what its erl says, that a file from TempDir
// is readable inside it and that environment variables reach programs started in it.
func TestRuntimeVersions(t *testing.T) {
	ForEachRuntime(t, func(t *testing.T, rt *Runtime) {
		assert.Equal(t, "OTP-"+rt.Release, rt.Name)
		assert.True(t, strings.HasPrefix(rt.Version, rt.Release+"."), "%s is release %s", rt.Version, rt.Release)
		path := rt.WriteFile(t, "hello.txt", []byte("hello from the host"), 0o600)
		out := ErlEval(t, ErlOptions{Runtime: rt, Env: []string{"ERLTEST_PROBE=seen"}},
			`{ok, B} = file:read_file("`+path+`"), {ok, [[V]]} = init:get_argument(root), `+
				`io:format("~s ~s ~s ~s ~s~n", [erlang:system_info(otp_release), erlang:system_info(version), B, os:getenv("ERLTEST_PROBE"), V])`)
		assert.Equal(t, rt.Release+" "+rt.ERTS+" hello from the host seen "+rt.erlRoot+"\n", out)

		// Command with cmd.Env, and the kill of its context reaching the program.
		ctx, cancel := context.WithCancel(context.Background())
		cmd := rt.Command(ctx, "erl", "-noshell", "-eval", `io:format("~s~n", [os:getenv("ERL_EPMD_PORT")]), receive after infinity -> ok end`)
		cmd.Env = append(os.Environ(), "ERL_EPMD_PORT=4999")
		var buf syncBuffer
		cmd.Stdout = &buf
		require.NoError(t, cmd.Start())
		require.Eventually(t, func() bool { return buf.String() == "4999\n" }, 30*time.Second, 10*time.Millisecond, "output: %q", buf.String())
		cancel()
		_ = cmd.Wait()
		assert.Eventually(t, func() bool { return groupGone(cmd.Process.Pid) }, 5*time.Second, 10*time.Millisecond,
			"cancelling the context kills the whole group")
	})
}

func TestRuntimesHostFirst(t *testing.T) {
	all := allRuntimes()
	require.Len(t, all, 3)
	assert.Same(t, Host(), all[0])
	assert.Empty(t, all[0].Root)
	for _, rt := range all[1:] {
		assert.NotEmpty(t, rt.Root)
	}
	for _, rt := range Runtimes(t) {
		assert.NoError(t, rt.Err())
		t.Log(rt)
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestCommandErlCall runs each runtime's erl_call against a node of the same runtime: the program is
// found inside the runtime and ERL_EPMD_PORT reaches it.
func TestCommandErlCall(t *testing.T) {
	ForEachRuntime(t, func(t *testing.T, rt *Runtime) {
		rt.RequireProgram(t, "erl_call")
		n := StartErl(t, ErlOptions{Runtime: rt})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := rt.Command(ctx, "erl_call", "-c", n.Cookie(), "-sname", n.Node(), "-a", "erlang node []")
		cmd.Env = append(os.Environ(), "ERL_EPMD_PORT="+strconv.Itoa(n.Port()))
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "erl_call: %s", out)
		assert.Equal(t, n.Node(), strings.Trim(strings.TrimSpace(string(out)), "'"))
	})
}

func TestMissingChrootSaysMakeOtp(t *testing.T) {
	rt := loadChroot(t.TempDir(), "trixie")
	require.Error(t, rt.Err())
	assert.Contains(t, rt.Err().Error(), "`make otp` builds it")
	assert.Equal(t, "OTP-trixie", rt.Name)
	assert.False(t, rt.HasProgram("erl"))
}

func TestRuntimesEnvSelects(t *testing.T) {
	host := &Runtime{Name: "OTP-25"}
	trixie := &Runtime{Name: "OTP-27", Root: "/x", suite: "trixie"}
	t.Setenv(RuntimesEnv, "")
	assert.True(t, host.selected())
	assert.True(t, trixie.selected())
	t.Setenv(RuntimesEnv, "otp-27")
	assert.False(t, host.selected())
	assert.True(t, trixie.selected(), "names match case-insensitively")
	t.Setenv(RuntimesEnv, "host, trixie")
	assert.True(t, host.selected())
	assert.True(t, trixie.selected(), "the Debian suite names a chroot too")
	t.Setenv(RuntimesEnv, "OTP-29")
	assert.False(t, host.selected())
	assert.False(t, trixie.selected())
}
