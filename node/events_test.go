package node

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// within fails the test unless ch is closed (or receives) within d: a bounded wait for
// something that must happen, so a deadlock fails instead of hanging.
func within[T any](t *testing.T, ch <-chan T, d time.Duration, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(d):
		t.Fatalf("%s: not within %v (deadlock?)", what, d)
	}
	var zero T
	return zero
}

// TestEventHookReentrant (regression): an OnEvent hook that called Disconnect on
// EventHandshakeOK deadlocked Connect (link.close waited for an announcement made only after
// the hook returned) and then Stop. Events now come from the node's own goroutine, so a hook
// may call Disconnect, Connect and Stop.
func TestEventHookReentrant(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	b := startNode(t, shortName("b"), testCookie, Options{EPMDPort: port})
	var (
		mu      sync.Mutex
		seen    []EventKind
		ups     int
		a       *Node
		ready   = make(chan struct{})
		stopped = make(chan error, 1)
		reconn  = make(chan error, 1)
	)
	hook := func(e Event) {
		<-ready // a is set
		mu.Lock()
		seen = append(seen, e.Kind)
		if e.Kind == EventHandshakeOK {
			ups++
		}
		n := ups
		mu.Unlock()
		if e.Kind != EventHandshakeOK {
			return
		}
		switch n {
		case 1:
			assert.True(t, a.Disconnect(e.Peer), "the link the event announces is up")
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			reconn <- a.Connect(ctx, e.Peer)
		case 2:
			stopped <- a.Stop()
		}
	}
	a = startNode(t, shortName("a"), testCookie, Options{EPMDPort: port, OnEvent: hook})
	close(ready)

	connected := make(chan error, 1)
	go func() { connected <- a.Connect(testCtx(t, 5*time.Second), b.Self()) }()
	require.NoError(t, within(t, connected, 10*time.Second, "Connect with a hook that disconnects"))
	require.NoError(t, within(t, reconn, 10*time.Second, "Connect from inside the hook"))
	require.NoError(t, within(t, stopped, 10*time.Second, "Stop from inside the hook"))
	assert.False(t, a.IsDistributed())
	// Stop called from the hook returns before the event goroutine ends; it ends once the
	// hook has returned and the queued events are delivered.
	within(t, a.events.done, 10*time.Second, "the event goroutine ending")
	require.NoError(t, a.Stop(), "a second Stop is a no-op")

	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []EventKind{EventHandshakeOK, EventLinkDown, EventHandshakeOK, EventLinkDown}, seen,
		"in order, the link downs Stop caused included")
	assert.Zero(t, a.Stats().EventsDropped)
}

// TestEventHookStopWaitsForDelivery: a Stop from outside waits for a hook that is still
// running, and delivers every event emitted before it returns.
func TestEventHookStopWaitsForDelivery(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	var ev events
	release := make(chan struct{})
	a := startNode(t, shortName("a"), testCookie, Options{EPMDPort: port, OnEvent: func(e Event) {
		if e.Kind == EventHandshakeOK {
			<-release // a slow hook
		}
		ev.add(e)
	}})
	b := startNode(t, shortName("b"), testCookie, Options{EPMDPort: port})
	require.NoError(t, a.Connect(testCtx(t, 5*time.Second), b.Self()), "Connect does not wait for the hook")
	stopped := make(chan error, 1)
	go func() { stopped <- a.Stop() }()
	// Stop has begun (and closed the link) while the hook still holds the first event.
	require.Eventually(t, func() bool { return !a.IsDistributed() && a.ConnectedCount() == 0 }, 5*time.Second, time.Millisecond)
	close(release)
	require.NoError(t, within(t, stopped, 10*time.Second, "Stop"))
	// No waiting: Stop has delivered everything.
	kinds := []EventKind{}
	for _, e := range ev.list() {
		kinds = append(kinds, e.Kind)
	}
	assert.Equal(t, []EventKind{EventHandshakeOK, EventLinkDown}, kinds)
}

func TestSubscribe(t *testing.T) {
	t.Parallel()
	a, b := pair(t, Options{})
	ch, cancel := a.Subscribe()
	ch2, cancel2 := a.Subscribe()
	require.NoError(t, a.Connect(testCtx(t, 5*time.Second), b.Self()))
	up := within(t, ch, 5*time.Second, "EventHandshakeOK")
	assert.Equal(t, EventHandshakeOK, up.Kind)
	assert.Equal(t, b.Self(), up.Peer)
	assert.False(t, up.Inbound)
	require.True(t, a.Disconnect(b.Self()))
	down := within(t, ch, 5*time.Second, "EventLinkDown")
	assert.Equal(t, EventLinkDown, down.Kind)
	assert.Error(t, down.Err)

	cancel()
	cancel() // again: nothing
	waitClosed(t, ch, time.Second, "cancel closes the channel")

	require.NoError(t, a.Stop())
	var kinds []EventKind
	for e := range ch2 { // closed by Stop, after every event
		kinds = append(kinds, e.Kind)
	}
	assert.Equal(t, []EventKind{EventHandshakeOK, EventLinkDown}, kinds)
	cancel2() // after Stop: nothing

	late, cancel3 := a.Subscribe()
	waitClosed(t, late, time.Second, "a subscription to a stopped node is closed")
	cancel3()

	var nilNode *Node
	nc, ncancel := nilNode.Subscribe()
	waitClosed(t, nc, time.Second, "a subscription to a nil node is closed")
	ncancel()
}

// waitClosed fails unless ch is closed within d (events still in it are dropped).
func waitClosed(t *testing.T, ch <-chan Event, d time.Duration, what string) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("%s: channel not closed within %v", what, d)
		}
	}
}

// TestSubscriberThatDoesNotRead: a subscriber that falls behind loses events (counted), and
// neither OnEvent nor other subscribers stall.
func TestSubscriberThatDoesNotRead(t *testing.T) {
	t.Parallel()
	var ev events
	n := startNode(t, shortName("a"), testCookie, Options{EPMDPort: freePort(t), OnEvent: ev.add})
	_, cancel := n.Subscribe()
	defer cancel()
	const total = subscriberBuffer + 44
	for range total {
		n.emit(Event{Kind: EventEPMDRegistered})
	}
	require.Eventually(t, func() bool { return ev.count(EventEPMDRegistered) == total }, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, uint64(44), n.Stats().EventsDropped)
}
