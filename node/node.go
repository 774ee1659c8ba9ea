// Package node is an Erlang distribution node written in Go: it registers
// with EPMD (or embeds its own), accepts and dials distribution connections
// with the handshake package, and keeps each link alive with ticks. Its API
// mirrors the Gleam library distribute/cluster (start_node, connect, ping,
// nodes, connected_count, self_node, is_distributed) in Go's idiom: every
// network call takes a context.Context and returns typed errors.
//
// A node is hidden, like erl_interface and jinterface nodes: it appears in
// a BEAM node's nodes(hidden), not in nodes(). It answers the net_kernel
// {is_auth, Node} call, so net_adm:ping from Erlang and Node.ping from
// Elixir return pong, and it answers monitors, links and UNLINK_ID of
// processes it does not have, so no BEAM call into it hangs.
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
	// MaxMessageSize bounds one incoming distribution frame; a larger one
	// drops the link. 0 means 64 MiB.
	MaxMessageSize int
	// Resolver looks up peer hosts (for the EPMD query and the dial); nil
	// means net.DefaultResolver.
	Resolver *net.Resolver
	// Logger receives the node's logs; nil means silent.
	Logger *slog.Logger
	// OnEvent, if set, is called (synchronously, keep it quick) for each
	// link, handshake and EPMD event; metrics hang off it.
	OnEvent func(Event)
	// Handler receives the control messages that arrive on the node's
	// connections (see Handler for its concurrency contract). nil means a
	// node with no processes: monitors and links of anything get noproc at
	// once, so no BEAM caller waits on it. The process package sets it.
	Handler Handler
	// TLS, if set, runs every distribution connection over TLS, like
	// erl -proto_dist inet_tls (see tls.go); nil means plain TCP.
	TLS *tlsdist.Config
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
	skipLog   logLimiter

	mu      sync.Mutex
	links   map[string]*link
	pending map[string]*attempt
	stopped bool

	epmdMu   sync.Mutex
	reg      *epmd.Registration
	embedded *sharedEPMD

	authWarn authWarn // rate limit of the wrong-cookie warnings (authwarn.go)
}

// attempt is one connection setup to a peer, inbound or outbound, that
// Connect calls join.
//
// Fields other than done and ctx are under n.mu.
type attempt struct {
	done chan struct{}
	err  error
	// ctx ends one SetupTimeout after the attempt began, or when it
	// finishes. Every inbound handshake that joins the attempt is bounded
	// by it, so a chain of handshakes under the peer's name (stale or
	// forged: no cookie is needed to send a name) cannot keep the attempt
	// pending past its setup time.
	ctx    context.Context
	cancel context.CancelFunc
	// outbound: our dial is in progress. abort cancels it; decide calls
	// abort when it answers ok_simultaneous (yielded): the peer's
	// handshake carries the attempt from then on.
	outbound bool
	abort    context.CancelFunc
	yielded  bool
	conn     net.Conn // our dial's connection once it is up
	// ins: the inbound handshakes from the peer in progress for this
	// attempt. A newer one does not displace an older one (which may be
	// the live one, the newer a stale name message from a socket the peer
	// already closed): the first to finish installs the link and the rest
	// are cancelled.
	ins map[net.Conn]bool
	// alive: the attempt of a handshake answered "alive" (we had a link).
	// It may install its link only while that link (replaces) or none is
	// up, never over a newer link made meanwhile.
	alive    bool
	replaces *link
	// won: a link is up for this attempt (set by addLink before it wakes
	// the waiters); no failure may end the attempt any more.
	won bool
	// inboundFailed: the attempt ended because the peer's handshake
	// failed, not our own dial (set by finishLocked, before done closes).
	inboundFailed bool
}

// newAttempt returns an attempt whose setup time starts now (under n.mu).
func (n *Node) newAttempt() *attempt {
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.SetupTimeout)
	return &attempt{done: make(chan struct{}), ctx: ctx, cancel: cancel, ins: map[net.Conn]bool{}}
}

// connectRetries bounds how often one Connect call starts over after the
// attempt it joined ended with the peer's inbound handshake failing.
const connectRetries = 3

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
		log = slog.New(discard{})
	}
	tlsd, err := buildTLS(o.TLS)
	if err != nil {
		return nil, err
	}
	n := &Node{
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
		Flags:       handshake.DefaultFlags,
		Creation:    n.creation,
		Timeout:     o.SetupTimeout,
		StillWanted: n.stillDialing,
		FrameSize:   n.frameSize(),
	}
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

type discard struct{}

func (discard) Enabled(context.Context, slog.Level) bool  { return false }
func (discard) Handle(context.Context, slog.Record) error { return nil }
func (d discard) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discard) WithGroup(string) slog.Handler           { return d }

func (n *Node) emit(e Event) {
	if n.opts.OnEvent != nil {
		n.opts.OnEvent(e)
	}
}

// Stop unregisters from EPMD, closes every link and the listener, and
// waits until every goroutine of the node has ended. Calling it again is a
// no-op.
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

	startedMu.Lock()
	if started[n.name] == n {
		delete(started, n.name)
	}
	startedMu.Unlock()
	n.log.Debug("node stopped")
	return err
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

// joinOrDial returns the attempt to peer that a Connect call waits for,
// starting a dial when none is under way; (nil, nil) when a link is up.
func (n *Node) joinOrDial(peer string) (*attempt, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return nil, &ConnectError{Kind: ConnectIgnored, Node: peer, Detail: "this node is stopped"}
	}
	if _, ok := n.links[peer]; ok {
		return nil, nil
	}
	a := n.pending[peer]
	if a == nil {
		a = n.newAttempt()
		// The dial has its own deadline, not a child of a.ctx: another
		// attempt's link may finish this one while its dial must go on (the
		// peer answered that dial's "alive" and chose it).
		dctx, cancel := context.WithTimeout(n.ctx, n.opts.SetupTimeout)
		a.outbound, a.abort = true, cancel
		n.pending[peer] = a
		n.wg.Add(1)
		go n.dial(dctx, a, peer)
	}
	return a, nil
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

// finishLocked ends attempt a for peer with err, once (under n.mu);
// inboundFailed says the peer's handshake failed, not our dial.
func (n *Node) finishLocked(peer string, a *attempt, err error, inboundFailed bool) {
	select {
	case <-a.done:
		return
	default:
	}
	if n.pending[peer] == a {
		delete(n.pending, peer)
	}
	a.err, a.inboundFailed = err, inboundFailed
	close(a.done)
	a.cancel() // cancels the inbound handshakes still joined to it
}

// dial runs an outbound attempt: EPMD lookup, TCP dial, handshake.
func (n *Node) dial(ctx context.Context, a *attempt, peer string) {
	defer n.wg.Done()
	defer a.abort()
	conn, err := n.dialPeer(ctx, peer)
	if err == nil {
		// Publish the connection so that decide can close it at once when
		// this attempt yields to the peer's.
		n.mu.Lock()
		if a.yielded {
			err = errYielded
		} else {
			a.conn = conn
		}
		n.mu.Unlock()
	}
	var res *handshake.Result
	if err == nil {
		res, err = handshake.Initiate(ctx, conn, &n.hs, peer)
	}
	if err == nil {
		if n.addLink(conn, res, a, false) {
			return
		}
		err = errNodeStopped
		if n.ctx.Err() == nil {
			err = errYielded
		}
	}
	if conn != nil {
		_ = conn.Close()
	}
	if errors.Is(err, handshake.ErrSimultaneous) {
		// The peer's own attempt wins; wait for its inbound handshake.
		n.mu.Lock()
		a.outbound = false
		n.mu.Unlock()
		select {
		case <-a.done:
			return
		case <-ctx.Done():
			err = fmt.Errorf("lost a simultaneous connect and the peer's connection did not arrive: %w", ctx.Err())
		}
	}
	if n.ctx.Err() != nil {
		err = errNodeStopped
	}
	n.mu.Lock()
	quiet := a.yielded || a.won // aborted for the peer's attempt, or a link is up anyway
	n.mu.Unlock()
	if !quiet {
		n.log.Debug("connect failed", "peer", peer, "err", err)
		n.emit(Event{Kind: EventHandshakeFailed, Peer: peer, Err: err})
	}
	n.mu.Lock()
	a.outbound = false
	if len(a.ins) == 0 && !a.won {
		// A dial that yielded ends the attempt only once the handshake it
		// yielded to failed: that is the peer's failure, not ours.
		n.finishLocked(peer, a, err, a.yielded)
	}
	n.mu.Unlock()
}

func (n *Node) dialPeer(ctx context.Context, peer string) (net.Conn, error) {
	alive, host := splitName(peer)
	port := n.opts.ListenPort
	if n.opts.EPMD != EPMDNone {
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
	return n.tlsClient(ctx, conn, host)
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

func (n *Node) accept(conn net.Conn) {
	defer n.wg.Done()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.SetupTimeout)
	defer cancel()
	if conn = n.tlsServer(ctx, conn); conn == nil {
		return
	}
	var peer string
	var a *attempt
	stopJoin := func() bool { return false }
	res, err := handshake.Accept(ctx, conn, &n.hs, func(p handshake.Peer) handshake.Status {
		peer = p.Name
		var st handshake.Status
		st, a = n.decide(p.Name, conn)
		if a != nil {
			// The attempt's setup time (and its end) bounds this
			// handshake too.
			stopJoin = context.AfterFunc(a.ctx, cancel)
		}
		return st
	})
	stopJoin()
	if err == nil {
		if n.addLink(conn, res, a, true) {
			return
		}
		err = errNodeStopped
		if n.ctx.Err() == nil {
			err = errSuperseded
		}
	}
	_ = conn.Close()
	n.log.Debug("inbound handshake failed", "peer", peer, "remote", conn.RemoteAddr().String(), "err", err)
	n.emit(Event{Kind: EventHandshakeFailed, Peer: peer, Inbound: true, Err: err, Addr: conn.RemoteAddr().String()})
	n.warnInboundAuth(peer, conn.RemoteAddr(), err)
	if a != nil {
		n.mu.Lock()
		if a.ins[conn] { // the attempt has not ended with a link meanwhile
			delete(a.ins, conn)
			if len(a.ins) == 0 && !a.outbound && !a.won {
				n.finishLocked(peer, a, err, true)
			}
		}
		n.mu.Unlock()
	}
}

// decide arbitrates an inbound handshake from peer against our own links
// and attempts. It returns the attempt the inbound handshake now belongs
// to, if it goes on.
func (n *Node) decide(peer string, conn net.Conn) (handshake.Status, *attempt) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped || peer == n.name {
		return handshake.StatusNotAllowed, nil
	}
	if l, ok := n.links[peer]; ok {
		// The peer dials although we have a link: it must have lost its
		// side. The handshake asks it; on "true" the new link replaces
		// ours, unless a newer link is up by then.
		a := n.newAttempt()
		a.ins[conn] = true
		a.alive, a.replaces = true, l
		return handshake.StatusAlive, a
	}
	a := n.pending[peer]
	switch {
	case a == nil:
		a = n.newAttempt()
		a.ins[conn] = true
		n.pending[peer] = a
		return handshake.StatusOK, a
	case len(a.ins) > 0:
		// Another handshake from this peer is pending. BEAM answers nok
		// when its own name sorts higher and otherwise drops the older one.
		// Neither is safe: a peer answered nok waits for a dial from us
		// that never comes, so a stalled handshake under its name (an
		// impostor without the cookie) would lock it out; and the older
		// one may be the live one, the newer a stale name message from a
		// socket the peer already closed. Both go on; the first to finish
		// wins, within the attempt's setup time.
		n.log.Debug("another handshake from this peer joins the pending one", "peer", peer)
		a.ins[conn] = true
		return handshake.StatusOKSimultaneous, a
	case a.outbound && n.name > peer:
		// Simultaneous connect: the higher name wins; ours goes on.
		return handshake.StatusNok, nil
	case a.outbound:
		// ok_simultaneous: as in BEAM, our own dial is dropped. Left
		// running, it would reach the peer after the peer's link is up, get
		// "alive", and replace that fresh link (losing what was sent on it).
		// The dial's connection is closed here, synchronously, so it
		// cannot write another byte once the peer hears ok_simultaneous.
		a.ins[conn] = true
		a.yielded = true
		a.abort()
		if a.conn != nil {
			_ = a.conn.Close()
		}
		return handshake.StatusOKSimultaneous, a
	default:
		// Our dial lost a simultaneous connect and waits for this one.
		a.ins[conn] = true
		return handshake.StatusOK, a
	}
}

// stillDialing answers a peer's "alive" status during our dial: go on
// only while our attempt is still the pending one for that peer (BEAM's
// is_pending), not after it yielded to the peer's own attempt.
func (n *Node) stillDialing(peer string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := n.pending[peer]
	return a != nil && a.outbound && !a.yielded
}

// addLink installs a link for a finished handshake; false if the node is
// stopping or the handshake lost. a is the attempt the handshake belongs
// to: a dial that yielded to the peer's attempt, an inbound handshake
// whose attempt already won with another connection, or an "alive"
// handshake whose link was replaced meanwhile installs nothing.
func (n *Node) addLink(conn net.Conn, res *handshake.Result, a *attempt, inbound bool) bool {
	peer := res.Peer.Name
	l := newLink(n, conn, res)
	n.mu.Lock()
	old := n.links[peer]
	superseded := a != nil && ((!inbound && a.yielded) || (inbound && !a.ins[conn]) ||
		(a.alive && old != nil && old != a.replaces))
	if n.stopped || superseded {
		n.mu.Unlock()
		return false
	}
	n.links[peer] = l
	// The attempt ends with the link installed, in the same critical
	// section: if the link dropped before we woke its waiters, a new
	// handshake from the peer must not find this attempt still pending
	// (it would be refused with nok and wait for a dial that never comes).
	pend := n.pending[peer]
	if pend != nil {
		delete(n.pending, peer)
	}
	// The attempt (and the pending one, if another) has won: no failure
	// of its dial or of a handshake still joined to it may end it now, and
	// those handshakes, cancelled when it finishes below, may not install
	// a link.
	for _, w := range []*attempt{a, pend} {
		if w != nil {
			w.won = true
			clear(w.ins)
		}
	}
	n.mu.Unlock()
	if old != nil {
		old.close(errors.New("replaced by a new connection"))
	}
	n.handler.ConnUp(l.pub)
	l.start()
	n.log.Debug("link up", "peer", peer, "inbound", inbound, "negotiated_flags", res.Flags.String(),
		"peer_flags", res.Peer.Flags.String())
	n.emit(Event{Kind: EventHandshakeOK, Peer: peer, Inbound: inbound})
	close(l.announced) // from now on the link may report its own end
	// Only now wake the Connect calls waiting for this link, so what they
	// observe (logs, events, metrics) already includes it.
	n.mu.Lock()
	if pend != nil {
		n.finishLocked(peer, pend, nil, false)
	}
	if a != nil && a != pend {
		n.finishLocked(peer, a, nil, false)
	}
	n.mu.Unlock()
	return true
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
