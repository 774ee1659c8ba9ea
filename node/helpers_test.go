package node

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/internal/logbuf"
	"github.com/distribute-go/distribute/internal/procs"
)

// testCookie is the cookie of every test node unless a test says otherwise.
const testCookie = "node-test-cookie-7f3a"

// freePort returns a TCP port free on every interface a moment ago, and
// given to no other caller in this process (erltest.FreePort: outside the
// kernel's ephemeral range).
func freePort(t testing.TB) int { return erltest.FreePort(t) }

// uniqueAlive returns an alive part never used before by this process (nor,
// with high probability, by another one).
func uniqueAlive(prefix string) string { return erltest.UniqueName(prefix) }

// shortName is a unique short node name (host without a dot).
func shortName(prefix string) string { return uniqueAlive(prefix) + "@localhost" }

// longName is a unique long node name on 127.0.0.1.
func longName(prefix string) string { return uniqueAlive(prefix) + "@127.0.0.1" }

// debugLogger returns a debug-level logger writing into a buffer; the
// buffer is printed if the test fails.
func debugLogger(t testing.TB) (*slog.Logger, *syncBuf) {
	t.Helper()
	buf := &syncBuf{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("node logs:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// events records what a node reports to Options.OnEvent. Package node's
// tests cannot use internal/nodetest (it imports node), so this adapts
// procs.Recorder directly.
type events struct{ procs.Recorder[Event] }

func (e *events) add(ev Event) { e.Add(ev) }

// count returns how many events of kind k were seen.
func (e *events) count(k EventKind) int {
	return e.Count(0, func(ev Event) bool { return ev.Kind == k })
}

func (e *events) list() []Event { return e.List() }

// startNode starts a node with a test logger (package node's own: it cannot
// import internal/nodetest, which imports node), a loopback listener and a
// short setup time (unless opts says otherwise), and stops it when the test
// ends. opts.EPMDPort must be set: each test has its own EPMD port.
func startNode(t testing.TB, name, cookie string, opts Options) *Node {
	t.Helper()
	require.NotZero(t, opts.EPMDPort, "every test uses its own EPMD port")
	if opts.ListenAddr == "" {
		opts.ListenAddr = "127.0.0.1"
	}
	if opts.SetupTimeout == 0 {
		opts.SetupTimeout = 3 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger, _ = debugLogger(t)
	}
	if opts.Handler == nil {
		opts.Handler = newTestHandler()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := Start(ctx, name, cookie, &opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

// testCtx is a context bounded well below the test timeout.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// pair starts two short-name nodes on one fresh EPMD port.
func pair(t testing.TB, opts Options) (a, b *Node) {
	t.Helper()
	if opts.EPMDPort == 0 {
		opts.EPMDPort = freePort(t)
	}
	a = startNode(t, shortName("a"), testCookie, opts)
	b = startNode(t, shortName("b"), testCookie, opts)
	return a, b
}

// waitCount waits until n has exactly want links.
func waitCount(t testing.TB, n *Node, want int, within time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return n.ConnectedCount() == want }, within, 5*time.Millisecond,
		"%s should have %d links, has %v", n.Self(), want, n.Nodes())
}

// registerFake registers alive at the EPMD on epmdPort for a listener on
// port; the registration ends with the test.
func registerFake(t testing.TB, epmdPort int, alive string, port int) {
	t.Helper()
	c := epmd.Client{Port: epmdPort}
	reg, err := c.Register(testCtx(t, 5*time.Second), epmd.NodeInfo{Name: alive, Port: port})
	require.NoError(t, err)
	t.Cleanup(func() { _ = reg.Close() })
}

// fakeListener accepts connections on a loopback port and hands each to
// handle on its own goroutine; everything is closed and waited for when the
// test ends.
func fakeListener(t testing.TB, handle func(net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// rawPeer is a hand-driven distribution peer: a real handshake, then
// frames written and read by the test.
type rawPeer struct {
	t       testing.TB
	name    string
	conn    net.Conn
	r       *bufio.Reader
	pid     etf.Pid
	headers bool // FRAGMENTS negotiated: the node sends "131 68 0" frames
}

// dialRaw connects to n as a peer named name, with the real handshake and
// handshake.DefaultFlags.
func dialRaw(t testing.TB, n *Node, name string) *rawPeer {
	t.Helper()
	return dialRawFlags(t, n, name, 0)
}

// dialRawFlags is dialRaw advertising flags (0 means the default).
func dialRawFlags(t testing.TB, n *Node, name string, flags handshake.Flags) *rawPeer {
	t.Helper()
	conn, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port())))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	cfg := handshake.Config{Name: name, Cookie: testCookie, Creation: 0x1234, Flags: flags}
	res, err := handshake.Initiate(testCtx(t, 5*time.Second), conn, &cfg, n.Self())
	require.NoError(t, err)
	return &rawPeer{t: t, name: name, conn: conn, r: bufio.NewReader(conn),
		pid:     etf.Pid{Node: etf.Atom(name), ID: 77, Serial: 1, Creation: 0x1234},
		headers: res.Flags.Has(handshake.FlagFragments)}
}

// writeRaw writes b as is.
func (p *rawPeer) writeRaw(b []byte) {
	p.t.Helper()
	_ = p.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_, err := p.conn.Write(b)
	require.NoError(p.t, err)
}

// frame writes body with its 4-byte length.
func (p *rawPeer) frame(body []byte) {
	p.t.Helper()
	p.writeRaw(append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...))
}

// send writes one 'p' frame with ctrl and, when not nil, msg.
func (p *rawPeer) send(ctrl, msg etf.Term) {
	p.t.Helper()
	b := []byte{0, 0, 0, 0, 'p'}
	b, err := etf.Append(b, ctrl)
	require.NoError(p.t, err)
	if msg != nil {
		b, err = etf.Append(b, msg)
		require.NoError(p.t, err)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	p.writeRaw(b)
}

// recv reads the next non-tick frame within d and decodes it: a 'p' frame,
// or a "131 68 0" header frame when FRAGMENTS was negotiated.
func (p *rawPeer) recv(d time.Duration) (ctrl etf.Tuple, msg etf.Term) {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(d))
	for {
		var hdr [4]byte
		_, err := io.ReadFull(p.r, hdr[:])
		require.NoError(p.t, err, "reading a frame")
		size := binary.BigEndian.Uint32(hdr[:])
		if size == 0 {
			continue
		}
		require.Less(p.t, size, uint32(1<<20))
		b := make([]byte, size)
		_, err = io.ReadFull(p.r, b)
		require.NoError(p.t, err)
		decode, body := etf.Decode, b[1:]
		if p.headers {
			require.Equal(p.t, []byte{etf.VersionTag, control.DistHeader, 0}, b[:3], "a header frame without atom cache refs")
			decode, body = etf.DecodeTerm, b[3:]
		} else {
			require.Equal(p.t, byte('p'), b[0], "a pass-through frame")
		}
		c, k, err := decode(body)
		require.NoError(p.t, err)
		ctrl, ok := c.(etf.Tuple)
		require.True(p.t, ok, "control is a tuple: %#v", c)
		if rest := body[k:]; len(rest) > 0 {
			msg, _, err = decode(rest)
			require.NoError(p.t, err)
		}
		return ctrl, msg
	}
}

// expectClosed reads (dropping ticks) until the node closes the connection,
// failing if it stays open for d.
func (p *rawPeer) expectClosed(d time.Duration) {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, p.r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		p.t.Fatalf("the node kept the connection open for %v", d)
	}
	// nil (EOF) or a reset: closed either way.
}

// syncBuf collects a node's log output.
type syncBuf = logbuf.Buffer
