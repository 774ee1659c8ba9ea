// Package global makes a visible distribute node a participant of Erlang's global name
// registry (kernel's global, protocol version 8, as OTP 25 through 29 speak it): it runs a
// registered global_name_server process and the locker process that server works with, takes
// part in the connect-time exchange with every visible peer (init_connect, the lockers' lock
// negotiation, the exchange of names, resolved, new_nodes, in_sync), answers the lock requests
// of BEAM's global:set_lock, global:trans and global:register_name, and follows OTP 25+'s
// protection against overlapping partitions (lost_connection, remove_connection).
//
// Names registered on BEAM nodes are visible from Go (Whereis, Send); names registered from Go
// (Register) are visible to BEAM (global:whereis_name returns the Go pid, and the name goes when
// the Go process ends). Like BEAM's global with connect_all (the default), the node connects to
// every node its peers know of, so a visible Go node that connects to one member of a cluster
// ends up connected to all of them.
//
// The node must be visible: its connections must carry handshake.FlagPublished (hidden
// connections are ignored, as BEAM's global ignores them). Start global right after the node;
// starting it later works too: the sessions with peers connected already restart (their first
// init_connect found no server), as they do on BEAM when a connect gets out of step.
package global

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/gen"
	"github.com/distribute-go/distribute/process"
	"github.com/distribute-go/distribute/rpc"
)

// Vsn is the global protocol version this package speaks.
const Vsn = 8

// ServerName is the registered name of global's server process on every node.
const ServerName = etf.Atom("global_name_server")

var (
	// ErrStopped: global (or its node) has stopped.
	ErrStopped = errors.New("global: stopped")
	// ErrNotRegistered: no process is registered under the global name (global:send exits with
	// {badarg, {Name, Msg}}).
	ErrNotRegistered = errors.New("global: name not registered")
)

// Options configure Start. The zero value is usable.
type Options struct {
	// RPC, if set, gets the function global:resolve_it/4 registered, which BEAM nodes call
	// (by rpc) on the node owning a name when a name clash has to be resolved. Without it a
	// clash over a name owned by a Go process is resolved by the other side's default (the
	// name goes to the other owner).
	RPC *rpc.Registry
	// Logger receives global's logs (name conflicts, partitions prevented); nil means silent.
	Logger *slog.Logger
}

// Global is the global name server of one node. Its methods are safe for concurrent use.
type Global struct {
	n    *process.Node
	log  *slog.Logger
	self string
	srv  *gen.Server
	lk   *locker

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	omu  sync.Mutex
	oq   map[string][]outMsg
	orun map[string]bool

	st *state // owned by the server's goroutine

	// tables shared with the API, the locker and the resolvers
	mu     sync.RWMutex
	tables tables
}

// Start starts global's server (registered as global_name_server) and its locker on n.
// It fails when the name is taken (global already runs on n).
func Start(n *process.Node, o *Options) (*Global, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	g := &Global{n: n, log: log, self: n.Self(), oq: map[string][]outMsg{}, orun: map[string]bool{}}
	g.tables.init()
	g.ctx, g.cancel = context.WithCancel(context.Background())
	g.st = newState(g)
	g.lk = newLocker(g) // before the server: its first message may need the locker's pid
	srv, err := gen.StartServer(n, (*handler)(g), &gen.ServerOptions{Name: ServerName})
	if err != nil {
		g.cancel()
		g.lk.p.Exit(etf.Atom("normal"))
		return nil, fmt.Errorf("global: start %s: %w", ServerName, err)
	}
	// g.srv was set by the server's Init, before any message.
	g.wg.Add(2)
	go func() {
		defer g.wg.Done()
		g.lk.run()
	}()
	go func() {
		defer g.wg.Done()
		select {
		case <-srv.Done():
		case <-g.lk.p.Done():
		case <-g.ctx.Done():
		}
		g.cancel()
		srv.Stop(etf.Atom("shutdown"))
		g.lk.p.Exit(etf.Atom("shutdown"))
	}()
	if opts.RPC != nil {
		opts.RPC.Register("global", "resolve_it", 4, g.serveResolveIt)
	}
	// The server learns of the visible connections that are up already, then of every change.
	_ = n.Send(srv.Process(), startMsg{})
	return g, nil
}

// Stop ends global's processes on the node and waits for its goroutines.
func (g *Global) Stop() {
	g.cancel()
	g.wg.Wait()
}

// Done is closed once global's server has ended (Stop, the node stopping).
func (g *Global) Done() <-chan struct{} { return g.srv.Done() }

// Pid returns the pid of the global_name_server process.
func (g *Global) Pid() etf.Pid { return g.srv.Pid() }

// Whereis returns the pid registered under the global name, like global:whereis_name/1.
func (g *Global) Whereis(name etf.Term) (etf.Pid, bool) {
	g.mu.RLock()
	e := g.tables.names[termKey(name)]
	g.mu.RUnlock()
	if e == nil {
		return etf.Pid{}, false
	}
	if string(e.pid.Node) == g.self && !g.n.IsAlive(e.pid) {
		return etf.Pid{}, false
	}
	return e.pid, true
}

// RegisteredNames returns the global names, like global:registered_names/0, in no particular
// order.
func (g *Global) RegisteredNames() []etf.Term {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]etf.Term, 0, len(g.tables.names))
	for _, e := range g.tables.names {
		out = append(out, e.name)
	}
	return out
}

// Send sends msg to the process registered under the global name, from a process of the node's
// own, like global:send/2; it returns the pid sent to. ErrNotRegistered when no process has the
// name.
func (g *Global) Send(name etf.Term, msg etf.Term) (etf.Pid, error) {
	pid, ok := g.Whereis(name)
	if !ok {
		return etf.Pid{}, fmt.Errorf("global: send to %s: %w", etf.Format(name), ErrNotRegistered)
	}
	return pid, g.n.Send(pid, msg)
}

// SendFrom is Send from the process p.
func (g *Global) SendFrom(p *process.Process, name etf.Term, msg etf.Term) (etf.Pid, error) {
	pid, ok := g.Whereis(name)
	if !ok {
		return etf.Pid{}, fmt.Errorf("global: send to %s: %w", etf.Format(name), ErrNotRegistered)
	}
	return pid, p.Send(pid, msg)
}

// DefaultMethod is the resolve function Register gives a name: global:random_exit_name/3,
// BEAM's default (on a clash it keeps the process on the node whose name sorts lower and kills
// the other).
var DefaultMethod etf.Term = etf.Export{Module: "global", Function: "random_exit_name", Arity: 3}

// Register registers pid (of any node) under the global name on every node global knows of,
// like global:register_name/2: it takes global's own lock ({global, Registrar}) on all known
// nodes, asks each server to register the name, and releases the lock. It returns false when
// the name is taken or pid has a global name already. ctx bounds the wait for the lock.
func (g *Global) Register(ctx context.Context, name etf.Term, pid etf.Pid) (bool, error) {
	return g.RegisterWith(ctx, name, pid, DefaultMethod)
}

// RegisterWith is Register with a resolve method: a fun term (such as
// etf.Export{global, random_notify_name, 3}) that travels to every node as it is.
func (g *Global) RegisterWith(ctx context.Context, name etf.Term, pid etf.Pid, method etf.Term) (bool, error) {
	var ok bool
	err := g.transAllKnown(ctx, func(r *process.Process, nodes []string) error {
		if _, taken := g.Whereis(name); taken || g.hasName(pid) {
			return nil
		}
		g.multiCall(r, nodes, etf.Tuple{etf.Atom("register"), name, pid, method})
		ok = true
		return nil
	})
	return ok, err
}

// Unregister removes the global name on every known node, like global:unregister_name/1.
func (g *Global) Unregister(ctx context.Context, name etf.Term) error {
	if _, ok := g.Whereis(name); !ok {
		return nil
	}
	return g.transAllKnown(ctx, func(r *process.Process, nodes []string) error {
		g.multiCall(r, nodes, etf.Tuple{etf.Atom("unregister"), name})
		return nil
	})
}

func (g *Global) hasName(pid etf.Pid) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	for _, e := range g.tables.names {
		if e.pid == pid {
			return true
		}
	}
	return false
}

// Known returns the nodes global knows of (its partition, without this node), sorted.
func (g *Global) Known() ([]string, error) {
	return g.getKnown(g.ctx)
}
