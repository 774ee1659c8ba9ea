package node

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
)

// maxQueue bounds the bytes waiting to be written on one link; a peer
// that stops reading is dropped rather than growing memory without end.
const maxQueue = 64 << 20

var (
	errLinkClosed  = errors.New("link closed")
	errQueueFull   = errors.New("send queue overflow: the peer does not read")
	errTickTimeout = errors.New("net_tick_timeout: the peer sent nothing within the tick time")
)

// link is one established distribution connection. It owns a reader and a
// writer goroutine; the node's tick loop calls tick.
type link struct {
	n            *Node
	conn         net.Conn
	peer         string
	flags        handshake.Flags // negotiated
	peerCreation uint32
	headers      bool  // FRAGMENTS negotiated: we send "131 68 0" frames
	pub          *Conn // what the Handler sees
	h            Handler

	read    atomic.Bool  // something was read since the last tick check
	written atomic.Int64 // bytes written so far
	// Tick loop only:
	silent      int   // tick intervals without reads
	lastWritten int64 // written at the last check
	tickBytes   int64 // bytes of the tick queued at the last check

	wmu    sync.Mutex
	wbuf   []byte
	spare  []byte
	wake   chan struct{}
	closed bool

	done      chan struct{}
	announced chan struct{} // closed once EventHandshakeOK was emitted
	closeOnce sync.Once
	reason    error
}

func newLink(n *Node, conn net.Conn, res *handshake.Result) *link {
	l := &link{
		n:            n,
		conn:         conn,
		peer:         res.Peer.Name,
		flags:        res.Flags,
		peerCreation: res.Peer.Creation,
		headers:      res.Flags&handshake.FlagFragments != 0,
		h:            n.handler,
		wake:         make(chan struct{}, 1),
		done:         make(chan struct{}),

		announced: make(chan struct{}),
	}
	l.pub = &Conn{l: l}
	return l
}

func (l *link) start() {
	l.n.wg.Add(2)
	go l.readLoop()
	go l.writeLoop()
}

// close drops the link once; reason says why.
func (l *link) close(reason error) {
	l.closeOnce.Do(func() {
		l.reason = reason
		l.wmu.Lock()
		l.closed = true
		l.wmu.Unlock()
		_ = l.conn.Close()
		close(l.done)
		// Report the end only after the start: an OnEvent consumer
		// never sees a link go down before it came up.
		<-l.announced
		l.n.removeLink(l, reason)
	})
}

// tick runs on the node's tick loop every TickTime/4.
func (l *link) tick() {
	if l.read.Swap(false) {
		l.silent = 0
	} else {
		l.silent++
		if l.silent >= 4 { // BEAM's dist_util: down on the 4th silent check, after T..1.25T of silence
			l.close(errTickTimeout)
			return
		}
	}
	// Tick when nothing but our own last tick was written since the last
	// check, so an idle link ticks every TickTime/4 like BEAM (a tick must
	// not count as the traffic that makes the next tick unnecessary).
	w := l.written.Load()
	if w-l.lastWritten <= l.tickBytes {
		if l.enqueue(func(b []byte) ([]byte, error) { return append(b, 0, 0, 0, 0), nil }) == nil {
			l.tickBytes = 4
		}
	} else {
		l.tickBytes = 0
	}
	l.lastWritten = w
}

// enqueue appends one frame built by fill to the write queue.
func (l *link) enqueue(fill func([]byte) ([]byte, error)) error {
	l.wmu.Lock()
	if l.closed {
		l.wmu.Unlock()
		return errLinkClosed
	}
	start := len(l.wbuf)
	b, err := fill(l.wbuf)
	if err != nil {
		l.wbuf = l.wbuf[:start]
		l.wmu.Unlock()
		return err
	}
	l.wbuf = b
	full := len(l.wbuf) > maxQueue
	l.wmu.Unlock()
	if full {
		l.close(errQueueFull)
		return errQueueFull
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
	return nil
}

// send queues one frame with a control message and, when it has one, its payload: a
// pass-through 'p' frame, or, when FRAGMENTS was negotiated, a normal distribution header
// "131 68 0" (no atom cache references) followed by the terms without version bytes. Our
// messages are never fragmented: BEAM takes whole frames of any size.
func (l *link) send(m control.Message, payload etf.Term) error {
	return l.enqueue(func(b []byte) ([]byte, error) {
		return control.AppendFrame(b, l.headers, m, payload)
	})
}

func (l *link) writeLoop() {
	defer l.n.wg.Done()
	for {
		select {
		case <-l.wake:
		case <-l.done:
			return
		}
		// Let the callers just woken by replies queue their frames first:
		// one write then carries them all (measured: ~6x fewer writes per
		// call with 64 concurrent callers; docs/bench.md).
		runtime.Gosched()
		// Swap the queue for the spare buffer; the writer owns buf until
		// it hands it back as the next spare, so the two never alias.
		l.wmu.Lock()
		buf := l.wbuf
		l.wbuf, l.spare = l.spare[:0], nil
		l.wmu.Unlock()
		if len(buf) > 0 {
			// A peer that does not take our bytes within the tick time is
			// as dead as a silent one.
			_ = l.conn.SetWriteDeadline(time.Now().Add(l.n.opts.TickTime))
			if _, err := l.conn.Write(buf); err != nil {
				l.close(fmt.Errorf("write: %w", err))
				return
			}
			l.written.Add(int64(len(buf)))
		}
		if cap(buf) <= 1<<20 {
			l.wmu.Lock()
			l.spare = buf[:0]
			l.wmu.Unlock()
		}
	}
}

// readLoop reads frames until the connection fails, and hands each control message to the
// Handler. A frame larger than the message size limit is skipped without being held in memory,
// and a frame that is malformed or cannot be delivered is skipped, counted and logged: one bad
// message never costs the connection, since frames carry their own length. When the loop ends
// (whoever closed the link) it tells the Handler, after the last message.
func (l *link) readLoop() {
	defer l.n.wg.Done()
	defer l.n.own()() // it calls the Handler
	r := bufio.NewReaderSize(l.conn, 4096)
	fr := control.Reader{MaxMessage: l.n.opts.MaxMessageSize}
	if f, ok := l.h.(MessageFilter); ok {
		fr.Want = func(m control.Message) bool { return f.WantMessage(l.pub, m) }
	}
	var hdr [4]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			l.close(readErr(err))
			break
		}
		l.read.Store(true)
		size := int64(binary.BigEndian.Uint32(hdr[:]))
		if size == 0 {
			continue // tick
		}
		if size > int64(l.n.opts.MaxMessageSize) {
			// Read it through in small pieces, so the stream stays in step and memory stays
			// bounded; every piece counts as traffic for the tick check.
			l.n.skipped(l.peer, fmt.Errorf("%w: frame of %d bytes exceeds the %d-byte limit", control.ErrTooLarge, size, l.n.opts.MaxMessageSize))
			if err := l.discard(r, size); err != nil {
				l.close(readErr(err))
				break
			}
			continue
		}
		if int64(cap(buf)) < size {
			buf = make([]byte, size)
		}
		buf = buf[:size]
		if _, err := io.ReadFull(r, buf); err != nil {
			l.close(readErr(err))
			break
		}
		m, p, ok, err := fr.Read(buf)
		if err != nil {
			l.n.skipped(l.peer, err)
		}
		if ok {
			l.h.HandleMessage(l.pub, m, p)
		}
		if cap(buf) > 1<<20 {
			buf = nil
		}
	}
	<-l.announced
	l.h.ConnDown(l.pub, l.reason)
}

// discard reads and drops size bytes.
func (l *link) discard(r io.Reader, size int64) error {
	var chunk [32 << 10]byte
	for size > 0 {
		k, err := r.Read(chunk[:min(size, int64(len(chunk)))])
		if k > 0 {
			l.read.Store(true)
			size -= int64(k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("connection closed by peer: %w", err)
	}
	return fmt.Errorf("read: %w", err)
}
