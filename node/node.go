// Package node is an Erlang distribution node written in Go: it registers
// with EPMD (or embeds its own), accepts and dials distribution connections
// with the handshake package, and keeps each link alive with ticks. Its API
// mirrors the Gleam library distribute/cluster (start_node, connect,
// nodes, connected_count, self_node, is_distributed) in Go's idiom: every
// network call takes a context.Context and returns typed errors.
//
// A node is hidden by default, like erl_interface and jinterface nodes: it
// appears in a BEAM node's nodes(hidden), not in nodes(). With
// Options.Visible it is published, as a BEAM node is: it appears in nodes()
// and net_kernel:monitor_nodes(true) reports it.
//
// The node is the link layer only: listener, connection attempts, links,
// ticks and node events. It hands every control message that arrives to
// its Options.Handler (the process layer) and knows no processes and no
// registered names. A frame or control message that is malformed or too
// large is skipped, counted (Stats) and logged; one bad message never
// costs the link.
//
// Several nodes may run in one process.
package node

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/lograte"
	"github.com/distribute-go/distribute/tlsdist"
)

// EPMDMode says how a node finds the port mapper daemon.
type EPMDMode int

const (
	// EPMDEmbedded (the default) uses the EPMD listening on the EPMD port,
	// and when none does, starts the pure-Go EPMD server inside this
	// process. A machine with no Erlang installed works.
	EPMDEmbedded EPMDMode = iota
	// EPMDExternal requires an EPMD already running; Start fails with a
	// NetworkError when none answers.
	EPMDExternal
	// EPMDNone uses no EPMD: the node listens on Options.ListenPort and
	// assumes every peer listens on that same port (like erl's
	// -erl_epmd_port).
	EPMDNone
	// EPMDClient looks peers up at the EPMD on the EPMD port but never
	// registers nor starts one: for a short-lived node that only dials out
	// (a ping or health probe), which no peer needs to find.
	EPMDClient
)

func (m EPMDMode) String() string {
	switch m {
	case EPMDEmbedded:
		return "embedded"
	case EPMDExternal:
		return "external"
	case EPMDNone:
		return "none"
	case EPMDClient:
		return "client"
	}
	return "EPMDMode(" + strconv.Itoa(int(m)) + ")"
}

// Defaults, as in OTP.
const (
	DefaultTickTime     = 60 * time.Second // net_ticktime
	DefaultSetupTimeout = 7 * time.Second  // net_setuptime
	DefaultMaxMessage   = 64 << 20         // largest distribution frame accepted
)

// Options configure a node. The zero value is usable.
type Options struct {
	EPMD     EPMDMode
	EPMDPort int // 0 means ERL_EPMD_PORT, else 4369; also used to look up peers
	// ListenAddr is the host or IP the distribution listener binds; ""
	// means all interfaces, like BEAM.
	ListenAddr string
	// ListenPort is the distribution port; 0 picks a free one. Required
	// with EPMDNone.
	ListenPort int
	// TickTime is net_ticktime: a link whose peer is silent is dropped
	// after 0.75 to 1.25 TickTime, like BEAM; the node ticks every
	// TickTime/4. It should be the same on every node. 0 means 60 s.
	TickTime time.Duration
	// SetupTimeout bounds one connection setup (EPMD lookup, dial,
	// handshake). 0 means 7 s.
	SetupTimeout time.Duration
	// MaxMessageSize bounds one incoming message (a frame, or the
	// fragments of one message together); a larger one is read through
	// without being held and skipped, and the link stays. 0 means 64 MiB.
	MaxMessageSize int
	// PeerAddrs maps a peer's node name to the host:port of its distribution
	// listener, dialled directly without asking an EPMD (like erl_call's
	// -address). Other peers are looked up as EPMD says.
	PeerAddrs map[string]string
	// Resolver looks up peer hosts (for the EPMD query and the dial); nil
	// means net.DefaultResolver.
	Resolver *net.Resolver
	// Logger receives the node's logs; nil means silent.
	Logger *slog.Logger
	// OnEvent, if set, receives each link, handshake and EPMD event;
	// metrics hang off it. Concurrency contract: it is called from one
	// goroutine the node owns, one event at a time, in the order the
	// events happened (for one link, its EventHandshakeOK before its
	// EventLinkDown), and never with a lock of the node held, so it may
	// call any method of the Node, Stop, Connect and Disconnect included.
	// The node does not wait for it: a Connect may return before the hook
	// has seen the link's EventHandshakeOK. While it runs, later events
	// queue (up to 65,536; beyond that they are dropped, counted in
	// Stats.EventsDropped and logged), so it should return quickly. Every
	// event emitted before Stop returns is delivered before Stop returns,
	// unless the hook itself calls Stop (then the rest are delivered after
	// the hook returns). See also Subscribe.
	OnEvent func(Event)
	// testEmitted, if set (by tests), is called synchronously where an
	// event is emitted, on the emitting goroutine: it widens race windows
	// the way a slow synchronous hook once did.
	testEmitted func(Event)
	// Handler receives the control messages that arrive on the node's
	// connections (see Handler for its concurrency contract). nil means a
	// node with no processes: monitors and links of anything get noproc at
	// once, so no BEAM caller waits on it. The process package sets it.
	Handler Handler
	// Flags are advertised in the handshake on top of handshake.DefaultFlags
	// (for example handshake.FlagSpawn when spawn requests are served).
	Flags handshake.Flags
	// TLS, if set, runs every distribution connection over TLS, like
	// erl -proto_dist inet_tls (see tls.go); nil means plain TCP.
	TLS *tlsdist.Config
	// Visible makes the node published (it advertises
	// handshake.FlagPublished): a BEAM peer lists it in nodes(), reports it
	// to net_kernel:monitor_nodes(true), and its rex, global and pg talk to
	// it as to a BEAM node (see the rpc, global and pg packages). false,
	// the default, is a hidden node. A connection is visible only when both
	// sides are published (Conn.Visible).
	Visible bool
}

// visibleFlag is FlagPublished for a visible node.
func visibleFlag(visible bool) handshake.Flags {
	if visible {
		return handshake.FlagPublished
	}
	return 0
}

// EventKind names what happened.
type EventKind int

const (
	EventHandshakeOK     EventKind = iota + 1 // a handshake succeeded; a link is up
	EventHandshakeFailed                      // a handshake failed; Err says why
	EventLinkDown                             // a link went down; Err says why
	EventEPMDRegistered                       // registered (again) with EPMD
	EventEPMDLost                             // the EPMD registration dropped
)

func (k EventKind) String() string {
	switch k {
	case EventHandshakeOK:
		return "handshake_ok"
	case EventHandshakeFailed:
		return "handshake_failed"
	case EventLinkDown:
		return "link_down"
	case EventEPMDRegistered:
		return "epmd_registered"
	case EventEPMDLost:
		return "epmd_lost"
	}
	return "unknown"
}

// Event is reported to Options.OnEvent.
type Event struct {
	Kind    EventKind
	Peer    string // the peer's node name, when known
	Inbound bool   // the peer dialled us
	Err     error  // the reason, for failures and link downs
	Addr    string // the peer's address (ip:port), for failed inbound handshakes
}

// Node is a running distribution node. Its methods are safe for concurrent
// use. A nil *Node behaves like a node that is not distributed.
type Node struct {
	name     string
	long     bool
	opts     Options
	log      *slog.Logger
	hs       handshake.Config
	creation uint32
	epmdPort int
	port     int           // distribution listen port
	tls      *tlsdist.Dist // nil: plain distribution

	ln     net.Listener
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	handler Handler

	tooLarge  atomic.Uint64
	malformed atomic.Uint64
	skipLog   lograte.Limiter

	events eventQueue
	owned  sync.Map // goroutine ids of the node's goroutines that call the Handler (own)

	mu      sync.Mutex
	links   map[string]*link
	pending map[string]*attempt
	stopped bool

	epmdMu   sync.Mutex
	reg      *epmd.Registration
	embedded *sharedEPMD

	authWarn lograte.Limiter // rate limit of the wrong-cookie warnings (authwarn.go)
}

var (
	startedMu sync.Mutex
	started   = map[string]*Node{}
)

// Start starts a distribution node named name (alive@host) with the given
// cookie. It listens for distribution connections and registers with EPMD
// as opts.EPMD says. opts may be nil. The error is a *StartError.
func Start(ctx context.Context, name, cookie string, opts *Options) (*Node, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if err := ValidateName(name); err != nil {
		return nil, &StartError{Kind: InvalidNodeName, Detail: err.Error()}
	}
	if len(cookie) > handshake.MaxCookie {
		return nil, &StartError{Kind: CookieTooLong, Detail: fmt.Sprintf("cookie is %d bytes, at most %d", len(cookie), handshake.MaxCookie)}
	}
	if cookie == "" {
		return nil, &StartError{Kind: StartFailed, Detail: "empty cookie"}
	}
	if o.TickTime <= 0 {
		o.TickTime = DefaultTickTime
	}
	if o.SetupTimeout <= 0 {
		o.SetupTimeout = DefaultSetupTimeout
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessage
	}
	if o.ListenPort < 0 || o.ListenPort > 65535 {
		return nil, &StartError{Kind: StartFailed, Detail: "listen port " + strconv.Itoa(o.ListenPort) + " out of range"}
	}
	if o.EPMD == EPMDNone && o.ListenPort == 0 {
		return nil, &StartError{Kind: StartFailed, Detail: "EPMDNone needs a fixed ListenPort"}
	}
	if o.EPMD < EPMDEmbedded || o.EPMD > EPMDClient {
		return nil, &StartError{Kind: StartFailed, Detail: "unknown EPMD mode " + o.EPMD.String()}
	}
	epmdPort := o.EPMDPort
	if epmdPort == 0 {
		p, err := epmd.PortFromEnv()
		if err != nil {
			return nil, &StartError{Kind: StartFailed, Detail: err.Error(), Err: err}
		}
		epmdPort = p
	} else if epmdPort < 0 || epmdPort > 65535 {
		return nil, &StartError{Kind: StartFailed, Detail: "EPMD port " + strconv.Itoa(epmdPort) + " out of range"}
	}

	startedMu.Lock()
	if _, dup := started[name]; dup {
		startedMu.Unlock()
		return nil, &StartError{Kind: AlreadyStarted, Detail: name + " is already running in this process"}
	}
	started[name] = nil // reserve the name
	startedMu.Unlock()
	n, err := start(ctx, name, cookie, o, epmdPort)
	startedMu.Lock()
	if err != nil {
		delete(started, name)
	} else {
		started[name] = n
	}
	startedMu.Unlock()
	return n, err
}

func start(ctx context.Context, name, cookie string, o Options, epmdPort int) (*Node, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tlsd, err := buildTLS(o.TLS)
	if err != nil {
		return nil, err
	}
	n := &Node{
		authWarn: lograte.Limiter{Every: authWarnEvery},
		tls:      tlsd,
		name:     name,
		long:     IsLongName(name),
		opts:     o,
		log:      log.With("node", name),
		epmdPort: epmdPort,
		links:    map[string]*link{},
		pending:  map[string]*attempt{},
		handler:  o.Handler,
	}
	if n.handler == nil {
		n.handler = noProcesses{}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(o.ListenAddr, strconv.Itoa(o.ListenPort)))
	if err != nil {
		return nil, startErr(err, "listen")
	}
	n.ln = ln
	n.port = ln.Addr().(*net.TCPAddr).Port
	n.ctx, n.cancel = context.WithCancel(context.Background())

	if o.EPMD == EPMDNone || o.EPMD == EPMDClient {
		var b [4]byte
		_, _ = rand.Read(b[:])
		n.creation = binary.BigEndian.Uint32(b[:])
		if n.creation == 0 {
			n.creation = 1
		}
	} else {
		reg, shared, err := n.register(ctx, o.EPMD == EPMDEmbedded)
		if err != nil {
			n.cancel()
			_ = ln.Close()
			return nil, startErr(err, "EPMD registration on port "+strconv.Itoa(epmdPort))
		}
		n.reg, n.embedded = reg, shared
		n.creation = reg.Creation()
	}
	n.hs = handshake.Config{
		Name:        name,
		Cookie:      cookie,
		Flags:       handshake.DefaultFlags | o.Flags | visibleFlag(o.Visible),
		Creation:    n.creation,
		Timeout:     o.SetupTimeout,
		StillWanted: n.stillDialing,
		FrameSize:   n.frameSize(),
	}
	n.startEvents()
	n.wg.Add(2)
	go n.acceptLoop()
	go n.tickLoop()
	if n.reg != nil {
		n.wg.Add(1)
		go n.epmdWatch()
	}
	n.log.Debug("node started", "port", n.port, "epmd", o.EPMD.String(), "epmd_port", epmdPort, "creation", n.creation)
	return n, nil
}

// Stop unregisters from EPMD, closes every link and the listener, and
// waits until every goroutine of the node has ended and every event has
// been delivered. Called from Options.OnEvent or from the Handler, it
// cannot wait for the goroutine it runs on: it closes everything and
// returns, and the node finishes stopping once that call returns (see
// OnEvent). Calling it again is a no-op.
func (n *Node) Stop() error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return nil
	}
	n.stopped = true
	links := make([]*link, 0, len(n.links))
	for _, l := range n.links {
		links = append(links, l)
	}
	n.mu.Unlock()

	n.cancel()
	err := n.ln.Close()
	for _, l := range links {
		l.close(errNodeStopped)
	}
	if n.onOwnGoroutine() {
		// Called from the Handler, on a goroutine of the node: Stop cannot
		// wait for the goroutine it runs on. The rest of the stop finishes
		// once the Handler call returns.
		go n.finishStop()
		return err
	}
	n.finishStop()
	return err
}

// finishStop waits for the node's goroutines, then releases EPMD and ends the events.
func (n *Node) finishStop() {
	n.wg.Wait()
	n.epmdMu.Lock()
	if n.reg != nil {
		_ = n.reg.Close()
		n.reg = nil
	}
	if n.embedded != nil {
		n.embedded.release()
		n.embedded = nil
	}
	n.epmdMu.Unlock()
	n.stopEvents() // after every emitter has ended: no event is lost

	startedMu.Lock()
	if started[n.name] == n {
		delete(started, n.name)
	}
	startedMu.Unlock()
	n.log.Debug("node stopped")
}

// own marks the calling goroutine as one of the node's goroutines that call the Handler (a
// dial, an accept, a link's reader) until the returned function is called.
func (n *Node) own() func() {
	id := goroutineID()
	n.owned.Store(id, struct{}{})
	return func() { n.owned.Delete(id) }
}

// onOwnGoroutine reports whether the caller runs on a goroutine marked by own.
func (n *Node) onOwnGoroutine() bool {
	_, ok := n.owned.Load(goroutineID())
	return ok
}

var (
	errNodeStopped = errors.New("node stopped")
	errYielded     = errors.New("yielded to the peer's simultaneous connection")
	errSuperseded  = errors.New("superseded: another connection with the same peer won")
)

// Self returns the node's name, or "nonode@nohost" for a nil node.
func (n *Node) Self() string {
	if n == nil {
		return NonodeName
	}
	return n.name
}

// IsDistributed reports whether the node is running (started and not
// stopped).
func (n *Node) IsDistributed() bool {
	if n == nil {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return !n.stopped
}

// Nodes returns the names of the connected nodes, sorted.
func (n *Node) Nodes() []string {
	if n == nil {
		return []string{}
	}
	n.mu.Lock()
	out := make([]string, 0, len(n.links))
	for name := range n.links {
		out = append(out, name)
	}
	n.mu.Unlock()
	slices.Sort(out)
	return out
}

// ConnectedCount returns the number of connected nodes.
func (n *Node) ConnectedCount() int {
	if n == nil {
		return 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.links)
}

// Port returns the distribution listen port.
func (n *Node) Port() int {
	if n == nil {
		return 0
	}
	return n.port
}

// Creation returns the node's creation number.
func (n *Node) Creation() uint32 {
	if n == nil {
		return 0
	}
	return n.creation
}

// EPMDPort returns the EPMD port the node registers with and looks peers
// up at.
func (n *Node) EPMDPort() int {
	if n == nil {
		return 0
	}
	return n.epmdPort
}

// EPMDRegistered reports whether the node holds an EPMD registration now
// (always false with EPMDNone).
func (n *Node) EPMDRegistered() bool {
	if n == nil {
		return false
	}
	n.epmdMu.Lock()
	defer n.epmdMu.Unlock()
	if n.reg == nil {
		return false
	}
	select {
	case <-n.reg.Done():
		return false
	default:
		return true
	}
}

// Connect sets up a link to the node peer, unless one is up already (then
// it returns nil at once). Concurrent calls for one peer share one attempt,
// which may be a handshake the peer started; if that one fails, Connect
// dials itself (up to three times) rather than report the peer's failure.
// The error is a *ConnectError.
func (n *Node) Connect(ctx context.Context, peer string) error {
	if n == nil {
		return &ConnectError{Kind: ConnectIgnored, Node: peer, Detail: "this node is not distributed"}
	}
	if err := handshake.ValidateNodeName(peer); err != nil {
		return &ConnectError{Kind: NodeNotFound, Node: peer, Detail: err.Error()}
	}
	if peer == n.name {
		return &ConnectError{Kind: ConnectIgnored, Node: peer, Detail: "cannot connect to self"}
	}
	if _, host := splitName(peer); isLongHost(host) != n.long {
		why := "this node uses short names and cannot reach the long-name host " + host
		if n.long {
			why = "this node uses long names and cannot reach the short-name host " + host
		}
		return &ConnectError{Kind: NodeNotFound, Node: peer, Detail: why}
	}
	for try := 0; ; try++ {
		a, err := n.joinOrDial(peer)
		if a == nil {
			return err
		}
		select {
		case <-a.done:
		case <-ctx.Done():
			return &ConnectError{Kind: ConnectTimeout, Node: peer, Detail: ctx.Err().Error(), Err: ctx.Err()}
		}
		if a.err == nil {
			return nil
		}
		// The attempt this call joined may have been carried by a
		// handshake from the peer that died: a stale one (a dial the peer
		// abandoned when it lost a simultaneous connect, whose first bytes
		// were still in our accept queue) or a peer that went away. That
		// says nothing about whether we can reach the peer: start over
		// with our own dial rather than report someone else's failure.
		if a.inboundFailed && try < connectRetries && ctx.Err() == nil && n.ctx.Err() == nil {
			n.log.Debug("the peer's handshake this connect joined failed; dialling again", "peer", peer, "err", a.err)
			continue
		}
		return connectErr(peer, a.err)
	}
}

// ConnectBool is the seed's connect_bool: Connect, reduced to a bool.
//
// Deprecated: use Connect, which says why a connection failed.
func (n *Node) ConnectBool(ctx context.Context, peer string) bool {
	return n.Connect(ctx, peer) == nil
}

// Disconnect drops the link to peer, if any; it reports whether there was
// one.
func (n *Node) Disconnect(peer string) bool {
	if n == nil {
		return false
	}
	n.mu.Lock()
	l := n.links[peer]
	n.mu.Unlock()
	if l == nil {
		return false
	}
	l.close(errors.New("disconnected by this node"))
	return true
}

func (n *Node) dialPeer(ctx context.Context, peer string) (net.Conn, error) {
	alive, host := splitName(peer)
	port := n.opts.ListenPort
	if addr, ok := n.opts.PeerAddrs[peer]; ok {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("address of %s: %w", peer, err)
		}
		if host, port, err = h, 0, nil; p != "" {
			port, err = strconv.Atoi(p)
		}
		if err != nil || port <= 0 || port > 65535 {
			return nil, fmt.Errorf("address of %s: bad port %q", peer, p)
		}
	} else if n.opts.EPMD != EPMDNone {
		c := epmd.Client{Port: n.epmdPort, Dialer: &net.Dialer{Resolver: n.opts.Resolver}}
		info, err := c.PortPlease(ctx, host, alive)
		if err != nil {
			return nil, err
		}
		port = info.Port
	}
	d := net.Dialer{Resolver: n.opts.Resolver}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return n.tlsClient(ctx, conn, peer)
}

func (n *Node) acceptLoop() {
	defer n.wg.Done()
	var delay time.Duration
	for {
		conn, err := n.ln.Accept()
		if err != nil {
			if n.ctx.Err() != nil {
				return
			}
			// Temporary trouble (e.g. out of file descriptors): back off.
			if delay == 0 {
				delay = 5 * time.Millisecond
			} else if delay < time.Second {
				delay *= 2
			}
			n.log.Warn("accept failed", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
				continue
			case <-n.ctx.Done():
				return
			}
		}
		delay = 0
		n.wg.Add(1)
		go n.accept(conn)
	}
}

// removeLink is called by a link when it closes.
func (n *Node) removeLink(l *link, reason error) {
	n.mu.Lock()
	if n.links[l.peer] == l {
		delete(n.links, l.peer)
	}
	n.mu.Unlock()
	n.log.Debug("link down", "peer", l.peer, "reason", reason)
	n.emit(Event{Kind: EventLinkDown, Peer: l.peer, Err: reason})
}

func (n *Node) link(peer string) *link {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.links[peer]
}

// tickLoop ticks every link each TickTime/4 when it has written nothing,
// and drops a link at the fourth check in a row that saw nothing read, as
// BEAM does: a silent peer is gone after 0.75 TickTime to 1.25 TickTime.
func (n *Node) tickLoop() {
	defer n.wg.Done()
	t := time.NewTicker(max(n.opts.TickTime/4, time.Millisecond)) // NewTicker panics on 0
	defer t.Stop()
	var ls []*link
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		n.mu.Lock()
		ls = ls[:0]
		for _, l := range n.links {
			ls = append(ls, l)
		}
		n.mu.Unlock()
		for _, l := range ls {
			l.tick()
		}
	}
}
