// Package gen speaks the gen_server call protocol both ways: Call and Cast reach an Erlang
// gen_server, an Elixir GenServer or a gen_statem from Go (as gen:call and gen_server:cast do),
// and StartServer runs a Go process that serves gen_server:call, GenServer.call and casts from
// BEAM.
//
// A call monitors the target first, sends {'$gen_call', {Pid, Tag}, Request} with Tag
// [alias|Ref] (an alias of the calling process, as OTP 24+ does; a plain reference with a peer
// that does not support aliases), waits for {Tag, Reply} or the monitor's DOWN, then
// deactivates the alias and removes the monitor with flush, so a late reply reaches no mailbox.
package gen

import (
	"context"
	"errors"
	"fmt"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// Sentinels matched with errors.Is by a *CallError.
var (
	// ErrNoProc: the target does not exist (gen:call exits with noproc).
	ErrNoProc = errors.New("noproc")
	// ErrNodeDown: the target's node cannot be reached or its connection went down during the
	// call (gen:call exits with {nodedown, Node}).
	ErrNodeDown = errors.New("nodedown")
	// ErrTimeout: ctx ended before the reply (gen:call exits with timeout).
	ErrTimeout = errors.New("timeout")
	// ErrServerExit: the server exited during the call; CallError.Reason is its exit reason.
	ErrServerExit = errors.New("server exited")
)

// CallError is why a Call got no reply. Reason is the term gen:call would exit with: noproc,
// {nodedown, Node}, timeout, or the server's exit reason. errors.Is matches one of ErrNoProc,
// ErrNodeDown, ErrTimeout, ErrServerExit, and the cause (ctx.Err(), a *node.ConnectError).
type CallError struct {
	To     etf.Term // the target as given
	Reason etf.Term
	Kind   error // one of the sentinels
	Err    error // the cause, or nil
}

func (e *CallError) Error() string {
	s := fmt.Sprintf("gen: call %v: %v", e.To, e.Kind)
	if e.Kind == ErrServerExit {
		s += fmt.Sprintf(" with reason %v", e.Reason)
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the sentinel and the cause.
func (e *CallError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

var (
	atomGenCall  = etf.Atom("$gen_call")
	atomGenCast  = etf.Atom("$gen_cast")
	atomAlias    = etf.Atom("alias")
	atomDown     = etf.Atom("DOWN")
	atomNoproc   = etf.Atom("noproc")
	atomNoconn   = etf.Atom("noconnection")
	atomNodedown = etf.Atom("nodedown")
	atomTimeout  = etf.Atom("timeout")
	atomNormal   = etf.Atom("normal")
)

// Call makes a gen_server call from a fresh process of n that ends with the call, so a late
// reply is dropped by the node. to is an etf.Pid (of any node), a process.Name ({Name, Node}),
// an etf.Atom (a name registered on n) or a *process.Process. ctx bounds the call, connection
// setup included.
func Call(ctx context.Context, n *process.Node, to any, req etf.Term) (etf.Term, error) {
	p := n.Spawn()
	defer p.Exit(atomNormal)
	return CallFrom(ctx, p, to, req)
}

// CallFrom makes a gen_server call from p, a process with a mailbox (see Call). Other messages
// in p's mailbox stay where they are. The reply comes through an alias of p that is
// deactivated before CallFrom returns; with a peer that does not support aliases the tag is a
// reference, and a reply that arrives after CallFrom gave up lands in p's mailbox, as in OTP.
func CallFrom(ctx context.Context, p *process.Process, to any, req etf.Term) (etf.Term, error) {
	n := p.Node()
	peer, err := peerOf(n, to)
	if err != nil {
		return nil, err
	}
	useAlias := true
	if peer != "" {
		if n.Conn(peer) == nil {
			if err := n.Connect(ctx, peer); err != nil {
				if ctx.Err() != nil {
					return nil, &CallError{To: to, Reason: atomTimeout, Kind: ErrTimeout, Err: err}
				}
				return nil, nodeDown(to, peer, err)
			}
		}
		if c := n.Conn(peer); c != nil {
			useAlias = c.Flags()&handshake.FlagAlias != 0
		}
	}
	mref, err := p.Monitor(to)
	if err != nil {
		return nil, fmt.Errorf("gen: call %v: %w", to, err)
	}
	var tag etf.Term = mref
	var alias etf.Ref
	if useAlias {
		alias = p.Alias()
		tag = etf.ImproperList{Elems: []etf.Term{atomAlias}, Tail: alias}
	}
	cleanup := func() {
		if useAlias {
			p.Unalias(alias)
		}
		p.Demonitor(mref)
		flushReplies(p, mref, alias, useAlias)
	}
	err = p.Send(to, etf.Tuple{atomGenCall, etf.Tuple{p.Pid(), tag}, req})
	if err != nil && !errors.Is(err, process.ErrNoProcess) {
		// A connection that failed also shows as the monitor's DOWN; anything else (a term
		// that cannot be encoded) is the caller's.
		var ce *node.ConnectError
		if errors.As(err, &ce) || errors.Is(err, node.ErrNotConnected) {
			cleanup()
			return nil, nodeDown(to, peer, err)
		}
		cleanup()
		return nil, fmt.Errorf("gen: call %v: %w", to, err)
	}
	m, err := p.ReceiveMatch(ctx, func(t etf.Term) bool {
		return isReply(t, mref, alias, useAlias) || isDown(t, mref)
	})
	cleanup()
	if err != nil {
		if ctx.Err() != nil {
			return nil, &CallError{To: to, Reason: atomTimeout, Kind: ErrTimeout, Err: ctx.Err()}
		}
		return nil, fmt.Errorf("gen: call %v: %w", to, err)
	}
	t := m.(etf.Tuple)
	if len(t) == 2 {
		return t[1], nil
	}
	switch reason := t[4]; reason {
	case atomNoproc:
		return nil, &CallError{To: to, Reason: atomNoproc, Kind: ErrNoProc}
	case atomNoconn:
		return nil, nodeDown(to, peer, nil)
	default:
		return nil, &CallError{To: to, Reason: reason, Kind: ErrServerExit}
	}
}

func nodeDown(to any, peer string, err error) *CallError {
	return &CallError{To: to, Reason: etf.Tuple{atomNodedown, etf.Atom(peer)}, Kind: ErrNodeDown, Err: err}
}

// peerOf returns the node of a remote target, "" for a local one.
func peerOf(n *process.Node, to any) (string, error) {
	switch t := to.(type) {
	case etf.Pid:
		if string(t.Node) != n.Self() {
			return string(t.Node), nil
		}
	case process.Name:
		if t.Node != n.Self() {
			return t.Node, nil
		}
	case etf.Atom, *process.Process:
	default:
		return "", fmt.Errorf("gen: call %T: %w", to, process.ErrBadDestination)
	}
	return "", nil
}

func isReply(t etf.Term, mref, alias etf.Ref, useAlias bool) bool {
	m, ok := t.(etf.Tuple)
	if !ok || len(m) != 2 {
		return false
	}
	if !useAlias {
		return m[0] == mref
	}
	l, ok := m[0].(etf.ImproperList)
	return ok && len(l.Elems) == 1 && l.Elems[0] == atomAlias && l.Tail == alias
}

func isDown(t etf.Term, ref etf.Ref) bool {
	m, ok := t.(etf.Tuple)
	return ok && len(m) == 5 && m[0] == atomDown && m[1] == ref
}

// flushReplies removes replies to this call that are already in the mailbox.
func flushReplies(p *process.Process, mref, alias etf.Ref, useAlias bool) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		if _, err := p.ReceiveMatch(done, func(t etf.Term) bool { return isReply(t, mref, alias, useAlias) }); err != nil {
			return
		}
	}
}

// Cast sends {'$gen_cast', Msg} to a gen_server, like gen_server:cast: it does not wait and
// does not know whether the server exists. to is as for Call. The error says only why the
// message could not be sent (a node that cannot be reached, a term that cannot be encoded).
func Cast(n *process.Node, to any, msg etf.Term) error {
	err := n.Send(to, etf.Tuple{atomGenCast, msg})
	if errors.Is(err, process.ErrNoProcess) {
		return nil // gen_server:cast to a missing local name is ok, too
	}
	return err
}

// CastFrom is Cast sent from p.
func CastFrom(p *process.Process, to any, msg etf.Term) error {
	err := p.Send(to, etf.Tuple{atomGenCast, msg})
	if errors.Is(err, process.ErrNoProcess) {
		return nil
	}
	return err
}
