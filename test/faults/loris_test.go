package faults

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
)

// lorisSession is one slow-loris connection, from dial to its end.
type lorisSession struct {
	kind   string // "dist" or "epmd"
	local  string // our address: the server logs it as remote=
	sent   int    // bytes sent
	closed bool   // the server closed or reset it
	after  time.Duration
	err    error
}

// lorisPool keeps `slots` slow-loris connections open against addr: each
// sends the next byte of payload once a second; when the server drops one,
// the slot dials again, until stop.
type lorisPool struct {
	kind    string
	addr    string
	payload []byte
	limit   time.Duration // give up on a session after this (it was not dropped)

	live     atomic.Int64
	stopping atomic.Bool
	wg       sync.WaitGroup
	mu       sync.Mutex
	sessions []lorisSession
}

func (p *lorisPool) start(slots int) {
	for range slots {
		p.wg.Go(p.slot)
	}
}

func (p *lorisPool) slot() {
	for !p.stopping.Load() {
		s := p.session()
		p.mu.Lock()
		p.sessions = append(p.sessions, s)
		p.mu.Unlock()
		if s.err != nil && s.local == "" {
			return // could not dial: recorded as an error
		}
	}
}

func (p *lorisPool) session() lorisSession {
	s := lorisSession{kind: p.kind}
	// The clock starts before the dial: the server cannot accept (and start
	// its deadline) earlier, however late this goroutine runs afterwards.
	start := time.Now()
	conn, err := net.DialTimeout("tcp", p.addr, 5*time.Second)
	if err != nil {
		s.err = err
		return s
	}
	defer conn.Close()
	s.local = conn.LocalAddr().String()
	p.live.Add(1)
	defer p.live.Add(-1)
	buf := make([]byte, 64)
	for {
		if s.sent < len(p.payload) {
			_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := conn.Write(p.payload[s.sent : s.sent+1]); err != nil {
				s.after, s.closed, s.err = time.Since(start), isClosed(err), err
				return s
			}
			s.sent++
		}
		// Wait a second for the server to close (or say something).
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		_, err := conn.Read(buf)
		var ne net.Error
		switch {
		case err == nil:
			s.after, s.err = time.Since(start), errors.New("the server sent data to a slow loris")
			return s
		case errors.As(err, &ne) && ne.Timeout():
			if time.Since(start) > p.limit {
				s.after, s.err = time.Since(start), fmt.Errorf("not dropped after %v", p.limit)
				return s
			}
		default:
			s.after, s.closed, s.err = time.Since(start), isClosed(err), err
			return s
		}
	}
}

func (p *lorisPool) stop() []lorisSession {
	p.stopping.Store(true)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]lorisSession(nil), p.sessions...)
}

// nameMessage is a well-formed version 6 name message frame, as a BEAM
// initiator sends it first.
func nameMessage(name string) []byte {
	b := []byte{0, 0, 'N'}
	b = binary.BigEndian.AppendUint64(b, uint64(handshake.DefaultFlags))
	b = binary.BigEndian.AppendUint32(b, 1234)
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	b = append(b, name...)
	binary.BigEndian.PutUint16(b, uint16(len(b)-2))
	return b
}

// TestSlowLoris: 200 peers trickle one byte per second into the
// distribution port and 200 into the EPMD port (our in-process server).
// Each is dropped at the setup deadline, with a logged reason, and meanwhile
// a real erl node pings our node pong and our node pings it back.
func TestSlowLoris(t *testing.T) {
	erltest.RequireErl(t)
	const (
		peers = 200
		setup = 2 * time.Second
		early = 20 * time.Millisecond // timer and clock granularity: the server's clock starts after ours
		late  = 1500 * time.Millisecond
	)
	cookie := newCookie("loris")
	logs := &logBuf{}
	log := debugLogger(logs)
	_, epmdPort := startEPMDServer(t, setup, log)
	var ev events
	n := startNode(t, shortName("loris"), cookie, node.Options{
		EPMD: node.EPMDExternal, EPMDPort: epmdPort, SetupTimeout: setup, Logger: log, OnEvent: ev.add,
	})
	erl := startErl(t, nil, "erl_loris", cookie, epmdPort, 0)
	rw := report.add(t, "slow-loris peers (1 byte/s), 200 on the distribution port + 200 on EPMD, redialled when dropped (times = sessions)", 0, "")

	dist := &lorisPool{kind: "dist", addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port())),
		payload: nameMessage("loris@localhost"), limit: setup + 5*time.Second}
	ep := &lorisPool{kind: "epmd", addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(epmdPort)),
		payload: append([]byte{0, 11, 122}, "lorisname1"...), limit: setup + 5*time.Second}
	began := time.Now()
	dist.start(peers)
	ep.start(peers)
	stopped := false
	stopAll := func() []lorisSession {
		if stopped {
			return nil
		}
		stopped = true
		dist.stopping.Store(true)
		ep.stopping.Store(true)
		return append(dist.stop(), ep.stop()...)
	}
	t.Cleanup(func() { stopAll() })

	_, ok := waitFor(setup/2, func() bool { return dist.live.Load() == peers && ep.live.Load() == peers })
	require.True(t, ok, "all %d slow peers connected (dist %d, epmd %d)", 2*peers, dist.live.Load(), ep.live.Load())

	// While they hang on: erl dials us (EPMD lookup at the besieged EPMD,
	// then the besieged distribution port), then we dial erl.
	assert.Equal(t, "pong", erlPing(t, erl, n.Self()), "erl pings our node while %d slow peers hang on", 2*peers)
	liveAtErlPing := dist.live.Load() + ep.live.Load()
	erlEval(t, erl, fmt.Sprintf("erlang:disconnect_node('%s')", n.Self()))
	_, ok = waitFor(5*time.Second, func() bool { return n.ConnectedCount() == 0 })
	require.True(t, ok, "erl's disconnect reached our node")
	assert.True(t, n.Ping(ctxFor(t, 5*time.Second), erl.Node()), "our node pings erl while slow peers hang on")
	liveAtGoPing := dist.live.Load() + ep.live.Load()
	t.Logf("slow peers connected when erl got pong: %d, when we got pong: %d (%v after they started)",
		liveAtErlPing, liveAtGoPing, time.Since(began).Round(time.Millisecond))
	assert.GreaterOrEqual(t, liveAtErlPing, int64(2*peers*9/10), "the pings ran while the slow peers hung on")
	assert.GreaterOrEqual(t, liveAtGoPing, int64(2*peers*9/10), "the pings ran while the slow peers hung on")

	// Let at least one whole generation be dropped, then stop.
	if rest := setup + setup/2 - time.Since(began); rest > 0 {
		time.Sleep(rest)
	}
	sessions := stopAll()

	// Every session was dropped by the server at the setup deadline, with a
	// logged reason.
	counts := map[string]int{}
	worstEarly, worstLate := time.Duration(1<<62), time.Duration(0)
	// The node logs a failed handshake (and reports its event) just after
	// closing the connection: let the last ones land.
	isTimeout := func(e node.Event) bool { return e.Inbound && errors.Is(e.Err, handshake.ErrTimeout) }
	distSessions := 0
	for _, s := range sessions {
		if s.kind == "dist" {
			distSessions++
		}
	}
	waitFor(2*time.Second, func() bool {
		return ev.count(node.EventHandshakeFailed, "", isTimeout) >= distSessions &&
			len(logs.Lines(`msg="inbound handshake failed"`)) >= distSessions
	})
	distLogs := byRemote(logs, "inbound handshake failed")
	epmdLogs := byRemote(logs, "epmd: closing connection without reply")
	for _, s := range sessions {
		counts[s.kind]++
		if !assert.True(t, s.closed, "%s slow peer %s was dropped by the server (ended with %v after %v)", s.kind, s.local, s.err, s.after) {
			continue
		}
		worstEarly, worstLate = min(worstEarly, s.after), max(worstLate, s.after)
		assert.True(t, s.after >= setup-early && s.after <= setup+late,
			"%s slow peer %s dropped after %v, want the %v setup deadline", s.kind, s.local, s.after, setup)
		assert.Less(t, s.sent, len(dist.payload), "a slow peer never completed its message")
		byRemote := distLogs
		if s.kind == "epmd" {
			byRemote = epmdLogs
		}
		if lines := byRemote[s.local]; assert.NotEmpty(t, lines, "a log line for %s slow peer %s", s.kind, s.local) {
			assert.Contains(t, lines[0], "timeout", "the logged reason of %s", s.local)
		}
	}
	assert.GreaterOrEqual(t, counts["dist"], peers)
	assert.GreaterOrEqual(t, counts["epmd"], peers)
	timeouts := ev.count(node.EventHandshakeFailed, "", isTimeout)
	assert.Equal(t, counts["dist"], timeouts, "one inbound handshake timeout event per slow distribution peer")
	assert.True(t, n.EPMDRegistered(), "our node is still registered")
	t.Logf("%d dist + %d epmd slow sessions, dropped between %v and %v", counts["dist"], counts["epmd"], worstEarly, worstLate)
	report.set(rw, counts["dist"]+counts["epmd"], fmt.Sprintf(
		"all dropped at %v..%v (deadline %v) with a logged reason; erl->go pong and go->erl pong with %d/%d slow peers hanging",
		worstEarly.Round(time.Millisecond), worstLate.Round(time.Millisecond), setup, min(liveAtErlPing, liveAtGoPing), 2*peers))
}
