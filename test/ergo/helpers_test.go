package ergo_test

import (
	"context"
	"fmt"
	"github.com/distribute-go/distribute/internal/logbuf"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	ergo "github.com/ergo-services/ergo"
	eetf "github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	enode "github.com/ergo-services/ergo/node"
	"github.com/ergo-services/ergo/proto/dist"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/internal/nodetest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// host is the only address the tests talk to: every node listens on it (the ergo node's EPMD, which
// our node registers with, too).
const host = "127.0.0.1"

// testCookie is the cookie shared by both sides unless a test says otherwise.
const testCookie = "ergo-interop-cookie-5d1e"

// fullName returns a unique long node name on 127.0.0.1.
func fullName(prefix string) string { return erltest.UniqueName(prefix) + "@" + host }

// events records what our node reports to Options.OnEvent (nodetest.Events).
type events struct{ nodetest.Events }

func (e *events) add(ev node.Event) { e.Add(ev) }

// find returns the first event of kind k about peer.
func (e *events) find(k node.EventKind, peer string) (node.Event, bool) { return e.Find(k, peer) }

// wait waits (up to 3 s) for the first event of kind k about peer.
func (e *events) wait(t *testing.T, k node.EventKind, peer string) node.Event {
	t.Helper()
	return e.Wait(t, k, peer, 3*time.Second)
}

// ours is one of our nodes under test, with its debug log and events.
type ours struct {
	*process.Node
	log    *syncBuf
	events *events
}

// startOurs starts our node named name on 127.0.0.1 in embedded-EPMD mode on epmdPort (it registers
// with the EPMD listening there, or starts its own if none does), logging at debug level. It is
// stopped when the test ends; its log is printed if the test failed.
func startOurs(t *testing.T, name, cookie string, epmdPort int) *ours {
	t.Helper()
	o := &ours{log: &syncBuf{}, events: &events{}}
	opts := node.Options{
		EPMD:         node.EPMDEmbedded,
		EPMDPort:     epmdPort,
		ListenAddr:   host,
		SetupTimeout: 3 * time.Second,
		Logger:       slog.New(slog.NewTextHandler(o.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnEvent:      o.events.add,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := process.Start(ctx, name, cookie, &process.Options{Node: opts})
	require.NoError(t, err)
	o.Node = n
	t.Cleanup(func() {
		_ = n.Stop()
		if t.Failed() {
			t.Logf("log of our node %s:\n%s", name, o.log.String())
		}
	})
	return o
}

// ergoNode is the ergo node under test.
type ergoNode struct {
	enode.Node
	port     int // its distribution listen port
	epmdPort int // the private EPMD it registers with and resolves names at
}

// shared is the one ergo node of this test binary, started by the first test that needs it and
// stopped after the last test. One node, not one per test, because ergo v1.999.224 keeps a
// package-level variable (node.corePID) that every node start writes and every connection goroutine
// reads when its link closes; Node.Stop does not wait for those goroutines, so a second ergo node in
// the same process is a data race inside ergo that the race detector reports.
var shared struct {
	once sync.Once
	err  error
	node *ergoNode
	epmd *epmd.Server
	done chan struct{} // closed when the EPMD server's Serve returns
}

// sharedErgo returns the ergo node, starting it (and its private EPMD) on first use. The node is
// named ergo_…@127.0.0.1, has the cookie testCookie, listens on 127.0.0.1 only and registers with a
// private pure-Go EPMD on a free loopback port (it starts no EPMD of its own). It dials with handshake
// version 6: ergo's default, the old 'n' form, is refused by OTP 25.0-25.2.
func sharedErgo(t *testing.T) *ergoNode {
	t.Helper()
	shared.once.Do(func() { shared.err = startShared() })
	require.NoError(t, shared.err, "starting the ergo node")
	return shared.node
}

func startShared() error {
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return err
	}
	shared.epmd = &epmd.Server{}
	shared.done = make(chan struct{})
	go func() {
		defer close(shared.done)
		_ = shared.epmd.Serve(ln)
	}()
	epmdPort := ln.Addr().(*net.TCPAddr).Port

	pl, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return err
	}
	port := pl.Addr().(*net.TCPAddr).Port
	_ = pl.Close()

	opts := enode.Options{
		Listeners: []enode.Listener{{Hostname: host, Listen: uint16(port)}},
		Registrar: dist.CreateRegistrarWithRemoteEPMD(host, uint16(epmdPort)),
		Handshake: dist.CreateHandshake(dist.HandshakeOptions{Version: dist.HandshakeVersion6, Timeout: 3 * time.Second}),
		// Without this ergo sends a UDP packet to an outside host a minute after start.
		System: enode.System{DisableAnonMetrics: true},
	}
	n, err := ergo.StartNodeWithContext(context.Background(), fullName("ergo"), testCookie, opts)
	if err != nil {
		return err
	}
	shared.node = &ergoNode{Node: n, port: port, epmdPort: epmdPort}
	return nil
}

// stopShared stops the ergo node and its EPMD, and waits (a bounded time) until no goroutine of
// ergo's is left, since Node.Stop does not wait for them.
func stopShared() {
	if shared.node != nil {
		shared.node.Stop()
		_ = shared.node.WaitWithTimeout(5 * time.Second)
		deadline := time.Now().Add(5 * time.Second)
		for len(ergoGoroutines()) > 0 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
	}
	if shared.epmd != nil {
		_ = shared.epmd.Close()
		<-shared.done
	}
}

// ergoGoroutines returns the stacks of the goroutines that run (or were started by) ergo's code.
func ergoGoroutines() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "github.com/ergo-services/ergo/") {
			out = append(out, g)
		}
	}
	return out
}

// hasNode reports whether list contains name.
func hasNode(list []string, name string) bool {
	for _, n := range list {
		if n == name {
			return true
		}
	}
	return false
}

// caller is an ergo gen.Server that makes gen_server calls on request (Process.Direct), since ergo
// makes calls only from inside a process.
type caller struct{ gen.Server }

// callRequest asks a caller to call To with Request, waiting at most Timeout seconds.
type callRequest struct {
	To      gen.ProcessID
	Request eetf.Term
	Timeout int
}

// callResult is the caller's answer: the reply, or the call's error.
type callResult struct {
	Reply eetf.Term
	Err   error
}

// HandleDirect makes the call asked for.
func (c *caller) HandleDirect(p *gen.ServerProcess, _ eetf.Ref, m interface{}) (interface{}, gen.DirectStatus) {
	r, ok := m.(callRequest)
	if !ok {
		return nil, fmt.Errorf("unexpected direct request %T", m)
	}
	v, err := p.CallWithTimeout(r.To, r.Request, r.Timeout)
	return callResult{Reply: v, Err: err}, gen.DirectStatusOK
}

// spawnCaller starts a caller process on e.
func spawnCaller(t *testing.T, e *ergoNode) gen.Process {
	t.Helper()
	p, err := e.Spawn("", gen.ProcessOptions{}, &caller{})
	require.NoError(t, err)
	t.Cleanup(p.Kill)
	return p
}

// isAuth makes p call {is_auth, p's node} to net_kernel on peer, waiting at most timeout seconds. The
// error is about the caller process itself; the call's own failure is in the result. Safe to use from
// several goroutines.
func isAuth(p gen.Process, peer string, timeout int) (callResult, error) {
	req := callRequest{
		To:      gen.ProcessID{Name: "net_kernel", Node: peer},
		Request: eetf.Tuple{eetf.Atom("is_auth"), eetf.Atom(p.NodeName())},
		Timeout: timeout,
	}
	v, err := p.DirectWithTimeout(req, timeout+5)
	if err != nil {
		return callResult{}, fmt.Errorf("the caller process did not answer: %w", err)
	}
	res, ok := v.(callResult)
	if !ok {
		return callResult{}, fmt.Errorf("the caller process answered %T", v)
	}
	return res, nil
}

// testCtx is a context bounded by d and cancelled when the test ends.
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// directPair starts our node with the given cookie, registered at the ergo node's EPMD (where our
// node's embedded-EPMD mode finds a server already listening), so each side finds the other's real
// listener.
func directPair(t *testing.T, ourCookie string) (*ours, *ergoNode) {
	t.Helper()
	e := sharedErgo(t)
	return startOurs(t, fullName("ours"), ourCookie, e.epmdPort), e
}

// syncBuf collects our node's log output.
type syncBuf = logbuf.Buffer
