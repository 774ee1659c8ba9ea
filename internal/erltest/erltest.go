// Package erltest starts real Erlang/OTP programs (epmd, erl, elixir, erl_call, escript) for
// cross-process tests, in one of several OTP runtimes, and cleans them up. A long-running erl node
// started with ErlOptions.Control can be driven from the test with Process.Eval, which sends it Erlang
// expressions on its standard input.
//
// A Runtime is one OTP installation: the host's (Host), or a Debian chroot built by `make otp`
// (scripts/otp.sh) that shares the host's loopback: OTP 27 (trixie) and the newest OTP (sid).
// ForEachRuntime runs a test once per runtime as subtests named by release ("OTP-27"); ErlOptions.Runtime
// and Runtime.StartEPMD choose where a program runs; Runtime.TempDir gives a directory both sides see at
// the same path (for cookie files, code, certificates). DISTRIBUTE_RUNTIMES limits the runtimes.
//
// Every process runs in its own process group; t.Cleanup kills the whole group, also when the test fails,
// so helpers such as erl_child_setup and inet_gethost go with it, inside a chroot too. Nodes never start
// an epmd of their own (-start_epmd false) and never read ~/.erlang.cookie. Only loopback addresses are
// used. Ports, names and process groups come from internal/procs, which needs no testing.TB.
//
// Tests that need a program call RequireErl, RequireElixir, RequireEpmd or Runtime.RequireProgram first:
// the test is skipped when the program or runtime is missing, and fails instead when the environment
// variable CI is "true".
package erltest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/distribute-go/distribute/internal/procs"
)

const (
	defaultStartTimeout = 30 * time.Second
	killTimeout         = 10 * time.Second
	maxCapture          = 4 << 20 // bytes of stdout (and of stderr) kept per process
	readyMarker         = "ERLTEST-READY"
	resultMarker        = "ERLTEST-RESULT-"
)

var (
	erlPath    = sync.OnceValues(func() (string, error) { return exec.LookPath("erl") })
	elixirPath = sync.OnceValues(func() (string, error) { return exec.LookPath("elixir") })
	epmdPath   = sync.OnceValues(findEpmd)
)

// findEpmd looks in PATH, then next to erl, then in the usual OTP installation directories.
func findEpmd() (string, error) { return procs.FindEpmd() }

// RequireErl skips the test if `erl` is not installed (fails it when CI=true).
func RequireErl(t testing.TB) {
	t.Helper()
	if _, err := erlPath(); err != nil {
		missing(t, "erl", err)
	}
}

// RequireElixir skips the test if `elixir` is not installed (fails it when CI=true).
func RequireElixir(t testing.TB) {
	t.Helper()
	if _, err := elixirPath(); err != nil {
		missing(t, "elixir", err)
	}
}

// RequireEpmd skips the test if the `epmd` binary cannot be found (fails it when CI=true).
func RequireEpmd(t testing.TB) {
	t.Helper()
	if _, err := epmdPath(); err != nil {
		missing(t, "epmd", err)
	}
}

// EpmdPath returns the path of the real epmd binary (call RequireEpmd first).
func EpmdPath(t testing.TB) string {
	t.Helper()
	RequireEpmd(t)
	p, _ := epmdPath()
	return p
}

func missing(t testing.TB, what string, err error) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required when CI=true: %v", what, err)
	}
	t.Skipf("%s not available: %v", what, err)
}

// Port returns a TCP port free on every interface a moment ago and given to no other caller in this
// process, from outside the kernel's ephemeral range (procs.Port).
func Port() (int, error) { return procs.Port() }

// FreePort is Port for tests: it fails the test when no port is free.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := procs.Port()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// UniqueName returns an alive part (node name before '@') unique to this process and call, made of
// [0-9A-Za-z_] only: prefix (other characters dropped; "n" if none remain), the pid, a counter and
// random hex (procs.UniqueName).
func UniqueName(prefix string) string { return procs.UniqueName(prefix) }

// Process is a program started by this package. Its whole process group is killed on test cleanup.
type Process struct {
	t      testing.TB
	rt     *Runtime
	desc   string // command line for messages, secrets redacted
	proc   *procs.Proc
	stdout *capture
	stderr *capture
	secret string // the cookie, if any
	node   string
	port   int // EPMD port
	done   <-chan struct{}

	stdin  io.WriteCloser // the control pipe of a node started with ErlOptions.Control
	evalMu sync.Mutex     // one Eval at a time
	evalN  int            // Evals sent so far
}

// Runtime returns the runtime the process runs in.
func (p *Process) Runtime() *Runtime { return p.rt }

// Pid returns the process id, which is also the process group id.
func (p *Process) Pid() int { return p.proc.Pid() }

// Node returns the node name the erl node reported (node()), or "" for other processes.
func (p *Process) Node() string { return p.node }

// Port returns the EPMD port: the one an epmd listens on, or the one an erl node registered with.
func (p *Process) Port() int { return p.port }

// Cookie returns the erl node's cookie (useful when ErlOptions.Cookie was left empty).
func (p *Process) Cookie() string { return p.secret }

// Signal sends sig to the process group (e.g. syscall.SIGSTOP to freeze a node, SIGCONT to resume it).
// For SIGSTOP it returns once every thread of the process is stopped (where /proc tells): the kernel
// delivers the stop asynchronously, and a BEAM scheduler thread still running on another core can answer
// a ping a moment after kill(2) returned.
func (p *Process) Signal(sig syscall.Signal) error {
	err := p.proc.Signal(sig)
	if err == nil && sig == syscall.SIGSTOP {
		waitStopped(p.Pid(), 5*time.Second)
	}
	return err
}

// waitStopped waits up to within until every thread of pid is in state T (stopped) per
// /proc/PID/task/*/stat; it returns at once where /proc is missing.
func waitStopped(pid int, within time.Duration) {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		stats, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
		if len(stats) == 0 {
			return
		}
		stopped := true
		for _, f := range stats {
			b, err := os.ReadFile(f)
			if err != nil {
				continue // thread gone
			}
			// pid (comm) S ...: the state follows the last ')'.
			i := bytes.LastIndexByte(b, ')')
			if i < 0 || i+2 >= len(b) || (b[i+2] != 'T' && b[i+2] != 't') {
				stopped = false
				break
			}
		}
		if stopped {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// Kill kills the process group with SIGKILL and waits for the process to be reaped. It is idempotent and
// runs on test cleanup anyway.
func (p *Process) Kill() {
	if !p.proc.Kill(killTimeout) {
		p.t.Errorf("erltest: %s (pid %d) not reaped %v after SIGKILL", p.desc, p.Pid(), killTimeout)
	}
}

// Done returns a channel closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err returns the exit error (nil for status 0) once Done is closed, else nil.
func (p *Process) Err() error { return p.proc.Err() }

// Stdout returns the standard output so far (secrets redacted).
func (p *Process) Stdout() string { return p.redact(p.stdout.String()) }

// Output returns standard output and standard error so far, for failure messages (secrets redacted).
func (p *Process) Output() string {
	return p.redact("stdout:\n" + p.stdout.String() + "\nstderr:\n" + p.stderr.String())
}

func (p *Process) redact(s string) string {
	if p.secret == "" {
		return s
	}
	return strings.ReplaceAll(s, p.secret, "<redacted>")
}

// WaitLine waits up to timeout for a complete line of standard output that starts with prefix and
// returns it without its newline (secrets redacted). The first such line counts, however old.
func (p *Process) WaitLine(prefix string, timeout time.Duration) (string, error) {
	line, err := p.stdout.waitLine(prefix, p.done, timeout)
	return p.redact(line), err
}

// EvalError is an exception raised by an expression given to Process.Eval.
type EvalError struct {
	Expr      string // the expression
	Exception string // Class:Reason, as erl prints it
}

func (e *EvalError) Error() string { return "erltest: " + e.Expr + " raised " + e.Exception }

// Eval evaluates expr (Erlang expressions separated by commas, on one line; a final '.' is optional)
// on a node started with ErlOptions.Control, and returns the value printed on one line with ~0tp
// (secrets redacted). An exception in expr is an *EvalError; the node not answering within timeout or
// exiting are errors too. Eval may be called from any goroutine; calls run one at a time, in the erl
// process that ran -eval, so an expression that blocks holds up later ones.
func (p *Process) Eval(expr string, timeout time.Duration) (string, error) {
	if p.stdin == nil {
		return "", errors.New("erltest: Eval needs a node started with ErlOptions.Control")
	}
	expr = strings.TrimSuffix(strings.TrimSpace(strings.ReplaceAll(expr, "\n", " ")), ".")
	p.evalMu.Lock()
	defer p.evalMu.Unlock()
	p.evalN++
	prefix := resultMarker + strconv.Itoa(p.evalN) + " "
	if _, err := io.WriteString(p.stdin, expr+".\n"); err != nil {
		return "", fmt.Errorf("erltest: sending %s: %w", p.redact(expr), err)
	}
	line, err := p.stdout.waitLine(prefix, p.done, timeout)
	if err != nil {
		select {
		case <-p.done:
			// Say how it ended: "signal: killed" is not the node halting itself.
			status := "exit status 0"
			if perr := p.proc.Err(); perr != nil {
				status = perr.Error()
			}
			return "", fmt.Errorf("erltest: evaluating %s: the node exited (%s) before answering", p.redact(expr), status)
		default:
		}
		return "", fmt.Errorf("erltest: evaluating %s: %w", p.redact(expr), err)
	}
	res := p.redact(strings.TrimPrefix(line, prefix))
	if v, ok := strings.CutPrefix(res, "ok "); ok {
		return v, nil
	}
	return "", &EvalError{Expr: p.redact(expr), Exception: strings.TrimPrefix(res, "error ")}
}

// controlLoop is the -eval of a node started with ErlOptions.Control: it reads one expression
// sequence per line from standard input, evaluates it and prints the numbered result on one line.
// It halts the node when standard input closes.
const controlLoop = `(fun Loop(N) -> case io:get_line("") of eof -> erlang:halt(0); {error, _} -> erlang:halt(0); ` +
	`Line -> R = try {ok, Toks, _} = erl_scan:string(Line), {ok, Exprs} = erl_parse:parse_exprs(Toks), ` +
	`{value, V, _} = erl_eval:exprs(Exprs, []), {ok, V} catch C:E -> {error, {C, E}} end, ` +
	`case R of {ok, Val} -> io:format("` + resultMarker + `~b ok ~0tp~n", [N, Val]); ` +
	`{error, {Cl, Er}} -> io:format("` + resultMarker + `~b error ~0tp:~0tp~n", [N, Cl, Er]) end, ` +
	`Loop(N + 1) end end)(1)`

// start runs path with args in its own process group, with env added to this process's environment.
// secret (a cookie) is redacted from every message. With control, the process gets a pipe as its
// standard input (kept in p.stdin); otherwise standard input is /dev/null.
func start(t testing.TB, rt *Runtime, prog string, args, env []string, secret string, control bool) *Process {
	t.Helper()
	cmd := rt.command(context.Background(), env, prog, args) // killed by Kill, not by a context
	p := &Process{t: t, rt: rt, stdout: newCapture(), stderr: newCapture(), secret: secret}
	p.desc = p.redact(strings.Join(append([]string{prog}, args...), " "))
	if rt.Root != "" {
		p.desc = rt.Name + ": " + p.desc
	}
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	proc, err := procs.Start(cmd, control)
	if err != nil {
		t.Fatalf("erltest: starting %s: %v", p.desc, err)
	}
	p.proc, p.done, p.stdin = proc, proc.Done(), proc.Stdin()
	t.Cleanup(p.Kill)
	return p
}

// StartEPMD runs the real `epmd -port port` (0 = a free port) on loopback until the test ends, and waits
// until it accepts connections. Port returns the port.
func StartEPMD(t testing.TB, port int) *Process {
	t.Helper()
	return startEPMD(t, Host(), port)
}

func startEPMD(t testing.TB, rt *Runtime, port int) *Process {
	t.Helper()
	if rt.IsHost() {
		RequireEpmd(t)
	} else {
		rt.RequireProgram(t, "epmd")
	}
	if port == 0 {
		port = FreePort(t)
	}
	ps := strconv.Itoa(port)
	// -address 127.0.0.1: epmd always adds the loopback addresses, so it listens on 127.0.0.1 and ::1 only.
	p := start(t, rt, "epmd", []string{"-port", ps, "-address", "127.0.0.1"}, []string{"ERL_EPMD_PORT=" + ps}, "", false)
	p.port = port
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", ps), time.Second)
		if err == nil {
			_ = c.Close()
			break
		}
		select {
		case <-p.done:
			t.Fatalf("erltest: %s exited: %v\n%s", p.desc, p.Err(), p.Output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Kill()
			t.Fatalf("erltest: %s not accepting connections after 10 s\n%s", p.desc, p.Output())
		}
	}
	select {
	case <-p.done: // port taken by someone else: that epmd answered, ours quit
		t.Fatalf("erltest: %s exited: %v\n%s", p.desc, p.Err(), p.Output())
	default:
	}
	return p
}

// ErlOptions describes an erl node.
type ErlOptions struct {
	// Name is the node name, "alive" or "alive@host". "" means UniqueName("erl") for StartErl and no
	// distribution for ErlEval. Without a host, short names get "@localhost", long names "@127.0.0.1".
	Name      string
	LongNames bool   // -name instead of -sname
	Cookie    string // -setcookie; "" means a random cookie. Redacted from all messages.
	// EPMDPort is the EPMD the node uses (ERL_EPMD_PORT). 0 means: a private real epmd is started
	// (StartEPMD) for a distributed node; a non-distributed ErlEval then leaves ERL_EPMD_PORT unset.
	EPMDPort int
	Eval     string        // expressions run once the node is up (-eval), e.g. a receive loop
	TickTime int           // -kernel net_ticktime, in seconds; 0 means OTP's default (60)
	Extra    []string      // more erl arguments, appended
	Env      []string      // more environment variables, "KEY=value"
	Timeout  time.Duration // bound for start-up (StartErl) or the whole run (ErlEval); 0 means 30 s
	// Control (StartErl only) makes the node evaluate expressions that Process.Eval sends on its
	// standard input. The control loop runs after Eval, so Eval must return.
	Control bool
	// Runtime is the OTP installation the program runs in (see ForEachRuntime); nil means the host's.
	// A private epmd started for the node runs there too.
	Runtime *Runtime
}

// FullName returns the node name StartErl will use for o.Name ("" stays "").
func (o ErlOptions) FullName() string {
	if o.Name == "" || strings.Contains(o.Name, "@") {
		return o.Name
	}
	if o.LongNames {
		return o.Name + "@127.0.0.1"
	}
	return o.Name + "@localhost"
}

// args builds erl's arguments and environment, starting a private epmd if needed.
func (o *ErlOptions) args(t testing.TB, distributed bool) (args, env []string) {
	t.Helper()
	args = []string{"-noshell", "-start_epmd", "false"}
	env = append([]string{"ERL_CRASH_DUMP_SECONDS=0"}, o.Env...)
	if distributed {
		if o.EPMDPort == 0 {
			o.EPMDPort = FreePort(t)
			startEPMD(t, o.Runtime.orHost(), o.EPMDPort)
		}
		if o.Cookie == "" {
			var b [16]byte
			_, _ = rand.Read(b[:])
			o.Cookie = "C" + hex.EncodeToString(b[:])
		}
		flag := "-sname"
		if o.LongNames {
			flag = "-name"
		}
		args = append(args, flag, o.FullName(), "-setcookie", o.Cookie)
		if o.TickTime > 0 {
			args = append(args, "-kernel", "net_ticktime", strconv.Itoa(o.TickTime))
		}
	}
	if o.EPMDPort != 0 {
		env = append(env, "ERL_EPMD_PORT="+strconv.Itoa(o.EPMDPort))
	}
	return append(args, o.Extra...), env
}

func (o ErlOptions) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return defaultStartTimeout
}

// StartErl starts a distributed erl node that runs until the test ends (or Kill). It returns once the
// node is up and registered with its EPMD: the node prints a ready line from its first -eval, which runs
// only after net_kernel has registered. opts.Eval runs after that line. Start-up is bounded by
// opts.Timeout; failure to come up fails the test with the node's output.
func StartErl(t testing.TB, opts ErlOptions) *Process {
	t.Helper()
	rt := opts.Runtime.orHost()
	rt.RequireProgram(t, "erl")
	if opts.Name == "" {
		opts.Name = UniqueName("erl")
	}
	args, env := opts.args(t, true)
	args = append(args, "-eval", fmt.Sprintf(`io:format("~s ~s~n", [%q, node()])`, readyMarker))
	if opts.Eval != "" {
		args = append(args, "-eval", opts.Eval)
	}
	if opts.Control {
		args = append(args, "-eval", controlLoop)
	}
	p := start(t, rt, "erl", args, env, opts.Cookie, opts.Control)
	p.port = opts.EPMDPort
	line, err := p.stdout.waitLine(readyMarker+" ", p.done, opts.timeout())
	if err != nil {
		p.Kill()
		t.Fatalf("erltest: %s: %v\n%s", p.desc, err, p.Output())
	}
	p.node = strings.TrimSpace(strings.TrimPrefix(line, readyMarker+" "))
	return p
}

// ErlEval runs expr (Erlang expressions separated by commas; a final '.' is optional) on a one-shot erl
// that halts afterwards, and returns its standard output. With opts.Name "" the node is not distributed.
// The run is bounded by opts.Timeout; a crash in expr, a non-zero exit or the timeout fail the test.
func ErlEval(t testing.TB, opts ErlOptions, expr string) string {
	t.Helper()
	rt := opts.Runtime.orHost()
	rt.RequireProgram(t, "erl")
	args, env := opts.args(t, opts.Name != "")
	expr = strings.TrimSuffix(strings.TrimSpace(expr), ".")
	args = append(args, "-eval", `try begin `+expr+` end of _ -> erlang:halt(0) catch C:R:S -> `+
		`io:format(standard_error, "erltest: eval failed: ~p~n", [{C, R, S}]), erlang:halt(1) end`)
	return wait(t, opts, start(t, rt, "erl", args, env, opts.Cookie, false))
}

// ElixirEval runs code (Elixir) with a one-shot `elixir -e` and returns its standard output, like
// ErlEval: opts.Name "" means no distribution; otherwise the node runs with --sname (--name with
// opts.LongNames) and --cookie, on opts.EPMDPort (0 starts a private epmd). opts.Eval and Control are
// not used; TickTime and Extra reach erl through --erl, joined with spaces (so no argument may contain
// one). The run is bounded by opts.Timeout; an exception, a non-zero exit or the timeout fail the test.
func ElixirEval(t testing.TB, opts ErlOptions, code string) string {
	t.Helper()
	rt := opts.Runtime.orHost()
	rt.RequireProgram(t, "erl")
	rt.RequireProgram(t, "elixir")
	erlArgs, env := opts.args(t, opts.Name != "")
	var args []string
	// Keep the node flags for elixir's own options; everything else goes to erl through --erl.
	var rest []string
	for i := 0; i < len(erlArgs); i++ {
		switch erlArgs[i] {
		case "-sname", "-name", "-setcookie":
			flag := map[string]string{"-sname": "--sname", "-name": "--name", "-setcookie": "--cookie"}[erlArgs[i]]
			args = append(args, flag, erlArgs[i+1])
			i++
		case "-noshell":
		default:
			rest = append(rest, erlArgs[i])
		}
	}
	if len(rest) > 0 {
		args = append(args, "--erl", strings.Join(rest, " "))
	}
	args = append(args, "-e", code)
	return wait(t, opts, start(t, rt, "elixir", args, env, opts.Cookie, false))
}

// wait waits for a one-shot process started for ErlEval or ElixirEval and returns its output.
func wait(t testing.TB, opts ErlOptions, p *Process) string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(opts.timeout()):
		p.Kill()
		t.Fatalf("erltest: %s did not finish within %v\n%s", p.desc, opts.timeout(), p.Output())
	}
	if p.Err() != nil {
		t.Fatalf("erltest: %s: %v\n%s", p.desc, p.Err(), p.Output())
	}
	return p.Stdout()
}

// capture is a goroutine-safe, size-bounded output buffer that wakes waiters on each write.
type capture struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	dropped int
	notify  chan struct{}
}

func newCapture() *capture { return &capture{notify: make(chan struct{}, 1)} }

func (c *capture) Write(p []byte) (int, error) {
	c.mu.Lock()
	room := maxCapture - c.buf.Len()
	if room < len(p) {
		c.dropped += len(p) - max(room, 0)
		c.buf.Write(p[:max(room, 0)])
	} else {
		c.buf.Write(p)
	}
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
	return len(p), nil
}

func (c *capture) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped > 0 {
		return c.buf.String() + fmt.Sprintf("\n[%d more bytes dropped]", c.dropped)
	}
	return c.buf.String()
}

// waitLine waits for a complete line starting with prefix and returns it. It gives up when exited is
// closed (and no such line arrived) or after timeout.
func (c *capture) waitLine(prefix string, exited <-chan struct{}, timeout time.Duration) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		if line, ok := c.findLine(prefix); ok {
			return line, nil
		}
		select {
		case <-c.notify:
		case <-exited:
			// Wait has returned, so all output is in: look once more.
			if line, ok := c.findLine(prefix); ok {
				return line, nil
			}
			return "", errors.New("exited before it was ready")
		case <-timer.C:
			return "", fmt.Errorf("not ready after %v", timeout)
		}
	}
}

// findLine returns the first complete line starting with prefix, without its newline.
func (c *capture) findLine(prefix string) (string, bool) {
	c.mu.Lock()
	s := c.buf.String()
	c.mu.Unlock()
	for _, line := range strings.SplitAfter(s, "\n") {
		if strings.HasPrefix(line, prefix) && strings.HasSuffix(line, "\n") {
			return strings.TrimSuffix(line, "\n"), true
		}
	}
	return "", false
}
