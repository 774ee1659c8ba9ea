// Package procs runs external programs (epmd, erl, elixir) for tests and the bench harness, each in its
// own process group so that a kill takes its helpers too, and hands out free loopback ports and unique
// node names. It does not need a testing.TB; internal/erltest builds its test helpers on it.
package procs

import (
	"crypto/rand"
	"encoding/binary"
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
	"sync/atomic"
	"syscall"
	"time"
)

// Ports handed out by Port come from below the kernel's ephemeral range (or above it), so that no
// listener on port 0 and no outgoing connection of this or another process can take a port between Port
// and its use (seen: a test's EPMD port given meanwhile to another test's blackhole listener). A process
// never hands out the same port twice; a random start keeps concurrent processes apart.
var (
	portOnce           sync.Once
	portLo, portHi     int
	portNext           atomic.Int64
	ephemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"
)

func initPorts() {
	lo, hi := 32768, 60999
	if b, err := os.ReadFile(ephemeralRangeFile); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			l, err1 := strconv.Atoi(f[0])
			h, err2 := strconv.Atoi(f[1])
			if err1 == nil && err2 == nil {
				lo, hi = l, h
			}
		}
	}
	switch {
	case lo-1-10000 >= 2000:
		portLo, portHi = 10000, lo-1
	case 65535-hi >= 2000:
		portLo, portHi = hi+1, 65535
	}
	if portHi > 0 {
		var b [2]byte
		_, _ = rand.Read(b[:])
		portNext.Store(int64(binary.BigEndian.Uint16(b[:])) % int64(portHi-portLo+1))
	}
}

// Port returns a TCP port free on every interface a moment ago and given to no other caller in this
// process.
func Port() (int, error) {
	portOnce.Do(initPorts)
	if portHi == 0 { // no room outside the ephemeral range: let the kernel pick
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("procs: finding a free port: %w", err)
		}
		defer ln.Close()
		return ln.Addr().(*net.TCPAddr).Port, nil
	}
	for range 500 {
		p := portLo + int(portNext.Add(1)%int64(portHi-portLo+1))
		if !claimPort(p) {
			continue // another test process handed it out
		}
		ln, err := net.Listen("tcp", ":"+strconv.Itoa(p))
		if err == nil {
			_ = ln.Close()
			return p, nil
		}
	}
	return 0, errors.New("procs: no free port found in 500 tries")
}

// Test packages run as concurrent processes, each walking the port range from its own random
// start, and two of them could hand out the same port (seen: one test's epmd exited at once
// because another package's epmd had just taken its port). A port is therefore also claimed for
// the life of the process with an flock on a file named after it in portDir; the kernel drops
// the lock when the process ends, so nothing needs cleaning up.
var (
	portDir   = filepath.Join(os.TempDir(), "distribute-test-ports")
	claimMu   sync.Mutex
	claimed   = map[int]*os.File{}
	claimOnce sync.Once
)

// claimPort reports whether this process now holds port p's claim (true too when the claim
// cannot be made at all, so a read-only /tmp does not stop the tests).
func claimPort(p int) bool {
	claimOnce.Do(func() { _ = os.MkdirAll(portDir, 0o777) })
	claimMu.Lock()
	defer claimMu.Unlock()
	if _, ok := claimed[p]; ok {
		return false
	}
	f, err := os.OpenFile(filepath.Join(portDir, strconv.Itoa(p)), os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return true
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return false
	}
	claimed[p] = f // held, and its lock with it, until the process exits
	return true
}

var nameSeq atomic.Uint64

// UniqueName returns an alive part (node name before '@') unique to this process and call, made of
// [0-9A-Za-z_] only: prefix (other characters dropped; "n" if none remain), the pid, a counter and
// random hex.
func UniqueName(prefix string) string {
	clean := strings.Map(func(r rune) rune {
		if r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return -1
	}, prefix)
	if clean == "" {
		clean = "n"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s_%d_%d_%s", clean, os.Getpid(), nameSeq.Add(1), hex.EncodeToString(b[:]))
}

// Proc is a started program. Kill kills its whole process group.
type Proc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	done   chan struct{}
	err    error // from Wait, set before done is closed
	killed sync.Once
}

// Start starts cmd in a new process group (keeping cmd.SysProcAttr's other settings), with a pipe as its
// standard input when stdin is true. cmd.WaitDelay defaults to 2 s, so that a grandchild that keeps an
// output pipe open cannot hold Wait up.
func Start(cmd *exec.Cmd, stdin bool) (*Proc, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if cmd.WaitDelay == 0 {
		cmd.WaitDelay = 2 * time.Second
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	if stdin {
		w, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		p.stdin = w
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid returns the process id, which is also the process group id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Stdin returns the standard input pipe (nil unless Start was asked for one).
func (p *Proc) Stdin() io.WriteCloser { return p.stdin }

// Done returns a channel closed when the process has exited and its output is read.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err returns the exit error (nil for status 0) once Done is closed, else nil.
func (p *Proc) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// killGroup sends a signal to a process group (a variable so that tests can watch it).
var killGroup = func(pgid int, sig syscall.Signal) error { return syscall.Kill(-pgid, sig) }

// reaped reports whether the process has been waited for. From then on its pid, which is the
// process group id, may be reused: on a busy machine with pid_max 32768 the pids wrap in a few
// minutes, and a later process started with Setpgid (another test's erl) gets the same number as
// its group id. Signalling the old group then kills a stranger, so neither Signal nor Kill does.
func (p *Proc) reaped() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the process group; os.ErrProcessDone when no process of it is left, or
// when the process has been reaped already (its group id may be another group's by now).
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.reaped() {
		return os.ErrProcessDone
	}
	err := killGroup(p.Pid(), sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// Kill kills the process group with SIGKILL and waits up to within for the process to be reaped; it
// reports whether it was. Later calls only wait. A process already reaped is not signalled (see
// reaped): its group id may belong to another process group by now.
func (p *Proc) Kill(within time.Duration) bool {
	p.killed.Do(func() {
		if !p.reaped() {
			_ = killGroup(p.Pid(), syscall.SIGKILL)
		}
	})
	select {
	case <-p.done:
		return true
	case <-time.After(within):
		return false
	}
}

// Group is a set of started programs killed together (the bench harness's processes).
type Group struct {
	mu     sync.Mutex
	list   []*Proc
	closed bool
}

// Start starts cmd (see Start) as a member of g; it fails once KillAll(true) has run.
func (g *Group) Start(cmd *exec.Cmd, stdin bool) (*Proc, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errors.New("procs: shutting down")
	}
	p, err := Start(cmd, stdin)
	if err != nil {
		return nil, err
	}
	g.list = append(g.list, p)
	return p, nil
}

// KillAll kills every member started so far, in parallel, each waited for up to within. It may be called
// more than once and concurrently. With final, no program can be started in g afterwards.
func (g *Group) KillAll(final bool, within time.Duration) {
	g.mu.Lock()
	g.closed = g.closed || final
	list := g.list
	g.list = nil
	g.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range list {
		wg.Go(func() { p.Kill(within) })
	}
	wg.Wait()
}

// FindEpmd finds the epmd binary: in PATH, then next to erl's installation, then under the usual OTP
// installation directories.
func FindEpmd() (string, error) {
	if p, err := exec.LookPath("epmd"); err == nil {
		return p, nil
	}
	patterns := []string{"/usr/lib/erlang/erts-*/bin/epmd", "/usr/local/lib/erlang/erts-*/bin/epmd",
		"/opt/homebrew/lib/erlang/erts-*/bin/epmd"}
	if erl, err := exec.LookPath("erl"); err == nil {
		if real, err := filepath.EvalSymlinks(erl); err == nil {
			root := filepath.Dir(filepath.Dir(real)) // <root>/bin/erl
			patterns = append([]string{filepath.Join(root, "erts-*", "bin", "epmd")}, patterns...)
		}
	}
	for _, pat := range patterns {
		if m, _ := filepath.Glob(pat); len(m) > 0 {
			return m[len(m)-1], nil
		}
	}
	return "", errors.New("epmd not found in PATH nor under an OTP installation")
}
