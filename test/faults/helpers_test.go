package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/distribute-go/distribute/internal/logbuf"
	"io"
	"log/slog"
	"net"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/internal/nodetest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// evalTimeout bounds one Eval on a control erl node.
const evalTimeout = 15 * time.Second

// newCookie returns a fresh, recognisable cookie, so that tests can check
// that it appears in no error and no log line.
func newCookie(prefix string) string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// shortName returns a unique node name on localhost.
func shortName(prefix string) string { return erltest.UniqueName(prefix) + "@localhost" }

// ctxFor returns a context that ends after d or with the test.
func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var remoteRE = regexp.MustCompile(`\bremote=(\S+)`)

// byRemote indexes the lines that contain msg by their remote= attribute.
func byRemote(l *logBuf, msg string) map[string][]string {
	out := map[string][]string{}
	for _, line := range l.Lines(msg) {
		if m := remoteRE.FindStringSubmatch(line); m != nil {
			out[m[1]] = append(out[m[1]], line)
		}
	}
	return out
}

// debugLogger returns a debug-level text logger writing to buf.
func debugLogger(buf io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// events records what a node reports to Options.OnEvent.
type events struct{ nodetest.Events }

func (e *events) add(ev node.Event) { e.Add(ev) }

func (e *events) list() []node.Event { return e.List() }

// count returns how many events of kind k (about peer, if not "") matched
// match (if not nil).
func (e *events) count(k node.EventKind, peer string, match func(node.Event) bool) int {
	return e.Count(0, func(ev node.Event) bool {
		return ev.Kind == k && (peer == "" || ev.Peer == peer) && (match == nil || match(ev))
	})
}

// startNode starts a node that stops when the test ends (nodetest.Start).
func startNode(t *testing.T, name, cookie string, opts node.Options) *process.Node {
	t.Helper()
	return nodetest.Start(t, name, cookie, opts)
}

// startEPMDServer runs our pure-Go EPMD server on a free loopback port until
// the test ends and returns the port.
func startEPMDServer(t *testing.T, requestTimeout time.Duration, log *slog.Logger) (*epmd.Server, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &epmd.Server{RequestTimeout: requestTimeout, Logger: log}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return srv, ln.Addr().(*net.TCPAddr).Port
}

// startErl starts a real erl node in runtime rt (nil: the host's) with a
// control loop, on EPMD port epmdPort, with cookie.
func startErl(t *testing.T, rt *erltest.Runtime, prefix, cookie string, epmdPort, tickTime int) *erltest.Process {
	t.Helper()
	return erltest.StartErl(t, erltest.ErlOptions{Runtime: rt,
		Name: erltest.UniqueName(prefix), Cookie: cookie, EPMDPort: epmdPort, TickTime: tickTime, Control: true,
	})
}

// erlEval evaluates expr on p and fails the test on error.
func erlEval(t *testing.T, p *erltest.Process, expr string) string {
	t.Helper()
	v, err := p.Eval(expr, evalTimeout)
	require.NoError(t, err, "eval %s\n%s", expr, p.Output())
	return v
}

// erlPing makes the erl node p net_adm:ping peer and returns pong or pang.
func erlPing(t *testing.T, p *erltest.Process, peer string) string {
	t.Helper()
	return erlEval(t, p, fmt.Sprintf("net_adm:ping('%s')", peer))
}

// waitFor polls cond every 5 ms until it holds or d passes; it returns how
// long it took and whether it held.
func waitFor(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// isClosed reports whether err from a read means the other side closed or
// reset the connection (as opposed to our own read deadline).
func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// readUntilClosed reads and discards from conn until it is closed by the
// other side or within passes. It returns when it was closed (since the
// call) and the error that ended the reads; closed is false on our own
// deadline.
func readUntilClosed(conn net.Conn, within time.Duration) (after time.Duration, closed bool, err error) {
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(within))
	buf := make([]byte, 4096)
	for {
		_, err = conn.Read(buf)
		if err != nil {
			return time.Since(start), isClosed(err), err
		}
	}
}

// halfClose shuts the write side of a TCP connection: the peer reads EOF.
func halfClose(conn net.Conn) {
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

// settle waits up to d for the goroutine and descriptor counts to come back
// to at most the baseline plus slack, and returns the final counts.
func settle(t *testing.T, baseG, baseFD, slack int, d time.Duration) (g, fd int) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		runtime.GC()
		g, fd = runtime.NumGoroutine(), openFDs(t)
		if (g <= baseG+slack && fd <= baseFD+slack) || time.Now().After(deadline) {
			return g, fd
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// establishedOn counts the ESTABLISHED TCP sockets of this network namespace
// whose local port is one of ports: for listening ports, that is the number
// of accepted connections still up, whichever side dialled. It asks the
// kernel through sock_diag (cheap even with thousands of TIME_WAIT sockets
// around), else reads /proc/net/tcp{,6}. It returns -1 if neither works.
func establishedOn(ports ...int) int {
	want := map[int]bool{}
	for _, p := range ports {
		want[p] = true
	}
	if n, err := diagEstablished(want); err == nil {
		return n
	}
	return procEstablished(want)
}

// diagEstablished asks NETLINK_SOCK_DIAG for the established TCP sockets
// (IPv4 and IPv6) and counts those with a local port in want.
func diagEstablished(want map[int]bool) (int, error) {
	const (
		sockDiagByFamily = 20
		tcpEstablished   = 1
		nlmsgDone        = 3
		nlmsgError       = 2
	)
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.NETLINK_INET_DIAG)
	if err != nil {
		return 0, err
	}
	defer syscall.Close(fd)
	tv := syscall.Timeval{Sec: 2}
	if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
		return 0, err
	}
	n := 0
	for seq, family := range []uint8{syscall.AF_INET, syscall.AF_INET6} {
		// nlmsghdr (16 bytes) + inet_diag_req_v2 (56 bytes), host byte order.
		req := make([]byte, 16+56)
		binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
		binary.NativeEndian.PutUint16(req[4:], sockDiagByFamily)
		binary.NativeEndian.PutUint16(req[6:], syscall.NLM_F_REQUEST|syscall.NLM_F_DUMP)
		binary.NativeEndian.PutUint32(req[8:], uint32(seq+1))
		req[16] = family
		req[17] = syscall.IPPROTO_TCP
		binary.NativeEndian.PutUint32(req[20:], 1<<tcpEstablished)
		if err := syscall.Sendto(fd, req, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
			return 0, err
		}
		buf := make([]byte, 1<<16)
	recv:
		for {
			r, _, err := syscall.Recvfrom(fd, buf, 0)
			if err != nil {
				return 0, err
			}
			msgs, err := syscall.ParseNetlinkMessage(buf[:r])
			if err != nil {
				return 0, err
			}
			for _, m := range msgs {
				switch m.Header.Type {
				case nlmsgDone:
					break recv
				case nlmsgError:
					return 0, errors.New("sock_diag: netlink error")
				}
				// inet_diag_msg: family, state, timer, retrans, then the
				// socket id, whose first field is the source port (big endian).
				if len(m.Data) >= 6 && m.Data[1] == tcpEstablished && want[int(binary.BigEndian.Uint16(m.Data[4:]))] {
					n++
				}
			}
		}
	}
	return n, nil
}

// procEstablished is diagEstablished through /proc/net/tcp{,6}.
func procEstablished(want map[int]bool) int {
	n := 0
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return -1
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 4 || fields[3] != "01" { // 01 = ESTABLISHED
				continue
			}
			_, portHex, ok := strings.Cut(fields[1], ":")
			if !ok {
				continue
			}
			p, err := strconv.ParseUint(portHex, 16, 16)
			if err == nil && want[int(p)] {
				n++
			}
		}
	}
	return n
}

// noSecret fails the test if any of texts contains any of the secrets.
func noSecret(t *testing.T, what string, texts []string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for _, x := range texts {
			if strings.Contains(x, s) {
				t.Errorf("%s contains a cookie: %q", what, strings.ReplaceAll(x, s, "<COOKIE>"))
				return
			}
		}
	}
}

// erlDistPort looks up the distribution port of the node name at the EPMD
// on epmdPort.
func erlDistPort(t *testing.T, epmdPort int, name string) int {
	t.Helper()
	alive, _, _ := strings.Cut(name, "@")
	info, err := (&epmd.Client{Port: epmdPort}).PortPlease(ctxFor(t, 5*time.Second), "", alive)
	require.NoError(t, err, "port of %s", name)
	return info.Port
}

// logBuf is a goroutine-safe buffer that a node's slog writes to.
type logBuf = logbuf.Buffer
