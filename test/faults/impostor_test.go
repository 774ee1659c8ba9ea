package faults

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// halfHandshake opens a connection to port, sends a name message under
// name, reads the status and the challenge, and then stalls: an
// unauthenticated handshake in progress under someone else's name.
func halfHandshake(t *testing.T, port int, name string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	_, err = conn.Write(nameMessage(name))
	require.NoError(t, err)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	st, err := readFrame2(conn)
	require.NoError(t, err)
	require.Equal(t, "sok", string(st), "the acceptor took the impostor's name message")
	ch, err := readFrame2(conn)
	require.NoError(t, err)
	require.Equal(t, byte('N'), ch[0], "the challenge")
	return conn
}

// TestImpostorHalfHandshake: an unauthenticated peer that starts a
// handshake under a genuine peer's name and stalls must not lock the
// genuine peer out. A BEAM acceptor whose name sorts lower drops the older
// pending handshake and accepts the new one (net_kernel's accept_pending:
// "remarked"); one whose name sorts higher answers nok. Our node lets the
// newer handshake go on beside the pending one whatever the names (the first
// to finish wins); a real erl is the reference.
func TestImpostorHalfHandshake(t *testing.T) {
	const setup = 2 * time.Second
	cookie := newCookie("impostor")
	_, epmdPort := startEPMDServer(t, 0, nil)
	rw := report.add(t, "an unauthenticated half handshake under a genuine peer's name, then the genuine peer connects", 0, "")
	var results []string

	connectAfterImpostor := func(t *testing.T, acceptorPort int, acceptor string, genuine *process.Node) (time.Duration, error) {
		t.Helper()
		halfHandshake(t, acceptorPort, genuine.Self())
		start := time.Now()
		err := genuine.Connect(ctxFor(t, 3*setup), acceptor)
		return time.Since(start), err
	}

	t.Run("go-acceptor-lower", func(t *testing.T) {
		lo := startNode(t, shortName("imp_a"), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: epmdPort, SetupTimeout: setup})
		hi := startNode(t, shortName("imp_b"), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: epmdPort, SetupTimeout: setup})
		require.Less(t, lo.Self(), hi.Self())
		took, err := connectAfterImpostor(t, lo.Port(), lo.Self(), hi)
		results = append(results, fmt.Sprintf("Go acceptor (lower name): %s after %v", errOrOK(err), took.Round(time.Millisecond)))
		if !assert.NoError(t, err, "the genuine peer connects despite the impostor's stalled handshake (BEAM's lower-named acceptor accepts it)") {
			report.lose(rw, fmt.Sprintf("the genuine peer was locked out: %s after %v", errOrOK(err), took.Round(time.Millisecond)))
		}
		assert.Less(t, took, time.Second)
	})
	t.Run("go-acceptor-higher", func(t *testing.T) {
		lo := startNode(t, shortName("imp_a"), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: epmdPort, SetupTimeout: setup})
		hi := startNode(t, shortName("imp_b"), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: epmdPort, SetupTimeout: setup})
		took, err := connectAfterImpostor(t, hi.Port(), hi.Self(), lo)
		results = append(results, fmt.Sprintf("Go acceptor (higher name): %s after %v", errOrOK(err), took.Round(time.Millisecond)))
		// BEAM answers nok here (and its peer gets pang); our node lets the
		// newer handshake go on beside the pending one whatever the names.
		if !assert.NoError(t, err, "the genuine peer connects despite the impostor's stalled handshake") {
			report.lose(rw, fmt.Sprintf("the genuine peer was locked out: %s after %v", errOrOK(err), took.Round(time.Millisecond)))
		}
		assert.Less(t, took, time.Second)
	})
	t.Run("erl-acceptor-lower", func(t *testing.T) {
		erltest.ForEachRuntimeSerial(t, func(t *testing.T, rt *erltest.Runtime) {
			beam := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, Name: erltest.UniqueName("imp_a"), Cookie: cookie, EPMDPort: epmdPort})
			hi := startNode(t, shortName("imp_b"), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: epmdPort, SetupTimeout: setup})
			require.Less(t, beam.Node(), hi.Self())
			port := erlDistPort(t, epmdPort, beam.Node())
			took, err := connectAfterImpostor(t, port, beam.Node(), hi)
			results = append(results, fmt.Sprintf("erl acceptor %s (lower name, reference): %s after %v", rt.Name, errOrOK(err), took.Round(time.Millisecond)))
			assert.NoError(t, err, "reference: a lower-named BEAM acceptor lets the genuine peer in")
		})
	})
	report.set(rw, len(results), strings.Join(results, "; "))
}

func errOrOK(err error) string {
	var ce *node.ConnectError
	switch {
	case err == nil:
		return "connected"
	case errors.As(err, &ce):
		return "failed (" + ce.Kind.String() + ")"
	}
	return "failed"
}
