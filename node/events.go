package node

import (
	"bytes"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
)

// Events are delivered from one goroutine the node owns, in the order they were emitted, so
// that the code that emits them (addLink, link.close, the dial and accept goroutines) never
// waits for a consumer. The emitters only append to a queue; the event goroutine calls
// Options.OnEvent, then hands the event to every subscriber.
//
// Stop ends the event goroutine after every other goroutine of the node has ended, so every
// event the node emitted (the link downs Stop causes included) is delivered before Stop
// returns. When OnEvent itself calls Stop, Stop cannot wait for the goroutine it runs on: it
// returns once the rest of the node has ended, and the events still queued are delivered
// after the hook returns; then the goroutine ends. An event emitted after the event goroutine
// ended (none is, in the node's own code) is dropped and counted in Stats.EventsDropped.

// maxQueuedEvents bounds the events waiting for a slow OnEvent hook; beyond it an event is
// dropped, counted and logged rather than held without end.
const maxQueuedEvents = 1 << 16

// subscriberBuffer is the channel capacity of one subscription.
const subscriberBuffer = 256

type eventQueue struct {
	mu     sync.Mutex
	q      []Event
	closed bool // Stop ended the queue: the goroutine drains it and ends
	wake   chan struct{}
	done   chan struct{} // closed when the event goroutine has ended
	gid    atomic.Uint64 // the event goroutine's id, for Stop called from OnEvent

	subMu      sync.Mutex
	subs       map[int]chan Event
	subsClosed bool // the event goroutine has closed every subscription
	nextID     int

	dropped atomic.Uint64
}

func (n *Node) startEvents() {
	n.events.wake = make(chan struct{}, 1)
	n.events.done = make(chan struct{})
	n.events.subs = map[int]chan Event{}
	go n.eventLoop()
}

// emit queues e for delivery. It never blocks and may be called from any goroutine, but by the
// lock rule (attempt.go) not with n.mu held.
func (n *Node) emit(e Event) {
	if h := n.opts.testEmitted; h != nil {
		h(e)
	}
	q := &n.events
	q.mu.Lock()
	if q.closed || len(q.q) >= maxQueuedEvents {
		closed := q.closed
		q.mu.Unlock()
		q.dropped.Add(1)
		if !closed {
			n.log.Warn("event dropped: OnEvent is too slow", "kind", e.Kind.String(), "peer", e.Peer)
		}
		return
	}
	q.q = append(q.q, e)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (n *Node) eventLoop() {
	q := &n.events
	q.gid.Store(goroutineID())
	defer close(q.done)
	var batch []Event
	for {
		q.mu.Lock()
		batch, q.q = q.q, batch[:0]
		closed := q.closed
		q.mu.Unlock()
		for i, e := range batch {
			n.deliver(e)
			batch[i] = Event{}
		}
		if len(batch) > 0 {
			continue // more may have come meanwhile
		}
		if closed {
			q.subMu.Lock()
			for id, ch := range q.subs {
				close(ch)
				delete(q.subs, id)
			}
			q.subsClosed = true
			q.subMu.Unlock()
			return
		}
		<-q.wake
	}
}

// deliver hands one event to OnEvent and to every subscriber, on the event goroutine.
func (n *Node) deliver(e Event) {
	if n.opts.OnEvent != nil {
		n.opts.OnEvent(e)
	}
	q := &n.events
	q.subMu.Lock()
	defer q.subMu.Unlock()
	for _, ch := range q.subs {
		select {
		case ch <- e:
		default:
			q.dropped.Add(1)
			n.log.Warn("event dropped: a subscriber does not read", "kind", e.Kind.String(), "peer", e.Peer)
		}
	}
}

// stopEvents ends the event goroutine once the queue is drained, and waits for that unless
// it is the caller (Stop called from OnEvent).
func (n *Node) stopEvents() {
	q := &n.events
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	if goroutineID() == q.gid.Load() {
		return
	}
	<-q.done
}

// Subscribe returns a channel that receives every event emitted from now on, in order, and a
// function that ends the subscription (it closes the channel; calling it again does nothing).
// The channel is also closed when the node has stopped. It is buffered; a subscriber that
// falls more than 256 events behind loses the newer ones (counted in Stats.EventsDropped and
// logged), so it never stalls the node or other subscribers. On a nil node the channel is
// closed at once.
func (n *Node) Subscribe() (<-chan Event, func()) {
	ch := make(chan Event, subscriberBuffer)
	if n == nil {
		close(ch)
		return ch, func() {}
	}
	q := &n.events
	q.subMu.Lock()
	if q.subsClosed {
		q.subMu.Unlock()
		close(ch)
		return ch, func() {}
	}
	id := q.nextID
	q.nextID++
	q.subs[id] = ch
	q.subMu.Unlock()
	return ch, func() {
		q.subMu.Lock()
		defer q.subMu.Unlock()
		if c, ok := q.subs[id]; ok {
			delete(q.subs, id)
			close(c)
		}
	}
}

// goroutineID returns the id of the calling goroutine, read from its stack header
// ("goroutine 18 [running]:"). Only Stop uses it, to tell whether it runs on the event
// goroutine.
func goroutineID() uint64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	b = bytes.TrimPrefix(b, []byte("goroutine "))
	if i := bytes.IndexByte(b, ' '); i > 0 {
		b = b[:i]
	}
	id, _ := strconv.ParseUint(string(b), 10, 64)
	return id
}
