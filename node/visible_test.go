package node

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
)

// regSendRecorder is testHandler that also keeps every REG_SEND (name and decoded message) and
// signals each on got.
type regSendRecorder struct {
	*testHandler
	mu   sync.Mutex
	sent []recordedRegSend
	got  chan struct{}
}

type recordedRegSend struct {
	to  etf.Atom
	msg etf.Term
}

func newRegSendRecorder() *regSendRecorder {
	return &regSendRecorder{testHandler: newTestHandler(), got: make(chan struct{}, 1)}
}

func (h *regSendRecorder) HandleMessage(c *Conn, m control.Message, p control.Payload) {
	if rs, ok := m.(control.RegSend); ok {
		if t, err := p.Decode(); err == nil {
			h.mu.Lock()
			h.sent = append(h.sent, recordedRegSend{rs.To, t})
			h.mu.Unlock()
			select {
			case h.got <- struct{}{}:
			default:
			}
		}
	}
	h.testHandler.HandleMessage(c, m, p)
}

// waitFor waits until a REG_SEND to name whose message match accepts has arrived.
func (h *regSendRecorder) waitFor(t *testing.T, name etf.Atom, match func(etf.Term) bool, within time.Duration) etf.Term {
	t.Helper()
	deadline := time.After(within)
	for {
		h.mu.Lock()
		for _, r := range h.sent {
			if r.to == name && match(r.msg) {
				h.mu.Unlock()
				return r.msg
			}
		}
		h.mu.Unlock()
		select {
		case <-h.got:
		case <-deadline:
			t.Fatalf("no message to %s within %v", name, within)
			return nil
		}
	}
}

// TestVisible: a node with Options.Visible is published: BEAM lists it in nodes() (a hidden
// node only in nodes(hidden)), net_kernel:monitor_nodes(true) reports its nodeup and nodedown,
// both ends see the connection as visible, and BEAM sends it what it sends a published peer on
// connect: {Pid, features_request} to rex and {'$gen_cast', {init_connect, ...}} to
// global_name_server.
func TestVisible(t *testing.T) { erltest.ForEachRuntime(t, testVisible) }

func testVisible(t *testing.T, rt *erltest.Runtime) {
	port := freePort(t)
	rt.StartEPMD(t, port)
	erl := rt.StartErl(t, erltest.ErlOptions{Cookie: testCookie, EPMDPort: port, Control: true})
	eval := func(expr string) string {
		t.Helper()
		out, err := erl.Eval(expr, 30*time.Second)
		require.NoError(t, err, "%s\n%s", expr, erl.Output())
		return out
	}
	require.Equal(t, "ok", eval(`net_kernel:monitor_nodes(true)`))

	hidden := startNode(t, shortName("hidden"), testCookie, Options{EPMDPort: port, EPMD: EPMDExternal})
	rec := newRegSendRecorder()
	visible := startNode(t, shortName("visible"), testCookie, Options{EPMDPort: port, EPMD: EPMDExternal,
		Visible: true, Handler: rec})

	ctx := testCtx(t, 20*time.Second)
	require.NoError(t, hidden.Connect(ctx, erl.Node()))
	require.NoError(t, visible.Connect(ctx, erl.Node()))
	assert.False(t, hidden.Conn(erl.Node()).Visible(), "a hidden node's connection is hidden")
	assert.True(t, visible.Conn(erl.Node()).Visible(), "a visible node's connection to BEAM is visible")

	// monitor_nodes(true) reports visible nodes only: the hidden node connected first, so the
	// first nodeup is the visible one's.
	assert.Equal(t, visible.Self(), eval(`receive {nodeup, N} -> N after 20000 -> timeout end`))
	assert.Equal(t, "["+visible.Self()+"]", eval(`nodes()`))
	assert.Equal(t, "["+hidden.Self()+"]", eval(`nodes(hidden)`))

	// What BEAM sends a published peer on connect.
	fr := rec.waitFor(t, "rex", func(m etf.Term) bool {
		tt, ok := m.(etf.Tuple)
		return ok && len(tt) == 2 && tt[1] == etf.Atom("features_request")
	}, 20*time.Second)
	_, isPid := fr.(etf.Tuple)[0].(etf.Pid)
	assert.True(t, isPid, "{Pid, features_request}: %v", fr)
	ic := rec.waitFor(t, "global_name_server", func(m etf.Term) bool {
		tt, ok := m.(etf.Tuple)
		if !ok || len(tt) != 2 || tt[0] != etf.Atom("$gen_cast") {
			return false
		}
		req, ok := tt[1].(etf.Tuple)
		return ok && len(req) > 0 && req[0] == etf.Atom("init_connect")
	}, 20*time.Second)
	assert.Len(t, ic.(etf.Tuple)[1], 4, "{init_connect, {Vsn, Tag}, Node, Locker}: %v", ic)

	// Its nodedown is reported too.
	require.True(t, visible.Disconnect(erl.Node()))
	assert.Equal(t, visible.Self(), eval(`receive {nodedown, N} -> N after 20000 -> timeout end`))
	assert.Equal(t, "[]", strings.TrimSpace(eval(`nodes()`)))
}
