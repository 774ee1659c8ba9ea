package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Environment of the helper process (TestHelperProcess).
const (
	helperEnv       = "DISTRIBUTE_INTEROP_HELPER" // "1" in the helper process only
	helperNameEnv   = "DISTRIBUTE_INTEROP_NAME"
	helperCookieEnv = "DISTRIBUTE_INTEROP_COOKIE"
	helperEPMDEnv   = "DISTRIBUTE_INTEROP_EPMD_PORT"
	helperPeerEnv   = "DISTRIBUTE_INTEROP_PEER"
)

// TestHelperProcess is not a test: TestInteropGoGoTwoProcesses runs the test binary again with
// -test.run=^TestHelperProcess$ and helperEnv=1, and this runs a Go node in that second process. It
// reads commands on standard input, one per line, and answers each with one line:
//
//	ping  -> "PING true|false"  (ping the peer)
//	nodes -> "NODES a,b"        (our links)
//	quit or end of input -> Stop the node, "BYE", return.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for TestInteropGoGoTwoProcesses")
	}
	port, err := strconv.Atoi(os.Getenv(helperEPMDEnv))
	require.NoError(t, err)
	peer := os.Getenv(helperPeerEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := process.Start(ctx, os.Getenv(helperNameEnv), os.Getenv(helperCookieEnv),
		&process.Options{Node: node.Options{EPMD: node.EPMDExternal, EPMDPort: port, ListenAddr: "127.0.0.1"}})
	require.NoError(t, err)
	fmt.Println("READY", n.Self())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		switch in.Text() {
		case "ping":
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			fmt.Println("PING", n.Ping(ctx, peer))
			cancel()
		case "nodes":
			fmt.Println("NODES " + strings.Join(n.Nodes(), ","))
		case "quit":
			require.NoError(t, n.Stop())
			fmt.Println("BYE")
			return
		default:
			fmt.Println("UNKNOWN", in.Text())
		}
	}
	require.NoError(t, n.Stop())
}

// helperProc is the parent's handle on the helper process.
type helperProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	out    []string      // standard output lines so far
	notify chan struct{} // a line arrived
	done   chan struct{} // the process has exited and been reaped
	err    error         // from Wait, set before done is closed
	next   int           // the first line expect has not looked at
}

// startHelperProcess runs TestHelperProcess in a new process of this test binary; it is stopped
// (quit, then SIGKILL after 10 s) when the test ends.
func startHelperProcess(t *testing.T, name, cookie, peer string, epmdPort int) *helperProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1", "-test.timeout=60s")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperNameEnv+"="+name, helperCookieEnv+"="+cookie,
		helperEPMDEnv+"="+strconv.Itoa(epmdPort), helperPeerEnv+"="+peer)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	h := &helperProc{cmd: cmd, stdin: stdin, notify: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			h.mu.Lock()
			h.out = append(h.out, s.Text())
			h.mu.Unlock()
			select {
			case h.notify <- struct{}{}:
			default:
			}
		}
		h.err = cmd.Wait() // after all output was read, as StdoutPipe requires
		close(h.done)
	}()
	t.Cleanup(func() {
		_ = h.stdin.Close() // end of input: the helper stops its node and exits
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			t.Errorf("helper process did not exit within 10 s of end of input")
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-h.done
		}
		if t.Failed() {
			h.mu.Lock()
			t.Logf("helper stdout:\n%s\nhelper stderr:\n%s", strings.Join(h.out, "\n"), stderr.String())
			h.mu.Unlock()
		}
	})
	return h
}

// send writes one command line to the helper.
func (h *helperProc) send(t *testing.T, cmd string) {
	t.Helper()
	_, err := io.WriteString(h.stdin, cmd+"\n")
	require.NoError(t, err)
}

// expect returns the next unread output line that starts with prefix (skipping others), waiting up
// to timeout.
func (h *helperProc) expect(t *testing.T, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		h.mu.Lock()
		for h.next < len(h.out) {
			line := h.out[h.next]
			h.next++
			if strings.HasPrefix(line, prefix) {
				h.mu.Unlock()
				return line
			}
		}
		h.mu.Unlock()
		select {
		case <-h.notify:
		case <-h.done:
			h.mu.Lock()
			more := h.next < len(h.out)
			h.mu.Unlock()
			if !more {
				require.Failf(t, "helper exited", "waiting for %q: %v", prefix, h.err)
			}
		case <-deadline:
			require.Failf(t, "helper timeout", "no line %q within %v", prefix, timeout)
		}
	}
}

// call sends cmd and returns the rest of the answer line that starts with reply.
func (h *helperProc) call(t *testing.T, cmd, reply string) string {
	t.Helper()
	h.send(t, cmd)
	return strings.TrimPrefix(h.expect(t, reply+" ", 15*time.Second), reply+" ")
}

// Two Go nodes in two OS processes: each dials the other, pings both ways, lists the link, and sees
// it go when the other side disconnects or stops.
//
// Go<->Go: the real epmd is only the registry, so this runs on the host's OTP alone.
func TestInteropGoGoTwoProcesses(t *testing.T) {
	erltest.RequireEpmd(t)
	t.Parallel()
	ep := erltest.StartEPMD(t, 0)
	cookie := newInteropCookie()
	aName, bName := goName("goa", false), goName("gob", false)
	a := startInteropGo(t, aName, cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: ep.Port()})
	b := startHelperProcess(t, bName, cookie, aName, ep.Port())
	require.Equal(t, bName, strings.TrimPrefix(b.expect(t, "READY ", 30*time.Second), "READY "))

	// A dials B.
	require.True(t, a.Ping(ctxFor(t, 10*time.Second), bName))
	assert.Equal(t, []string{bName}, a.Nodes())
	assert.Equal(t, aName, b.call(t, "nodes", "NODES"))
	assert.Equal(t, "true", b.call(t, "ping", "PING"), "B pings A over A's link")
	assert.Equal(t, 1, waitEvent(t, a, 0, node.EventHandshakeOK, bName))

	// A drops the link; B sees it go; B dials A.
	require.True(t, a.Disconnect(bName))
	poll(t, 5*time.Second, 20*time.Millisecond, func() bool { return b.call(t, "nodes", "NODES") == "" })
	mark := a.events.mark()
	assert.Equal(t, "true", b.call(t, "ping", "PING"), "B dials A")
	assert.Equal(t, []string{bName}, a.Nodes())
	waitEvent(t, a, mark, node.EventHandshakeOK, bName)
	ev := a.events.since(mark)
	require.Len(t, ev, 1, "%+v", ev)
	assert.True(t, ev[0].Kind == node.EventHandshakeOK && ev[0].Inbound, "%+v", ev[0])
	rtt, err := a.PingRTT(ctxFor(t, 10*time.Second), bName)
	require.NoError(t, err, "A pings B over B's link")
	assert.Less(t, rtt, time.Second)
	assert.Equal(t, aName, b.call(t, "nodes", "NODES"))

	// B stops: A's link goes, and B exits cleanly (its goleak check included).
	b.send(t, "quit")
	b.expect(t, "BYE", 10*time.Second)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		t.Fatal("helper did not exit")
	}
	assert.NoError(t, b.err, "helper exit status")
	require.Eventually(t, func() bool { return a.ConnectedCount() == 0 }, 5*time.Second, 10*time.Millisecond)
	assert.False(t, a.Ping(ctxFor(t, 5*time.Second), bName), "B is gone")
}
