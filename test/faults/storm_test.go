package faults

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// stormPair starts two Go nodes on a private in-process EPMD.
func stormPair(t *testing.T, cookie string, epmdPort int, setup time.Duration) (a, b *process.Node, evA, evB *events) {
	t.Helper()
	evA, evB = &events{}, &events{}
	logs := &logBuf{}
	log := debugLogger(logs)
	a = startNode(t, shortName("storm_a"), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: epmdPort, SetupTimeout: setup, OnEvent: evA.add, Logger: log})
	b = startNode(t, shortName("storm_b"), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: epmdPort, SetupTimeout: setup, OnEvent: evB.add, Logger: log})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log lines of %s and %s about refused (nok) and failed attempts:\n%s\n%s\n%s", a.Self(), b.Self(),
				strings.Join(logs.Lines("simultaneous"), "\n"), strings.Join(logs.Lines("connect failed"), "\n"),
				strings.Join(logs.Lines("inbound handshake failed"), "\n"))
		}
	})
	return a, b, evA, evB
}

// oneLink waits until a and b see each other and exactly one TCP connection
// joins them.
func oneLink(a, b *process.Node) (time.Duration, bool) {
	return waitFor(3*time.Second, func() bool {
		return slices.Equal(a.Nodes(), []string{b.Self()}) && slices.Equal(b.Nodes(), []string{a.Self()}) &&
			establishedOn(a.Port(), b.Port()) == 1
	})
}

// noLink waits until neither a nor b has a link and no TCP connection joins
// them.
func noLink(a, b *process.Node) bool {
	_, ok := waitFor(3*time.Second, func() bool {
		return a.ConnectedCount() == 0 && b.ConnectedCount() == 0 && establishedOn(a.Port(), b.Port()) == 0
	})
	return ok
}

// eventually waits up to a second for ev to hold at least want events of
// kind k.
func eventually(ev *events, k node.EventKind, want int) {
	waitFor(time.Second, func() bool { return ev.count(k, "", nil) >= want })
}

// TestStorms: connection storms must neither duplicate links nor leak.
func TestStorms(t *testing.T) {
	cookie := newCookie("storm")
	_, epmdPort := startEPMDServer(t, 0, nil)

	t.Run("500-concurrent-connects", func(t *testing.T) {
		const calls = 500
		rw := report.add(t, "500 concurrent Connect calls from a Go node to another Go node", calls, "")
		a, b, evA, evB := stormPair(t, cookie, epmdPort, 0)
		storm := func(peer string) []error {
			errs := make([]error, calls)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range calls {
				wg.Go(func() {
					<-start
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					errs[i] = a.Connect(ctx, peer)
				})
			}
			close(start)
			wg.Wait()
			return errs
		}
		for i, err := range storm(b.Self()) {
			require.NoError(t, err, "Connect call %d", i)
		}
		_, ok := oneLink(a, b)
		assert.True(t, ok, "one link (a: %v, b: %v, TCP connections: %d)", a.Nodes(), b.Nodes(), establishedOn(a.Port(), b.Port()))
		eventually(evB, node.EventHandshakeOK, 1)
		assert.Equal(t, 1, evA.count(node.EventHandshakeOK, b.Self(), nil), "one handshake on a")
		assert.Equal(t, 1, evB.count(node.EventHandshakeOK, a.Self(), nil), "one handshake on b")
		report.set(rw, calls, fmt.Sprintf("%d/%d nil, one link (one TCP connection), one handshake per side", calls, calls))

		t.Run("to-erl", func(t *testing.T) {
			erltest.ForEachRuntimeSerial(t, func(t *testing.T, rt *erltest.Runtime) {
				rw := report.add(t, "500 concurrent Connect calls from a Go node to a real erl node", calls, "")
				erl := startErl(t, rt, "erl_storm", cookie, epmdPort, 0)
				for i, err := range storm(erl.Node()) {
					require.NoError(t, err, "Connect call %d to erl", i)
				}
				erlPort := erlDistPort(t, epmdPort, erl.Node())
				var hidden string
				_, ok := waitFor(3*time.Second, func() bool { // erl installs its side a moment later
					hidden = erlEval(t, erl, "nodes(hidden)")
					return hidden == fmt.Sprintf("[%s]", a.Self())
				})
				assert.True(t, ok, "erl sees exactly one hidden node, ours (got %s)", hidden)
				_, ok = waitFor(3*time.Second, func() bool { return establishedOn(erlPort) == 1 })
				assert.True(t, ok, "one TCP connection to erl's distribution port (got %d)", establishedOn(erlPort))
				assert.Equal(t, 1, evA.count(node.EventHandshakeOK, erl.Node(), nil), "one handshake with erl")
				report.set(rw, calls, fmt.Sprintf("%d/%d nil, one link (erl: nodes(hidden) has 1, one TCP connection)", calls, calls))
			})
		})
	})

	t.Run("100-simultaneous-connects", func(t *testing.T) {
		const rounds = 100
		rw := report.add(t, "simultaneous Connect from both sides (Go<->Go), then Disconnect", rounds, "")
		a, b, evA, evB := stormPair(t, cookie, epmdPort, 0)
		good := 0
		for round := range rounds {
			okA, okB := evA.count(node.EventHandshakeOK, "", nil), evB.count(node.EventHandshakeOK, "", nil)
			var errA, errB error
			start := make(chan struct{})
			var wg sync.WaitGroup
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			wg.Go(func() { <-start; errA = a.Connect(ctx, b.Self()) })
			wg.Go(func() { <-start; errB = b.Connect(ctx, a.Self()) })
			close(start)
			wg.Wait()
			cancel()
			require.NoError(t, errA, "round %d: a -> b", round)
			require.NoError(t, errB, "round %d: b -> a", round)
			_, ok := oneLink(a, b)
			require.True(t, ok, "round %d: exactly one link (a: %v, b: %v, TCP connections: %d)", round,
				a.Nodes(), b.Nodes(), establishedOn(a.Port(), b.Port()))
			// The acceptor reports its handshake just after installing the
			// link; then give a late loser the time to show up as a second one.
			eventually(evA, node.EventHandshakeOK, okA+1)
			eventually(evB, node.EventHandshakeOK, okB+1)
			time.Sleep(5 * time.Millisecond)
			require.Equal(t, okA+1, evA.count(node.EventHandshakeOK, "", nil), "round %d: one handshake on a", round)
			require.Equal(t, okB+1, evB.count(node.EventHandshakeOK, "", nil), "round %d: one handshake on b", round)
			if round%10 == 0 {
				require.True(t, a.Ping(ctxFor(t, 5*time.Second), b.Self()), "round %d: the link works", round)
			}
			require.True(t, a.Disconnect(b.Self()))
			require.True(t, noLink(a, b), "round %d: the link is gone after Disconnect", round)
			good++
		}
		report.set(rw, rounds, fmt.Sprintf("%d/%d rounds: both Connect nil, exactly one TCP connection, one handshake per side", good, rounds))
	})

	t.Run("1000-connect-disconnect-cycles", func(t *testing.T) {
		// Back to back, without waiting for the peer to notice the
		// Disconnect: 500 cycles alternating the dialling side, then 500
		// dialling from the same side.
		const (
			cycles      = 1000
			maxFailures = 3 // each costs a setup timeout; stop there
		)
		rw := report.add(t, "Connect + Disconnect cycles, back to back (500 alternating sides, 500 same side): every Connect nil; goroutines and fds before/after", cycles, "")
		a, b, _, _ := stormPair(t, cookie, epmdPort, 2*time.Second)
		cycle := func(i int) (error, bool) {
			from, to := a, b
			if i < cycles/2 && i%2 == 1 {
				from, to = b, a
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			if err := from.Connect(ctx, to.Self()); err != nil {
				return fmt.Errorf("cycle %d: %s -> %s failed after %v: %w", i, from.Self(), to.Self(), time.Since(start).Round(time.Millisecond), err), false
			}
			// false when Connect found a link the peer had just closed
			// (the previous cycle's), which then went down by itself.
			return nil, from.Disconnect(to.Self())
		}
		for i := range 10 { // warm up, cleanly
			err, _ := cycle(i)
			require.NoError(t, err)
			require.True(t, noLink(a, b))
		}
		time.Sleep(100 * time.Millisecond)
		runtime.GC()
		baseG, baseFD := runtime.NumGoroutine(), openFDs(t)
		var failures []string
		done, stale := 0, 0
		for i := range cycles {
			err, disconnected := cycle(i)
			done++
			if err != nil {
				failures = append(failures, err.Error())
				if len(failures) == maxFailures {
					break
				}
			} else if !disconnected {
				stale++
			}
		}
		assert.Empty(t, failures, "every Connect of a connect/disconnect cycle succeeds (stopped after %d failures, %d cycles)", maxFailures, done)
		require.True(t, noLink(a, b), "no link left after the cycles")
		const slack = 3
		g, fd := settle(t, baseG, baseFD, slack, 5*time.Second)
		t.Logf("%d cycles (%d found a stale link), %d failed; goroutines %d -> %d, open fds %d -> %d", done, stale, len(failures), baseG, g, baseFD, fd)
		if !assert.LessOrEqual(t, g, baseG+slack, "goroutines after %d cycles", done) {
			buf := make([]byte, 1<<20)
			t.Logf("goroutines:\n%s", buf[:runtime.Stack(buf, true)])
		}
		assert.LessOrEqual(t, fd, baseFD+slack, "open file descriptors after %d cycles", done)
		survived := fmt.Sprintf("%d cycles, goroutines %d -> %d, open fds %d -> %d (slack %d)", done, baseG, g, baseFD, fd, slack)
		if len(failures) > 0 {
			report.lose(rw, fmt.Sprintf("%d Connect calls failed, first: %s", len(failures), failures[0]))
		}
		report.set(rw, done, survived)
	})
}
