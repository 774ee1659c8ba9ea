package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	runner "github.com/distribute-go/distribute/internal/procs"
)

// procs owns every external process the harness starts (epmd, erl): a
// runner.Group, so each runs in its own process group and killing the group
// also takes the helpers erl starts (erl_child_setup, inet_gethost).
type procs struct {
	g runner.Group
}

// proc is one started program.
type proc struct {
	desc  string
	node  string // an erl node's name
	p     *runner.Proc
	out   *tail
	stdin io.WriteCloser // only for drivers
	lines chan string    // only for drivers: BENCH- lines of stdout
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

// driverOut splits a driver's stdout into lines: BENCH- lines go to lines,
// the rest to the tail. exec copies into it from one goroutine, and Wait
// returns only after the last Write, so every line is in before the
// process counts as done.
type driverOut struct {
	partial []byte
	lines   chan<- string
	other   io.Writer
}

func (d *driverOut) Write(p []byte) (int, error) {
	d.partial = append(d.partial, p...)
	for {
		i := bytes.IndexByte(d.partial, '\n')
		if i < 0 {
			break
		}
		line := string(d.partial[:i+1])
		d.partial = d.partial[i+1:]
		if strings.HasPrefix(line, "BENCH-") {
			select {
			case d.lines <- strings.TrimRight(line, "\r\n"):
			default: // nobody reads 1024 lines behind: keep it for the error message
				_, _ = d.other.Write([]byte(line))
			}
		} else {
			_, _ = d.other.Write([]byte(line))
		}
	}
	return len(p), nil
}

// start runs path with args in a new process group. With driver set, the
// process gets a stdin pipe and its stdout BENCH- lines arrive on p.lines.
func (ps *procs) start(path string, args, env []string, desc string, driver bool) (*proc, error) {
	cmd := exec.Command(path, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	p := &proc{desc: desc, out: &tail{}}
	cmd.Stderr = p.out
	if driver {
		p.lines = make(chan string, 1024)
		cmd.Stdout = &driverOut{lines: p.lines, other: p.out}
	} else {
		cmd.Stdout = p.out
	}
	rp, err := ps.g.Start(cmd, driver)
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", desc, err)
	}
	p.p, p.stdin = rp, rp.Stdin()
	return p, nil
}

// pid returns the process id (erl execs erlexec, which execs beam.smp:
// the same pid).
func (p *proc) pid() int { return p.p.Pid() }

// exited returns a channel closed when the process has exited.
func (p *proc) exited() <-chan struct{} { return p.p.Done() }

// kill kills the process group and waits (boundedly) for the process.
func (p *proc) kill() { p.p.Kill(10 * time.Second) }

// killAll kills every process started so far, in parallel. It may be
// called more than once and concurrently. With final, no process can be
// started afterwards.
func (ps *procs) killAll(final bool) { ps.g.KillAll(final, 10*time.Second) }

// freePort returns a TCP port free a moment ago, outside the kernel's
// ephemeral range (runner.Port).
func freePort() (int, error) { return runner.Port() }

// findEpmd finds the epmd binary (runner.FindEpmd).
func findEpmd() (string, error) { return runner.FindEpmd() }

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
		case <-p.exited():
			return nil, fmt.Errorf("epmd exited: %v: %s", p.p.Err(), p.out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	select {
	case <-p.exited():
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
		case <-p.exited():
			return nil, fmt.Errorf("%s exited: %v\n%s", p.desc, p.p.Err(), p.out.String())
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
	case line := <-p.lines:
		return line, nil
	case <-p.exited():
		select { // every line is in once the process is done
		case line := <-p.lines:
			return line, nil
		default:
		}
		return "", fmt.Errorf("%s exited: %v\n%s", p.desc, p.p.Err(), p.out.String())
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
