// Package process is the process layer of a distribute node: Go processes with pids of the
// node, mailboxes, registered names, aliases, links and monitors, with BEAM's semantics, on top
// of the link layer in package node. It routes the control messages that arrive on the node's
// connections to processes, and it runs the node's built-in net_kernel, so BEAM's net_adm:ping
// of the node is pong and Ping is a call to a peer's net_kernel.
//
// A process costs about 260 bytes and no goroutine (TestIdleProcessMemory): a mailbox that
// Receive reads, or a handler function that runs on the goroutine that delivers each message
// (SpawnHandler). Terms are not copied on delivery: senders and receivers must treat them as
// immutable. Several goroutines may receive from one mailbox: each delivery wakes them all, and
// each takes the oldest message its match accepts.
//
// One message never costs a connection: a message to a process that does not exist, one whose
// term does not decode, and one that arrives at a full mailbox (Options.MailboxLimit,
// MailboxBytes) are dropped alone, counted (ProcessStats) and logged; an exit or DOWN reason
// that does not decode still takes effect, as ReasonUndecodable.
//
// Links, monitors and node monitors that cross a connection are kept per connection: when it
// goes down they get noconnection (nodedown), and nothing set up over a newer connection to the
// same node is touched. Node events (MonitorNodes, WatchNodes) are delivered in the order the
// connections changed: an old connection's nodedown always comes before the next nodeup.
//
// Locking: Node.mu guards the process table, the name registry, the aliases, the per-connection
// state and the node event queue; Process.mu guards one process's mailbox, links and monitors.
// A Process.mu may be taken while holding Node.mu, never the reverse. Conn.Send only queues, so
// it may be called under Process.mu, but it is never called under Node.mu; Connect is never
// called under any lock. Handler functions of processes are called with no lock held, and so
// are the deliveries of node events.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/lograte"
	"github.com/distribute-go/distribute/node"
)

// Defaults.
const (
	// DefaultMailboxLimit is how many messages a mailbox holds before new ones are dropped.
	DefaultMailboxLimit = 1 << 20
	// DefaultMailboxBytes bounds the encoded size of the messages a mailbox holds.
	DefaultMailboxBytes = 256 << 20
)

// Options configure a node with processes. The zero value is usable.
type Options struct {
	// Node configures the link layer. Its Handler is set by this package.
	Node node.Options
	// MailboxLimit bounds the messages one mailbox holds; a message that arrives at a full
	// mailbox is dropped, counted (Stats, Process.Dropped) and logged. 0 means
	// DefaultMailboxLimit.
	MailboxLimit int
	// MailboxBytes bounds the encoded size of the messages one mailbox holds, counted as they
	// arrived on the wire (local sends count 0). 0 means DefaultMailboxBytes.
	MailboxBytes int
	// NoSpawn leaves the SPAWN capability out of the handshake. By default the node
	// advertises it (it speaks spawn_request both ways: SpawnRequest, and an answer to every
	// request it gets), so OTP 23+ peers take erpc calls from it; with NoSpawn, peers neither
	// send it spawn requests nor take them from it, and the rpc package falls back to rex.
	NoSpawn bool
	// Spawn, if set, serves SPAWN_REQUEST from peers (erpc and spawn_request); nil answers
	// every request with the error notsup. The rpc package sets it.
	Spawn SpawnFunc
}

// Node is a distribution node with processes: a *node.Node (connect, nodes, stop, ...) plus
// the process layer. Its methods are safe for concurrent use.
type Node struct {
	*node.Node

	opts  Options
	log   *slog.Logger
	self  etf.Atom
	ready chan struct{} // closed once Node and the built-in processes are set

	pids atomic.Uint64
	refs atomic.Uint64

	mu       sync.Mutex
	procs    map[pidKey]*Process
	names    map[etf.Atom]*Process
	aliases  map[etf.Ref]*Process
	peers    map[string]*peer     // the newest connection's state per node name
	retired  map[*node.Conn]*peer // older connections' state, down but not yet reported
	evq      []NodeEvent          // node events not yet delivered (drainEvents)
	draining bool                 // a goroutine is delivering evq
	// nodeWatchers get {nodeup, Node} and {nodedown, Node}.
	nodeWatchers map[*Process]struct{}
	subs         map[*subscription]struct{}
	stopped      bool

	spawns map[etf.Ref]*pendingSpawn // our spawn requests waiting for SPAWN_REPLY

	netKernel   *Process
	sender      *Process // the sender of messages sent with Node.Send
	groupLeader *Process // answers I/O requests of code run for us elsewhere

	stats counters
}

// pidKey identifies a local process (the node and creation are the node's own).
type pidKey struct{ id, serial uint32 }

// Start starts a node named name with cookie (see node.Start) and its process layer. opts may
// be nil. The error is a *node.StartError.
func Start(ctx context.Context, name, cookie string, opts *Options) (*Node, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MailboxLimit <= 0 {
		o.MailboxLimit = DefaultMailboxLimit
	}
	if o.MailboxBytes <= 0 {
		o.MailboxBytes = DefaultMailboxBytes
	}
	log := o.Node.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Node{
		opts:         o,
		log:          log.With("node", name),
		self:         etf.Atom(name),
		ready:        make(chan struct{}),
		procs:        map[pidKey]*Process{},
		names:        map[etf.Atom]*Process{},
		aliases:      map[etf.Ref]*Process{},
		peers:        map[string]*peer{},
		retired:      map[*node.Conn]*peer{},
		nodeWatchers: map[*Process]struct{}{},
		subs:         map[*subscription]struct{}{},
		spawns:       map[etf.Ref]*pendingSpawn{},
	}
	no := o.Node
	no.Handler = (*handler)(n)
	// The process layer speaks spawn_request both ways (SpawnRequest; requests it does not
	// serve get an error reply at once), so it advertises SPAWN: OTP 23+ peers then take
	// erpc calls from us, and their rpc:call of us gets an answer rather than a fallback.
	if !o.NoSpawn {
		no.Flags |= handshake.FlagSpawn
	}
	ln, err := node.Start(ctx, name, cookie, &no)
	if err != nil {
		return nil, err
	}
	n.Node = ln
	n.netKernel = n.SpawnHandler(n.netKernelHandler)
	_ = n.Register("net_kernel", n.netKernel)
	n.sender = n.Spawn()
	n.groupLeader = n.SpawnHandler(n.groupLeaderHandler)
	close(n.ready)
	return n, nil
}

// Stop ends every process (with reason shutdown, as an application stop would: their remote
// links and monitors are told), then stops the link layer. Calling it again is a no-op.
func (n *Node) Stop() error {
	if n == nil || n.Node == nil {
		return nil
	}
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	procs := make([]*Process, 0, len(n.procs))
	for _, p := range n.procs {
		procs = append(procs, p)
	}
	subs := n.subs
	n.subs = map[*subscription]struct{}{}
	n.mu.Unlock()
	for _, p := range procs {
		p.exit(atomShutdown)
	}
	for s := range subs {
		s.close()
	}
	return n.Node.Stop()
}

// Self returns the node's name, or "nonode@nohost" for a nil node.
func (n *Node) Self() string {
	if n == nil || n.Node == nil {
		return node.NonodeName
	}
	return n.Node.Self()
}

// IsDistributed reports whether the node is running.
func (n *Node) IsDistributed() bool {
	if n == nil || n.Node == nil {
		return false
	}
	return n.Node.IsDistributed()
}

// Nodes returns the names of the connected nodes, sorted.
func (n *Node) Nodes() []string {
	if n == nil || n.Node == nil {
		return []string{}
	}
	return n.Node.Nodes()
}

// Stats counts what the process layer dropped. The fields only grow.
type Stats struct {
	// MailboxFull counts messages dropped because the target's mailbox was full.
	MailboxFull uint64
	// NoProcess counts messages to a pid, name or alias of this node that has no process.
	NoProcess uint64
	// Undecodable counts messages whose term did not decode (dropped) and exit or DOWN reasons
	// that did not (delivered as ReasonUndecodable).
	Undecodable uint64
}

type counters struct {
	mailboxFull, noProcess, undecodable atomic.Uint64
	log                                 lograte.Limiter
}

// ProcessStats returns the process layer's counters (Stats of the embedded node counts what
// the link layer skipped).
func (n *Node) ProcessStats() Stats {
	return Stats{
		MailboxFull: n.stats.mailboxFull.Load(),
		NoProcess:   n.stats.noProcess.Load(),
		Undecodable: n.stats.undecodable.Load(),
	}
}

// dropped counts and logs (rate-limited) one message that could not be delivered.
func (n *Node) dropped(c *atomic.Uint64, what string, attrs ...any) {
	c.Add(1)
	if ok, suppressed := n.stats.log.Allow(time.Now()); ok {
		n.log.Warn("message dropped: "+what, append(attrs, "suppressed_since_last", suppressed)...)
	}
}

// Errors.
var (
	// ErrNoProcess: the target process does not exist (noproc).
	ErrNoProcess = errors.New("noproc")
	// ErrBadDestination: Send was given something that is not a pid, a name, a Name or an alias.
	ErrBadDestination = errors.New("bad destination")
	// ErrNameTaken: Register with a name another process holds.
	ErrNameTaken = errors.New("name already registered")
	// ErrStopped: the node is stopped.
	ErrStopped = errors.New("node stopped")
)

// ExitError is what Receive returns once its process has exited; Reason is the exit reason.
type ExitError struct {
	Reason etf.Term
}

func (e *ExitError) Error() string { return fmt.Sprintf("process exited: %v", e.Reason) }

// Common atoms.
var (
	atomNormal    = etf.Atom("normal")
	atomKill      = etf.Atom("kill")
	atomKilled    = etf.Atom("killed")
	atomNoproc    = etf.Atom("noproc")
	atomNoconn    = etf.Atom("noconnection")
	atomShutdown  = etf.Atom("shutdown")
	atomExit      = etf.Atom("EXIT")
	atomDown      = etf.Atom("DOWN")
	atomProcess   = etf.Atom("process")
	atomNodeup    = etf.Atom("nodeup")
	atomNodedown  = etf.Atom("nodedown")
	atomGenCall   = etf.Atom("$gen_call")
	atomAlias     = etf.Atom("alias")
	atomIsAuth    = etf.Atom("is_auth")
	atomYes       = etf.Atom("yes")
	atomNotsup    = etf.Atom("notsup")
	atomNetKernel = etf.Atom("net_kernel")
	atomUndefined = etf.Atom("undefined")
)
