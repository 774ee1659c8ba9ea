package node

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/distribute-go/distribute/handshake"
)

// Connection attempts.
//
// An attempt is one connection setup to a peer that Connect calls wait for. Its participants
// are our own dial (at most one, started by Connect) and the inbound handshakes from the peer
// that joined it (any number). It has two independent pieces of state, each changed only by
// its transition methods below, which refuse (and report through onIllegalTransition) any
// change the table does not allow:
//
//	phase:  pending --won--> won --end(nil)--> ended
//	        pending --end(err)--> ended            (ended is final; a second end is ignored)
//	dial:   none                                   (an inbound or "alive" attempt: no dial)
//	        running --> yielded --> ended          (we answered ok_simultaneous)
//	        running --> lost    --> ended          (the peer answered nok: its handshake carries us)
//	        running --> ended
//
// Invariants (all fields but done, ctx and abort are under n.mu):
//
//  1. n.pending[peer] is the attempt new Connect calls and handshakes from peer join. An
//     attempt is in n.pending only while pending; the critical section that installs a link
//     for peer also removes its pending attempt, so a handshake from the peer after a link
//     drop never finds a stale pending attempt (it would answer nok and wait for a dial that
//     never comes). An "alive" attempt (made for a handshake answered alive) is never in
//     n.pending.
//  2. An attempt ends exactly once, when its last participant leaves: the dial ended (or
//     there was none) and no handshake is joined. leaveLocked is that one rule. A won
//     attempt is ended only by addLink, with no error: no failure of a dial or handshake
//     still joined to it may end it (addLink clears the joined handshakes, which makes them
//     lose, and cancels them by ending the attempt).
//  3. a.err and a.inboundFailed are written once, before done closes; Connect reads them
//     after done without the lock. inboundFailed says the attempt ended because the peer's
//     handshake failed (then Connect dials again) rather than our dial.
//  4. Every inbound handshake joined to an attempt ends with the attempt's setup time
//     (a.ctx), so a chain of handshakes under the peer's name cannot keep it pending. The one
//     exception is a.late: handshakes still joined when another inbound handshake from the
//     peer won the attempt (no longer pending) go on, bounded by their own setup time, and
//     one that finishes replaces that link (the peer's newer connection).
//  5. A dial that yielded never installs a link, and its socket is closed synchronously in
//     decide, so it writes no byte after the peer heard ok_simultaneous. A handshake of an
//     "alive" attempt installs its link only over the link it was answered about, or none.
//  6. addLink announces a link (queues its EventHandshakeOK and closes l.announced) before it
//     calls Handler.ConnUp; link.close waits for the announcement, so a link's EventLinkDown
//     always follows its EventHandshakeOK, and a ConnUp that closes the link waits for nothing.
//
// The lock rule: n.mu is never held across closing a link, emitting an event, calling the
// Handler or writing a socket (a handshake included). Each of those can wait for other
// goroutines that need n.mu. Decide closes a yielded dial's socket under n.mu: a close, not
// a write, and it must be synchronous (invariant 5).

// attemptPhase is where an attempt is in its life.
type attemptPhase int

const (
	phasePending attemptPhase = iota // waiting for a handshake to finish
	phaseWon                         // a link is up for it; the waiters are about to be woken
	phaseEnded                       // done is closed; err says how it ended
)

func (p attemptPhase) String() string {
	return [...]string{"pending", "won", "ended"}[p]
}

// dialState is where our own dial for an attempt is.
type dialState int

const (
	dialNone    dialState = iota // the attempt has no dial of ours
	dialRunning                  // EPMD lookup, TCP dial or handshake in progress
	dialYielded                  // aborted: we answered ok_simultaneous to the peer's handshake
	dialLost                     // the peer answered nok: the dial waits for the peer's handshake
	dialEnded                    // the dial goroutine is done with the attempt
)

func (d dialState) String() string {
	return [...]string{"none", "running", "yielded", "lost", "ended"}[d]
}

// legalDial lists the dial transitions.
var legalDial = map[dialState][]dialState{
	dialRunning: {dialYielded, dialLost, dialEnded},
	dialYielded: {dialEnded},
	dialLost:    {dialEnded},
}

// onIllegalTransition is told about a transition the tables refuse: a bug in this file, not
// something a peer can cause. Tests make it fail the test; in production it is logged.
var onIllegalTransition = func(n *Node, what string) {
	n.log.Error("connection attempt: illegal state transition (a bug)", "transition", what)
}

// attempt is one connection setup to a peer, inbound or outbound, that Connect calls join.
type attempt struct {
	done chan struct{}
	err  error
	// ctx ends one SetupTimeout after the attempt began, or when it ends; it bounds every
	// inbound handshake joined to it (invariant 4).
	ctx    context.Context
	cancel context.CancelFunc

	phase attemptPhase
	dial  dialState
	abort context.CancelFunc // cancels our dial (dial != dialNone)
	conn  net.Conn           // our dial's connection once it is up, for decide to close
	// ins: the inbound handshakes from the peer joined to the attempt. A newer one does not
	// displace an older one (which may be the live one, the newer a stale name message from a
	// socket the peer already closed): the first to finish installs the link and the rest
	// lose.
	ins map[net.Conn]bool
	// replaces: for an "alive" attempt, the link the handshake was answered alive about; nil
	// for the others. It may install its link only while that link or none is up.
	alive    bool
	replaces *link
	// late: inbound handshakes that were joined when another inbound handshake from the peer
	// won the attempt, with the link it installed (winner). One that finishes is the peer's
	// newer connection (the peer dials one at a time; a stale socket or an impostor cannot
	// finish): it replaces winner instead of losing, and the attempt's end does not cancel it
	// (its own SetupTimeout still bounds it).
	late   map[net.Conn]bool
	winner *link
	// inboundFailed: ended because the peer's handshake failed, not our dial (invariant 3).
	inboundFailed bool
}

// newAttempt returns a pending attempt whose setup time starts now (under n.mu).
func (n *Node) newAttempt() *attempt {
	ctx, cancel := context.WithTimeout(n.ctx, n.opts.SetupTimeout)
	return &attempt{done: make(chan struct{}), ctx: ctx, cancel: cancel, ins: map[net.Conn]bool{}}
}

// setDial moves the dial to s (under n.mu); false, and nothing changes, when the table
// refuses it.
func (n *Node) setDial(a *attempt, s dialState) bool {
	for _, ok := range legalDial[a.dial] {
		if ok == s {
			a.dial = s
			return true
		}
	}
	onIllegalTransition(n, "dial "+a.dial.String()+" -> "+s.String())
	return false
}

// dialCarries reports whether our dial is still a participant that will end the attempt
// itself when it finishes (invariant 2).
func (a *attempt) dialCarries() bool { return a.dial == dialRunning || a.dial == dialYielded }

// won reports whether a link is up for a (under n.mu).
func (a *attempt) won() bool {
	return a.phase == phaseWon || (a.phase == phaseEnded && a.err == nil)
}

// winLocked marks a as won (under n.mu): no failure may end it now, and the handshakes still
// joined to it lose. A won or ended attempt stays as it is: a dial the peer chose may finish
// after another handshake of the same peer already ended its attempt with a link.
func (n *Node) winLocked(a *attempt) {
	switch a.phase {
	case phasePending:
		a.phase = phaseWon
	case phaseEnded:
		if a.err != nil {
			onIllegalTransition(n, "phase ended with an error -> won")
			return
		}
	}
	clear(a.ins)
}

// endLocked ends attempt a for peer with err, once (under n.mu); a second end is ignored
// (invariant 2). inboundFailed says the peer's handshake failed, not our dial.
func (n *Node) endLocked(peer string, a *attempt, err error, inboundFailed bool) {
	switch a.phase {
	case phaseEnded:
		return
	case phaseWon:
		if err != nil {
			onIllegalTransition(n, "phase won -> ended with an error")
			return
		}
	}
	a.phase = phaseEnded
	if n.pending[peer] == a {
		delete(n.pending, peer)
	}
	a.err, a.inboundFailed = err, inboundFailed
	close(a.done)
	a.cancel() // cancels the inbound handshakes still joined to it
}

// leaveLocked ends a with err when its last participant has left and no link won it
// (under n.mu): the one place that decides an attempt failed.
func (n *Node) leaveLocked(peer string, a *attempt, err error, inboundFailed bool) {
	if a.phase == phasePending && len(a.ins) == 0 && !a.dialCarries() {
		n.endLocked(peer, a, err, inboundFailed)
	}
}

// connectRetries bounds how often one Connect call starts over after the
// attempt it joined ended with the peer's inbound handshake failing.
const connectRetries = 3

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
		// attempt's link may end this one while its dial must go on (the
		// peer answered that dial's "alive" and chose it).
		dctx, cancel := context.WithTimeout(n.ctx, n.opts.SetupTimeout)
		a.dial, a.abort = dialRunning, cancel
		n.pending[peer] = a
		n.wg.Add(1)
		go n.dial(dctx, a, peer)
	}
	return a, nil
}

// dial runs an outbound attempt: EPMD lookup, TCP dial, handshake.
func (n *Node) dial(ctx context.Context, a *attempt, peer string) {
	defer n.wg.Done()
	defer n.own()() // it calls Handler.ConnUp
	defer a.abort()
	conn, err := n.dialPeer(ctx, peer)
	if err == nil {
		// Publish the connection so that decide can close it at once when
		// this attempt yields to the peer's.
		n.mu.Lock()
		if a.dial == dialYielded {
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
		if a.dial == dialRunning {
			n.setDial(a, dialLost)
		}
		n.mu.Unlock()
		select {
		case <-a.done:
			n.mu.Lock()
			n.setDial(a, dialEnded)
			n.mu.Unlock()
			return
		case <-ctx.Done():
			err = fmt.Errorf("lost a simultaneous connect and the peer's connection did not arrive: %w", ctx.Err())
		}
	}
	if n.ctx.Err() != nil {
		err = errNodeStopped
	}
	n.mu.Lock()
	yielded := a.dial == dialYielded
	quiet := yielded || a.won() // aborted for the peer's attempt, or a link is up anyway
	n.mu.Unlock()
	if !quiet {
		n.log.Debug("connect failed", "peer", peer, "err", err)
		n.emit(Event{Kind: EventHandshakeFailed, Peer: peer, Err: err})
	}
	n.mu.Lock()
	n.setDial(a, dialEnded)
	// A dial that yielded ends the attempt only once the handshake it
	// yielded to failed: that is the peer's failure, not ours.
	n.leaveLocked(peer, a, err, yielded)
	n.mu.Unlock()
}

func (n *Node) accept(conn net.Conn) {
	defer n.wg.Done()
	defer n.own()() // it calls Handler.ConnUp
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
			// handshake too, unless another inbound handshake from
			// the peer won it meanwhile (a.late: this one may still
			// replace that link).
			att := a
			stopJoin = context.AfterFunc(a.ctx, func() {
				n.mu.Lock()
				late := att.late[conn]
				n.mu.Unlock()
				if !late {
					cancel()
				}
			})
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
		if a.ins[conn] { // the attempt has not been won meanwhile
			delete(a.ins, conn)
			n.leaveLocked(peer, a, err, true)
		}
		n.mu.Unlock()
	}
}

// arbitration is what decide knows when a handshake from a peer asks to go on: the node's
// state and that of its link and pending attempt for the peer.
type arbitration struct {
	stopped bool      // the node is stopping
	self    bool      // the peer claims our own name
	linked  bool      // a link to the peer is up
	pending bool      // an attempt to the peer is pending
	joined  int       // inbound handshakes joined to the pending attempt
	dial    dialState // the pending attempt's dial
	weWin   bool      // our name sorts above the peer's: a simultaneous connect is ours
}

// arbitrated is what decide does with the handshake, besides answering its status.
type arbitrated int

const (
	arbRefuse    arbitrated = iota // the handshake belongs to no attempt
	arbAlive                       // a new "alive" attempt, outside n.pending
	arbNew                         // a new pending attempt
	arbJoin                        // it joins the pending attempt
	arbYieldDial                   // it joins the pending attempt, whose dial is aborted
)

// arbitrate is the rule an inbound handshake is answered by (the status of the
// handshake's 's' message), as a pure function.
//
//   - not_allowed: the node is stopping, or the peer claims our name.
//   - alive: we hold a link; the peer must have lost its side, the handshake asks it.
//   - ok: nothing pending: a new attempt.
//   - ok_simultaneous, joining: another handshake from this peer is pending. BEAM answers
//     nok when its own name sorts higher and otherwise drops the older one; neither is safe
//     (a peer answered nok waits for a dial of ours that never comes, so a stalled impostor
//     handshake would lock it out, and the older one may be the live one). Both go on; the
//     first to finish wins, within the attempt's setup time.
//   - nok: our dial is running and our name sorts higher: ours goes on.
//   - ok_simultaneous, yielding: our dial is running and the peer's name sorts higher: as in
//     BEAM our dial is dropped (left running it would reach the peer after the peer's link is
//     up, get alive, and replace that fresh link).
//   - ok, joining: our dial lost (nok from the peer) or yielded and waits for this one.
func arbitrate(in arbitration) (handshake.Status, arbitrated) {
	switch {
	case in.stopped || in.self:
		return handshake.StatusNotAllowed, arbRefuse
	case in.linked:
		return handshake.StatusAlive, arbAlive
	case !in.pending:
		return handshake.StatusOK, arbNew
	case in.joined > 0:
		return handshake.StatusOKSimultaneous, arbJoin
	case in.dial == dialRunning && in.weWin:
		return handshake.StatusNok, arbRefuse
	case in.dial == dialRunning:
		return handshake.StatusOKSimultaneous, arbYieldDial
	default:
		return handshake.StatusOK, arbJoin
	}
}

// decide arbitrates an inbound handshake from peer against our own links
// and attempts. It returns the attempt the inbound handshake now belongs
// to, if it goes on.
func (n *Node) decide(peer string, conn net.Conn) (handshake.Status, *attempt) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l := n.links[peer]
	a := n.pending[peer]
	in := arbitration{stopped: n.stopped, self: peer == n.name, linked: l != nil, pending: a != nil, weWin: n.name > peer}
	if a != nil {
		in.joined, in.dial = len(a.ins), a.dial
	}
	st, act := arbitrate(in)
	switch act {
	case arbRefuse:
		return st, nil
	case arbAlive:
		// On "true" the new link replaces ours, unless a newer link is up
		// by then.
		a = n.newAttempt()
		a.alive, a.replaces = true, l
	case arbNew:
		a = n.newAttempt()
		n.pending[peer] = a
	case arbJoin:
		if in.joined > 0 {
			n.log.Debug("another handshake from this peer joins the pending one", "peer", peer)
		}
	case arbYieldDial:
		// The dial's connection is closed here, synchronously, so it
		// cannot write another byte once the peer hears ok_simultaneous.
		n.setDial(a, dialYielded)
		a.abort()
		if a.conn != nil {
			_ = a.conn.Close()
		}
	}
	a.ins[conn] = true
	return st, a
}

// stillDialing answers a peer's "alive" status during our dial: go on
// only while our attempt is still the pending one for that peer (BEAM's
// is_pending), not after it yielded to the peer's own attempt.
func (n *Node) stillDialing(peer string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	a := n.pending[peer]
	return a != nil && a.dial == dialRunning
}

// addLink installs a link for a finished handshake; false if the node is
// stopping or the handshake lost. a is the attempt the handshake belongs
// to: a dial that yielded to the peer's attempt, an inbound handshake
// whose attempt was won by another connection, or an "alive" handshake
// whose link was replaced meanwhile installs nothing (invariant 5).
func (n *Node) addLink(conn net.Conn, res *handshake.Result, a *attempt, inbound bool) bool {
	peer := res.Peer.Name
	l := newLink(n, conn, res)
	n.mu.Lock()
	old := n.links[peer]
	// A late handshake replaces the link that won its attempt while that link is current.
	late := inbound && a != nil && a.late[conn] && old != nil && old == a.winner
	if a != nil {
		delete(a.late, conn)
	}
	superseded := a != nil && ((!inbound && a.dial == dialYielded) || (inbound && !a.ins[conn] && !late) ||
		(a.alive && old != nil && old != a.replaces))
	if n.stopped || superseded {
		n.mu.Unlock()
		return false
	}
	n.links[peer] = l
	// The pending attempt leaves n.pending with the link installed, in the
	// same critical section (invariant 1).
	pend := n.pending[peer]
	if pend != nil {
		delete(n.pending, peer)
	}
	if inbound && a != nil && a.phase == phasePending {
		for c := range a.ins {
			if c != conn {
				if a.late == nil {
					a.late = map[net.Conn]bool{}
				}
				a.late[c] = true
			}
		}
		a.winner = l
	}
	// The attempt (and the pending one, if another) has won (invariant 2).
	for _, w := range []*attempt{a, pend} {
		if w != nil {
			n.winLocked(w)
		}
	}
	n.mu.Unlock()
	if old != nil {
		old.close(errors.New("replaced by a new connection"))
	}
	n.log.Debug("link up", "peer", peer, "inbound", inbound, "negotiated_flags", res.Flags.String(),
		"peer_flags", res.Peer.Flags.String())
	n.emit(Event{Kind: EventHandshakeOK, Peer: peer, Inbound: inbound})
	// From now on the link may report its own end. Before the Handler is
	// called: a ConnUp that closes the link (Disconnect, Stop) must not
	// wait for this.
	close(l.announced)
	n.handler.ConnUp(l.pub)
	l.start()
	// Only now wake the Connect calls waiting for this link, so what they
	// observe (logs, metrics) already includes it.
	n.mu.Lock()
	if pend != nil {
		n.endLocked(peer, pend, nil, false)
	}
	if a != nil && a != pend {
		n.endLocked(peer, a, nil, false)
	}
	n.mu.Unlock()
	return true
}
