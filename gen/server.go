package gen

import (
	"context"
	"errors"
	"fmt"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/process"
)

// From identifies the caller of a gen_server call: the {Pid, Tag} of the '$gen_call' message.
// Reply answers it.
type From struct {
	Pid etf.Pid
	Tag etf.Term // a reference, or [alias|Ref] from OTP 24+
}

// Term returns {Pid, Tag}.
func (f From) Term() etf.Tuple { return etf.Tuple{f.Pid, f.Tag} }

// Handler is what a Go gen_server does. The methods run one at a time, on the server's own
// goroutine, in the order the messages arrived, so they may block (a slow handler delays the
// messages behind it, as in a gen_server) and need no locking of the state they share.
//
// An error returned by a method, or a panic in it, ends the server: its process exits with the
// reason (see Stop, and ExitReason for the reason a plain error gives), callers waiting on it get
// that reason through their monitor, as from a crashed gen_server, and the node keeps running.
type Handler interface {
	// HandleCall answers a call: the reply goes back to the caller. Returning ErrNoReply
	// instead leaves the caller waiting for a later Server.Reply(from, reply).
	HandleCall(from From, req etf.Term) (reply etf.Term, err error)
	// HandleCast handles a {'$gen_cast', Msg}.
	HandleCast(msg etf.Term) error
	// HandleInfo handles any other message.
	HandleInfo(msg etf.Term) error
}

// Funcs is a Handler made of functions; a nil field behaves as in a gen_server without that
// callback clause: a call or a cast ends the server with {bad_call, Req} or {bad_cast, Msg}, an
// info message is dropped.
type Funcs struct {
	Call func(from From, req etf.Term) (etf.Term, error)
	Cast func(msg etf.Term) error
	Info func(msg etf.Term) error
}

// HandleCall calls f.Call.
func (f Funcs) HandleCall(from From, req etf.Term) (etf.Term, error) {
	if f.Call == nil {
		return nil, Stop(etf.Tuple{etf.Atom("bad_call"), req})
	}
	return f.Call(from, req)
}

// HandleCast calls f.Cast.
func (f Funcs) HandleCast(msg etf.Term) error {
	if f.Cast == nil {
		return Stop(etf.Tuple{etf.Atom("bad_cast"), msg})
	}
	return f.Cast(msg)
}

// HandleInfo calls f.Info.
func (f Funcs) HandleInfo(msg etf.Term) error {
	if f.Info == nil {
		return nil
	}
	return f.Info(msg)
}

// ErrNoReply, returned by HandleCall, means the handler answers later with Server.Reply.
var ErrNoReply = errors.New("gen: no reply yet")

// StopError, returned by a Handler method, ends the server with Reason as its exit reason
// (normal and shutdown too, like {stop, Reason, State}).
type StopError struct{ Reason etf.Term }

func (e *StopError) Error() string { return fmt.Sprintf("gen: server stops with reason %v", e.Reason) }

// Stop returns a *StopError: the server exits with reason.
func Stop(reason etf.Term) error { return &StopError{Reason: reason} }

// ExitReason returns the exit reason a Handler error gives the server: the reason of a
// *StopError, else {go_error, <<Message>>}.
func ExitReason(err error) etf.Term {
	var se *StopError
	if errors.As(err, &se) {
		return se.Reason
	}
	return etf.Tuple{etf.Atom("go_error"), []byte(err.Error())}
}

// ServerOptions configure StartServer.
type ServerOptions struct {
	// Name registers the server's process under this name on the node, so BEAM reaches it as
	// {Name, GoNode}.
	Name etf.Atom
}

// Server is a running Go gen_server: a process with a mailbox served by one goroutine.
type Server struct {
	p    *process.Process
	h    Handler
	done chan struct{}
}

// Initer is implemented by a Handler that wants to run code before the first message, like
// gen_server's init/1: Init runs on the server's goroutine, StartServer waits for it, and an
// error from it is StartServer's error (the server's process then exits with the reason).
type Initer interface {
	Init(s *Server) error
}

// StartServer starts a Go gen_server on n. It serves '$gen_call' and '$gen_cast' messages with h
// until h fails, Stop is called or the node stops. A panic in h is recovered: the server's
// process exits with {go_panic, <<Message>>}.
func StartServer(n *process.Node, h Handler, o *ServerOptions) (*Server, error) {
	p := n.Spawn()
	if o != nil && o.Name != "" {
		if err := p.Register(o.Name); err != nil {
			p.Exit(atomNormal)
			return nil, err
		}
	}
	s := &Server{p: p, h: h, done: make(chan struct{})}
	initErr := make(chan error, 1)
	go s.loop(initErr)
	if err := <-initErr; err != nil {
		<-s.done
		return nil, err
	}
	return s, nil
}

// Pid returns the server's pid.
func (s *Server) Pid() etf.Pid { return s.p.Pid() }

// Process returns the server's process.
func (s *Server) Process() *process.Process { return s.p }

// Done is closed once the server's goroutine has returned (after its process exited).
func (s *Server) Done() <-chan struct{} { return s.done }

// Reason returns the server's exit reason, or nil while it runs.
func (s *Server) Reason() etf.Term { return s.p.Reason() }

// Stop ends the server with reason and waits for its goroutine, like gen_server:stop.
func (s *Server) Stop(reason etf.Term) {
	s.p.Exit(reason)
	<-s.done
}

// Reply answers a call whose HandleCall returned ErrNoReply, like gen_server:reply.
func (s *Server) Reply(from From, reply etf.Term) error { return s.p.Reply(from.Term(), reply) }

func (s *Server) loop(initErr chan<- error) {
	defer close(s.done)
	if err := s.init(); err != nil {
		s.p.Exit(ExitReason(err))
		initErr <- err
		return
	}
	initErr <- nil
	for {
		m, err := s.p.Receive(context.Background())
		if err != nil {
			return // exited
		}
		if reason, stop := s.handle(m); stop {
			s.p.Exit(reason)
			return
		}
	}
}

func (s *Server) init() (err error) {
	i, ok := s.h.(Initer)
	if !ok {
		return nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("gen: Init panicked: %v", r)
		}
	}()
	return i.Init(s)
}

// handle runs one message through the handler; stop says the server must exit with reason.
func (s *Server) handle(m etf.Term) (reason etf.Term, stop bool) {
	defer func() {
		if r := recover(); r != nil {
			reason, stop = etf.Tuple{etf.Atom("go_panic"), []byte(fmt.Sprint(r))}, true
		}
	}()
	t, _ := m.(etf.Tuple)
	switch {
	case len(t) == 3 && t[0] == atomGenCall:
		from, ok := fromTerm(t[1])
		if !ok {
			return nil, false // not a call: a gen_server would crash; drop it instead
		}
		reply, err := s.h.HandleCall(from, t[2])
		if errors.Is(err, ErrNoReply) {
			return nil, false
		}
		if err != nil {
			return ExitReason(err), true
		}
		_ = s.p.Reply(from.Term(), reply)
	case len(t) == 2 && t[0] == atomGenCast:
		if err := s.h.HandleCast(t[1]); err != nil {
			return ExitReason(err), true
		}
	case len(t) == 3 && t[0] == etf.Atom("system"):
		s.system(t[1], t[2])
	default:
		if err := s.h.HandleInfo(m); err != nil {
			return ExitReason(err), true
		}
	}
	return nil, false
}

// system answers sys requests ({system, From, Req}) with {error, {unknown_system_msg, Req}},
// so sys:get_state and the like raise at once in the caller instead of waiting. (The reply
// to get_state is the bare state up to OTP 25 and {ok, State} from OTP 27 on, and a server
// cannot tell which its caller runs, so no state is shown.)
func (s *Server) system(from, req etf.Term) {
	f, ok := fromTerm(from)
	if !ok {
		return
	}
	_ = s.p.Reply(f.Term(), etf.Tuple{etf.Atom("error"), etf.Tuple{etf.Atom("unknown_system_msg"), req}})
}

func fromTerm(t etf.Term) (From, bool) {
	ft, ok := t.(etf.Tuple)
	if !ok || len(ft) != 2 {
		return From{}, false
	}
	pid, ok := ft[0].(etf.Pid)
	if !ok {
		return From{}, false
	}
	return From{Pid: pid, Tag: ft[1]}, true
}
