package process

import (
	"context"
	"sync"

	"github.com/distribute-go/distribute/etf"
)

// Process is a Go process of the node: a pid, a mailbox (or a handler function), links and
// monitors. Its methods are safe for concurrent use. A process ends when Exit is called, when
// an exit signal it does not trap arrives, or when the node stops.
type Process struct {
	n       *Node
	pid     etf.Pid
	handler func(p *Process, m etf.Term) // nil: messages go to the mailbox

	// mu guards everything below. It is never held across a Handler call, a Connect, or a
	// lock of Node.mu.
	mu    sync.Mutex
	queue []entry
	head  int // queue[head:] are the messages
	bytes int // encoded size of the queued messages, as they arrived
	// taken counts messages removed from the mailbox other than by the receive that looks at
	// it, so that a waiting selective receive knows its scan position is stale.
	taken uint32
	// wake, when not nil, is closed by the next delivery: every waiting receiver wakes (a
	// message one receiver passes over may be the one another waits for). Made by a receiver
	// that is about to wait, so an idle process has none.
	wake    chan struct{}
	done    chan struct{} // made on demand (Done); closed at exit
	exited  bool
	reason  etf.Term
	name    etf.Atom
	trap    bool
	dropped uint64

	links       map[etf.Pid]struct{}  // linked processes, local or remote
	unlinking   map[etf.Pid]uint64    // UNLINK_ID sent, ack not yet seen: exit signals from it are ignored
	monitoredBy map[etf.Ref]watcher   // monitors held on this process
	monitors    map[etf.Ref]monitored // monitors this process holds
	aliases     map[etf.Ref]struct{}
	nodeMons    map[string]int // monitor_node counts
}

type entry struct {
	t    etf.Term
	size int
}

// watcher is a monitor someone holds on a process: who gets the DOWN, and the object it
// names (the pid, or {Name, Node} for a monitor by name).
type watcher struct {
	pid etf.Pid
	obj etf.Term
}

// monitored is a monitor a process holds: the object the DOWN message will name, and where
// the monitored process lives.
type monitored struct {
	obj    etf.Term // the pid, or {Name, Node}
	target etf.Term // the pid or the atom the MONITOR_P named
	peer   string   // "" for a local process
}

// Spawn starts a process with a mailbox. It has no goroutine: read its mailbox with Receive.
func (n *Node) Spawn() *Process { return n.spawn(nil) }

// SpawnHandler starts a process without a mailbox: h is called for each message on the
// goroutine that delivers it (a connection's reader, or a local sender), with no lock held.
// Calls for messages from one sender come in order; calls for messages from different senders
// may run concurrently, so h must be safe for that. h must not block for long: a connection
// reads nothing while it runs. Exit signals the process traps arrive at h as {'EXIT', From,
// Reason}.
func (n *Node) SpawnHandler(h func(p *Process, m etf.Term)) *Process { return n.spawn(h) }

func (n *Node) spawn(h func(*Process, etf.Term)) *Process {
	p := &Process{n: n, pid: n.newPid(), handler: h}
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		p.exited, p.reason = true, atomNoproc
		return p
	}
	n.procs[pidKey{p.pid.ID, p.pid.Serial}] = p
	n.mu.Unlock()
	return p
}

// Pid returns the process's pid.
func (p *Process) Pid() etf.Pid { return p.pid }

// Node returns the node the process runs on.
func (p *Process) Node() *Node { return p.n }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.doneLocked()
}

// closedChan is the Done of a process that exited before anyone asked.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// doneLocked returns the done channel, making it when needed (under p.mu).
func (p *Process) doneLocked() chan struct{} {
	if p.done == nil {
		if p.exited {
			return closedChan
		}
		p.done = make(chan struct{})
	}
	return p.done
}

// alive reports whether p has not exited.
func (p *Process) alive() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.exited
}

// Reason returns the exit reason, or nil while the process runs.
func (p *Process) Reason() etf.Term {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.exited {
		return nil
	}
	return p.reason
}

// Dropped returns how many messages were dropped because the mailbox was full.
func (p *Process) Dropped() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

// Len returns the number of messages in the mailbox.
func (p *Process) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue) - p.head
}

// TrapExit sets whether exit signals arrive as {'EXIT', From, Reason} messages (true) or end
// the process (false, the default), like process_flag(trap_exit, On). It returns the old value.
func (p *Process) TrapExit(on bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.trap
	p.trap = on
	return old
}

// deliver puts m in the mailbox, or hands it to the handler. size is its encoded size as it
// arrived (0 for local sends). A message to an exited process is dropped, as in BEAM.
func (p *Process) deliver(m etf.Term, size int) {
	if p.handler != nil {
		if p.alive() {
			p.handler(p, m)
		}
		return
	}
	p.mu.Lock()
	if p.exited {
		p.mu.Unlock()
		return
	}
	if len(p.queue)-p.head >= p.n.opts.MailboxLimit || p.bytes+size > p.n.opts.MailboxBytes {
		p.dropped++
		p.mu.Unlock()
		p.n.dropped(&p.n.stats.mailboxFull, "mailbox full", "pid", p.pid, "size", size)
		return
	}
	if p.head > 0 && p.head == len(p.queue) {
		clear(p.queue)
		p.queue, p.head = p.queue[:0], 0
	}
	p.queue = append(p.queue, entry{t: m, size: size})
	p.bytes += size
	if p.wake != nil {
		close(p.wake)
		p.wake = nil
	}
	p.mu.Unlock()
}

// Receive takes the oldest message from the mailbox, waiting for one until ctx ends (then it
// returns ctx.Err()). Once the process has exited it returns an *ExitError.
func (p *Process) Receive(ctx context.Context) (etf.Term, error) {
	return p.ReceiveMatch(ctx, nil)
}

// ReceiveMatch takes the oldest message for which match returns true, leaving the others in
// the mailbox in their order, like a receive with patterns; it waits for one until ctx ends.
// A nil match takes any message. match runs with the mailbox locked: it must not call the
// process's methods.
func (p *Process) ReceiveMatch(ctx context.Context, match func(etf.Term) bool) (etf.Term, error) {
	return p.receive(ctx, match, nil)
}

// receive is ReceiveMatch that also gives up, with errAborted, when abort closes.
func (p *Process) receive(ctx context.Context, match func(etf.Term) bool, abort <-chan struct{}) (etf.Term, error) {
	if p.handler != nil {
		return nil, errHandlerProcess
	}
	scanned := 0 // messages already tried by match, valid while p.taken stays the same
	var taken uint32
	for {
		p.mu.Lock()
		if p.exited {
			r := p.reason
			p.mu.Unlock()
			return nil, &ExitError{Reason: r}
		}
		if p.taken != taken {
			scanned, taken = 0, p.taken
		}
		q := p.queue[p.head:]
		for i := scanned; i < len(q); i++ {
			if match == nil || match(q[i].t) {
				t := q[i].t
				p.bytes -= q[i].size
				if i == 0 {
					p.queue[p.head] = entry{}
					p.head++
				} else {
					copy(q[i:], q[i+1:])
					p.queue[len(p.queue)-1] = entry{}
					p.queue = p.queue[:len(p.queue)-1]
				}
				p.taken++
				p.compact()
				p.mu.Unlock()
				return t, nil
			}
		}
		scanned = len(q)
		if p.wake == nil {
			p.wake = make(chan struct{})
		}
		wake, done := p.wake, p.doneLocked()
		p.mu.Unlock()
		select {
		case <-wake:
		case <-done:
		case <-abort:
			return nil, errAborted
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// compact drops the consumed front of the queue once it is most of the slice (under p.mu).
func (p *Process) compact() {
	if p.head == len(p.queue) {
		clear(p.queue)
		p.queue, p.head = p.queue[:0], 0
		return
	}
	if p.head > 64 && p.head*2 > len(p.queue) {
		k := copy(p.queue, p.queue[p.head:])
		clear(p.queue[k:])
		p.queue, p.head = p.queue[:k], 0
	}
}
