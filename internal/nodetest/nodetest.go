// Package nodetest starts Go nodes (package process, on package node) for tests outside package node and records their
// events. Package node's own tests cannot import it (it imports node); they use internal/procs directly.
package nodetest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/distribute-go/distribute/internal/logbuf"
	"github.com/distribute-go/distribute/internal/procs"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// stopWithin bounds Stop on test cleanup.
const stopWithin = 15 * time.Second

// Start starts a node named name and stops it when the test ends. A zero opts.ListenAddr becomes
// 127.0.0.1 (loopback only). With opts.Logger nil the node logs at debug level into a buffer printed if
// the test fails. Start-up is bounded by 10 s; a failure fails the test. opts.EPMDPort must be set: every
// test has its own EPMD port.
func Start(t testing.TB, name, cookie string, opts node.Options) *process.Node {
	t.Helper()
	if opts.EPMDPort == 0 {
		t.Fatalf("nodetest: starting %s: opts.EPMDPort must be set (a private EPMD port per test)", name)
	}
	if opts.ListenAddr == "" {
		opts.ListenAddr = "127.0.0.1"
	}
	if opts.Logger == nil {
		opts.Logger = DebugLogger(t, name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := process.Start(ctx, name, cookie, &process.Options{Node: opts})
	if err != nil {
		t.Fatalf("nodetest: starting %s: %v", name, err)
	}
	t.Cleanup(func() {
		done := make(chan error, 1)
		go func() { done <- n.Stop() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("nodetest: Stop %s: %v", name, err)
			}
		case <-time.After(stopWithin):
			t.Errorf("nodetest: Stop %s did not return within %v", name, stopWithin)
		}
	})
	return n
}

// DebugLogger returns a debug-level logger into a buffer that is printed, headed by what, if the test
// fails.
func DebugLogger(t testing.TB, what string) *slog.Logger {
	t.Helper()
	buf := &logbuf.Buffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of %s:\n%s", what, buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Events records what a node reports to node.Options.OnEvent (pass Events.Add). The zero value is ready.
type Events struct {
	procs.Recorder[node.Event]
}

// CountKind returns how many events of kind k about peer ("" = any) came after position from.
func (e *Events) CountKind(from int, k node.EventKind, peer string) int {
	return e.Count(from, func(ev node.Event) bool { return ev.Kind == k && (peer == "" || ev.Peer == peer) })
}

// Find returns the first event of kind k about peer.
func (e *Events) Find(k node.EventKind, peer string) (node.Event, bool) {
	for _, ev := range e.List() {
		if ev.Kind == k && ev.Peer == peer {
			return ev, true
		}
	}
	return node.Event{}, false
}

// Wait waits up to within for the first event of kind k about peer and returns it; the test fails when
// none comes.
func (e *Events) Wait(t testing.TB, k node.EventKind, peer string, within time.Duration) node.Event {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if ev, ok := e.Find(k, peer); ok {
			return ev
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodetest: no %v event about %s within %v: %+v", k, peer, within, e.List())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
