package health

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/internal/nodetest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

const testCookie = "health-test-cookie"

// freePort is erltest.FreePort (a port outside the ephemeral range, never handed out twice).
func freePort(t *testing.T) int { return erltest.FreePort(t) }

// uniqueName returns a long node name on 127.0.0.1 never used before.
func uniqueName(prefix string) string { return erltest.UniqueName(prefix) + "@127.0.0.1" }

// startNode starts a node with the embedded EPMD on epmdPort and stops it
// when the test ends.
func startNode(t *testing.T, prefix string, epmdPort int) *process.Node {
	t.Helper()
	return nodetest.Start(t, uniqueName(prefix), testCookie, node.Options{EPMDPort: epmdPort})
}

// connect connects n to every peer.
func connect(t *testing.T, n *process.Node, peers ...*process.Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, p := range peers {
		require.NoError(t, n.Connect(ctx, p.Self()))
	}
}

// silentPeer is a distribution peer that registers with EPMD and completes
// the handshake, then reads and drops everything and never answers: a frozen
// node, seen from the link.
type silentPeer struct {
	name   string
	ln     net.Listener
	reg    *epmd.Registration
	wg     sync.WaitGroup
	mu     sync.Mutex
	conn   []net.Conn
	closed bool
}

func startSilentPeer(t *testing.T, prefix string, epmdPort int) *silentPeer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	name := uniqueName(prefix)
	alive := name[:len(name)-len("@127.0.0.1")]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := epmd.Client{Port: epmdPort}
	reg, err := c.Register(ctx, epmd.NodeInfo{Name: alive, Port: ln.Addr().(*net.TCPAddr).Port})
	if err != nil {
		_ = ln.Close()
	}
	require.NoError(t, err)
	p := &silentPeer{name: name, ln: ln, reg: reg}
	cfg := &handshake.Config{Name: name, Cookie: testCookie, Creation: reg.Creation(), Timeout: 5 * time.Second}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				_ = conn.Close()
				return
			}
			p.conn = append(p.conn, conn)
			p.mu.Unlock()
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				if _, err := handshake.Accept(context.Background(), conn, cfg, nil); err != nil {
					_ = conn.Close()
					return
				}
				_, _ = io.Copy(io.Discard, conn) // never answer
			}()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *silentPeer) close() {
	_ = p.ln.Close()
	_ = p.reg.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conn {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
