package main

import (
	"bufio"
	"bytes"
	"context"
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
	"time"
)

// procs owns every external process the harness starts (epmd, erl). Each
// runs in its own process group, so killing the group also takes the
// helpers erl starts (erl_child_setup, inet_gethost).
type procs struct {
	mu     sync.Mutex
	list   []*proc
	closed bool
}

// proc is one started program.
type proc struct {
	desc   string
	node   string // an erl node's name
	cmd    *exec.Cmd
	out    *tail
	stdin  io.WriteCloser // only for drivers
	lines  chan string    // only for drivers: stdout lines
	done   chan struct{}
	err    error
	killed sync.Once
}

// tail keeps the last bytes a process printed, for error messages.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailMax = 16 << 10

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailMax {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailMax:]...)
	}
	t.mu.Unlock()
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// start runs path with args in a new process group. With driver set, the
// process gets a stdin pipe and its stdout lines arrive on p.lines.
func (ps *procs) start(path string, args, env []string, desc string, driver bool) (*proc, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.closed {
		return nil, errors.New("shutting down")
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	cmd.WaitDelay = 2 * time.Second
	p := &proc{desc: desc, cmd: cmd, out: &tail{}, done: make(chan struct{})}
	cmd.Stderr = p.out
	var stdout io.ReadCloser
	if driver {
		var err error
		if p.stdin, err = cmd.StdinPipe(); err != nil {
			return nil, err
		}
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return nil, err
		}
		p.lines = make(chan string, 1024)
	} else {
		cmd.Stdout = p.out
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", desc, err)
	}
	ps.list = append(ps.list, p)
	readDone := make(chan struct{})
	if driver {
		go func() {
			defer close(readDone)
			defer close(p.lines)
			r := bufio.NewReaderSize(stdout, 64<<10)
			for {
				line, err := r.ReadString('\n')
				if line != "" {
					if strings.HasPrefix(line, "BENCH-") {
						p.lines <- strings.TrimRight(line, "\r\n")
					} else {
						_, _ = p.out.Write([]byte(line))
					}
				}
				if err != nil {
					return
				}
			}
		}()
	} else {
		close(readDone)
	}
	go func() {
		<-readDone // Wait closes the stdout pipe: read it all first
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// pid returns the process id (erl execs erlexec, which execs beam.smp:
// the same pid).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// kill kills the process group and waits (boundedly) for the process.
func (p *proc) kill() {
	p.killed.Do(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	})
}

// killAll kills every process started so far, in parallel. It may be
// called more than once and concurrently. With final, no process can be
// started afterwards.
func (ps *procs) killAll(final bool) {
	ps.mu.Lock()
	ps.closed = ps.closed || final
	list := ps.list
	ps.list = nil
	ps.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Go(p.kill)
	}
	wg.Wait()
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// findEpmd finds the epmd binary: PATH, then next to erl's installation.
func findEpmd() (string, error) {
	if p, err := exec.LookPath("epmd"); err == nil {
		return p, nil
	}
	pats := []string{"/usr/lib/erlang/erts-*/bin/epmd", "/usr/local/lib/erlang/erts-*/bin/epmd"}
	if erl, err := exec.LookPath("erl"); err == nil {
		if real, err := filepath.EvalSymlinks(erl); err == nil {
			root := filepath.Dir(filepath.Dir(real))
			pats = append([]string{filepath.Join(root, "erts-*", "bin", "epmd")}, pats...)
		}
	}
	for _, pat := range pats {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return m[len(m)-1], nil
		}
	}
	return "", errors.New("epmd not found")
}

// startEPMD starts the real epmd on a private loopback port and waits until
// it accepts connections.
func (ps *procs) startEPMD(ctx context.Context, port int) (*proc, error) {
	bin, err := findEpmd()
	if err != nil {
		return nil, err
	}
	s := strconv.Itoa(port)
	p, err := ps.start(bin, []string{"-port", s, "-address", "127.0.0.1"}, []string{"ERL_EPMD_PORT=" + s}, "epmd -port "+s, false)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, time.Second)
		c, err := d.DialContext(dctx, "tcp", net.JoinHostPort("127.0.0.1", s))
		cancel()
		if err == nil {
			_ = c.Close()
			break
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("epmd on port %d not up after 10 s: %s", port, p.out.String())
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("epmd exited: %v: %s", p.err, p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case <-p.done:
		return nil, fmt.Errorf("epmd exited (port %d taken?): %s", port, p.out.String())
	default:
	}
	return p, nil
}

// erlNode describes an erl node to start.
type erlNode struct {
	alive      string // the part before '@'; the host is always 127.0.0.1
	cookie     string
	epmdPort   int
	connectAll bool   // false adds -connect_all false
	driverDir  string // non-empty: run bench_erl.erl from this directory, driven over stdin
}

func (e erlNode) name() string { return e.alive + "@127.0.0.1" }

// startErl starts an erl node (long name, loopback only, the private EPMD)
// and waits until it is up: a plain node prints a ready line once
// net_kernel is registered; a driver prints BENCH-DRIVER.
func (ps *procs) startErl(ctx context.Context, e erlNode) (*proc, error) {
	erl, err := exec.LookPath("erl")
	if err != nil {
		return nil, err
	}
	args := []string{"-noshell", "-start_epmd", "false", "-name", e.name(), "-setcookie", e.cookie,
		"-kernel", "inet_dist_use_interface", "{127,0,0,1}"}
	if !e.connectAll {
		args = append(args, "-connect_all", "false")
	}
	env := []string{"ERL_EPMD_PORT=" + strconv.Itoa(e.epmdPort), "ERL_CRASH_DUMP_SECONDS=0"}
	driver := e.driverDir != ""
	if driver {
		src := filepath.Join(e.driverDir, "bench_erl.erl")
		args = append(args, "-eval", fmt.Sprintf(`{ok, M, B} = compile:file(%q, [binary, report_errors]), `+
			`{module, M} = code:load_binary(M, %q, B), bench_erl:main()`, src, src))
	} else {
		args = append(args, "-eval", `io:format("BENCH-UP ~s~n", [node()])`)
	}
	p, err := ps.start(erl, args, env, "erl "+e.name(), driver)
	if err != nil {
		return nil, err
	}
	p.node = e.name()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if driver {
		line, err := p.next(ctx)
		if err != nil {
			return nil, err
		}
		if !strings.HasPrefix(line, "BENCH-DRIVER ") {
			return nil, fmt.Errorf("%s: unexpected first line %q", p.desc, line)
		}
		return p, nil
	}
	for !strings.Contains(p.out.String(), "BENCH-UP ") {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited: %v\n%s", p.desc, p.err, p.out.String())
		case <-ctx.Done():
			return nil, fmt.Errorf("%s: not up: %w\n%s", p.desc, ctx.Err(), p.out.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	return p, nil
}

// next returns the driver's next BENCH- line.
func (p *proc) next(ctx context.Context) (string, error) {
	select {
	case line, ok := <-p.lines:
		if !ok {
			<-p.done
			return "", fmt.Errorf("%s exited: %v\n%s", p.desc, p.err, p.out.String())
		}
		return line, nil
	case <-ctx.Done():
		return "", fmt.Errorf("%s: %w\n%s", p.desc, ctx.Err(), p.out.String())
	}
}

// call sends one command term to a driver and returns the integers of its
// result list (nanoseconds).
func (p *proc) call(ctx context.Context, cmd string, timeout time.Duration) ([]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := io.WriteString(p.stdin, cmd+".\n"); err != nil {
		return nil, fmt.Errorf("%s: writing command: %w", p.desc, err)
	}
	line, err := p.next(ctx)
	if err != nil {
		return nil, err
	}
	if rest, ok := strings.CutPrefix(line, "BENCH-ERROR "); ok {
		return nil, fmt.Errorf("%s: %s failed: %s", p.desc, cmdName(cmd), rest)
	}
	rest, ok := strings.CutPrefix(line, "BENCH-RESULT ")
	if !ok {
		return nil, fmt.Errorf("%s: unexpected line %q", p.desc, line)
	}
	return parseInts(rest)
}

func cmdName(cmd string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(cmd, "{"), ",")
	return name
}

// parseInts parses an Erlang list of integers as printed by ~w; "true" or
// an atom gives an empty list.
func parseInts(s string) ([]int64, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "[") {
		return nil, nil
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if s == "" {
		return nil, nil
	}
	out := make([]int64, 0, bytes.Count([]byte(s), []byte{','})+1)
	for f := range strings.SplitSeq(s, ",") {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("bad result element %q", f)
		}
		out = append(out, v)
	}
	return out, nil
}
