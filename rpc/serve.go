package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// Func is a Go function BEAM can call. It gets the call's arguments and returns the value (a nil
// value returns ok), or an error: an *Exception raises its class in the caller (Throw, Exit, Error); any other error is
// raised as error:{go_error, <<Message>>}, and a panic, recovered, as error:{go_panic,
// <<Message>>}, both with the stacktrace [{Module, Function, Arity, []}]. ctx ends when the call's
// process is ended (an exit signal from the caller, the node stopping); Info(ctx) describes the
// call and Stdout(ctx) writes to the caller's group leader.
type Func func(ctx context.Context, args etf.List) (etf.Term, error)

// AnyArity registers a Func for every arity of a function name.
const AnyArity = -1

// Registry holds the Go functions BEAM can call by module and function name, and serves them
// to erpc (SPAWN_REQUEST of erpc:execute_call/4: erpc:call, erpc:multicall, and rpc:call and
// rpc:multicall of OTP 23+) and to the rex server (rpc of old nodes, erl_call, C nodes). A
// function that is not registered is undef to the caller, as on BEAM. Its methods are safe for
// concurrent use.
//
// Use: reg.Configure(&opts) before process.Start (it sets opts.Spawn and advertises
// handshake.FlagSpawn), then reg.ServeRex(n) once the node runs.
type Registry struct {
	mu    sync.RWMutex
	funcs map[funcKey]Func
}

type funcKey struct {
	m, f  etf.Atom
	arity int
}

// NewRegistry returns a registry holding the built-in functions erlang:node/0 and
// erlang:nodes/0 (the first things erl_call and operators ask a node).
func NewRegistry() *Registry {
	r := &Registry{funcs: map[funcKey]Func{}}
	r.Register("erlang", "node", 0, func(ctx context.Context, _ etf.List) (etf.Term, error) {
		return etf.Atom(Info(ctx).Node.Self()), nil
	})
	r.Register("erlang", "nodes", 0, func(ctx context.Context, _ etf.List) (etf.Term, error) {
		var l etf.List = etf.List{}
		for _, name := range Info(ctx).Node.Nodes() {
			l = append(l, etf.Atom(name))
		}
		return l, nil
	})
	return r
}

// Register makes module:function/arity (arity AnyArity: every arity) call fn, replacing any
// function registered under that key.
func (r *Registry) Register(module, function etf.Atom, arity int, fn Func) {
	if arity < 0 {
		arity = AnyArity
	}
	r.mu.Lock()
	r.funcs[funcKey{module, function, arity}] = fn
	r.mu.Unlock()
}

// Unregister removes module:function/arity.
func (r *Registry) Unregister(module, function etf.Atom, arity int) {
	r.mu.Lock()
	delete(r.funcs, funcKey{module, function, arity})
	r.mu.Unlock()
}

func (r *Registry) lookup(m, f etf.Atom, arity int) Func {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if fn, ok := r.funcs[funcKey{m, f, arity}]; ok {
		return fn
	}
	return r.funcs[funcKey{m, f, AnyArity}]
}

// Configure sets o.Spawn to r.SpawnFunc(), makes sure the node advertises handshake.FlagSpawn
// (the process layer's default; it clears o.NoSpawn), so OTP 23+ callers use erpc with it, and
// adds handshake.FlagUnicodeIO, so BEAM sends the node's group leaders unicode I/O requests
// (without it, io converts them to the old latin1 forms, and chardata that mixes UTF-8
// binaries with characters above 255 arrives garbled).
func (r *Registry) Configure(o *process.Options) {
	o.Spawn, o.NoSpawn = r.SpawnFunc(), false
	o.Node.Flags |= handshake.FlagSpawn | handshake.FlagUnicodeIO
}

// CallInfo describes a call being served.
type CallInfo struct {
	Node        *process.Node
	From        etf.Pid // the calling process
	GroupLeader etf.Term
	Module      etf.Atom
	Function    etf.Atom
	Args        etf.List
	stdout      io.Writer
}

type ctxKey struct{}

// Info returns the call a Func serves (nil outside one).
func Info(ctx context.Context) *CallInfo {
	ci, _ := ctx.Value(ctxKey{}).(*CallInfo)
	return ci
}

// Stdout returns a writer to the caller's group leader: what a Func writes appears where the
// caller's own output goes (its shell, or erl_call's -fetch_stdout). It discards outside a
// call, and when the caller asked for no output.
func Stdout(ctx context.Context) io.Writer {
	if ci := Info(ctx); ci != nil && ci.stdout != nil {
		return ci.stdout
	}
	return io.Discard
}

// SpawnFunc returns the process.SpawnFunc that serves SPAWN_REQUEST: erpc:execute_call/4 runs
// the registered function; a request to spawn anything else (spawn(GoNode, Fun), other MFAs,
// spawn_request) is refused with notsup (spawn/2,4 on BEAM then return a pid that exits at once
// with notsup; spawn_request gets {spawn_reply, ReqId, error, notsup}), and a malformed
// execute_call with badarg.
func (r *Registry) SpawnFunc() process.SpawnFunc {
	return func(n *process.Node, c *node.Conn, req control.SpawnRequest, payload control.Payload) {
		if req.Module != atomErpc || req.Function != atomExecuteCall || req.Arity != 4 {
			n.RefuseSpawn(c, req, atomNotsup)
			return
		}
		t, err := payload.Decode()
		if err != nil {
			n.RefuseSpawn(c, req, etf.Atom("badarg"))
			return
		}
		a, ok := asList(t)
		if !ok || len(a) != 4 {
			n.RefuseSpawn(c, req, etf.Atom("badarg"))
			return
		}
		m, ok1 := a[1].(etf.Atom)
		f, ok2 := a[2].(etf.Atom)
		args, ok3 := asList(a[3])
		if !ok1 || !ok2 || !ok3 {
			n.RefuseSpawn(c, req, etf.Atom("badarg"))
			return
		}
		q := n.AcceptSpawn(c, req)
		ci := &CallInfo{Node: n, From: req.From, GroupLeader: req.GroupLeader, Module: m, Function: f, Args: args}
		ci.stdout = &glWriter{p: q, gl: req.GroupLeader}
		go func() {
			class, reason, stack := r.run(q, ci)
			var exit etf.Term
			switch class {
			case atomReturn, atomThrow, atomExit:
				exit = etf.Tuple{a[0], class, reason}
			default:
				exit = etf.Tuple{a[0], atomError, reason, stack}
			}
			q.Exit(exit)
		}()
	}
}

// run calls the function of ci on behalf of process q (whose end cancels the call's ctx) and
// returns the outcome as erpc:execute_call catches it: class return, throw, exit or error.
func (r *Registry) run(q *process.Process, ci *CallInfo) (class etf.Atom, reason, stack etf.Term) {
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, ci))
	defer cancel()
	go func() {
		select {
		case <-q.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	fn := r.lookup(ci.Module, ci.Function, len(ci.Args))
	here := etf.List{etf.Tuple{ci.Module, ci.Function, int64(len(ci.Args)), etf.List{}}}
	if fn == nil {
		// As BEAM's apply/3 of a missing function: error:undef, stack [{M, F, Args, []}].
		return atomError, atomUndef, etf.List{etf.Tuple{ci.Module, ci.Function, ci.Args, etf.List{}}}
	}
	defer func() {
		if p := recover(); p != nil {
			class, reason, stack = atomError, etf.Tuple{etf.Atom("go_panic"), []byte(fmt.Sprint(p))}, here
		}
	}()
	v, err := fn(ctx, ci.Args)
	if err == nil {
		if v == nil {
			v = atomOK
		}
		return atomReturn, v, nil
	}
	var e *Exception
	if errors.As(err, &e) {
		switch e.Class {
		case atomThrow, atomExit:
			return e.Class, e.Reason, nil
		}
		st := e.Stack
		if st == nil {
			st = here
		}
		return atomError, e.Reason, st
	}
	return atomError, etf.Tuple{etf.Atom("go_error"), []byte(err.Error())}, here
}

// glWriter writes to a group leader with io_request put_chars from process p, waiting for each
// io_reply (bounded by p's life), as io:put_chars does.
type glWriter struct {
	mu sync.Mutex
	p  *process.Process
	gl etf.Term // a pid, or for rex {send_stdout_to_caller, Pid}
}

func (w *glWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(b) == 0 {
		return 0, nil
	}
	data := append([]byte(nil), b...)
	if t, ok := w.gl.(etf.Tuple); ok && len(t) == 2 && t[0] == atomSendStdout {
		if err := w.p.Send(t[1], etf.Tuple{atomRexStdout, data}); err != nil {
			return 0, err
		}
		return len(b), nil
	}
	pid, ok := w.gl.(etf.Pid)
	if !ok {
		return len(b), nil // user, or nothing: discarded
	}
	ref := w.p.Node().MakeRef()
	if err := w.p.Send(pid, etf.Tuple{atomIORequest, w.p.Pid(), ref, etf.Tuple{atomPutChars, atomUnicode, data}}); err != nil {
		return 0, err
	}
	mref, err := w.p.Monitor(pid)
	if err != nil {
		return 0, err
	}
	defer w.p.Demonitor(mref)
	m, err := w.p.ReceiveMatch(context.Background(), func(t etf.Term) bool {
		x, ok := t.(etf.Tuple)
		return ok && (len(x) == 3 && x[0] == atomIOReply && x[1] == ref || len(x) == 5 && x[0] == atomDown && x[1] == mref)
	})
	if err != nil {
		return 0, err
	}
	if x := m.(etf.Tuple); len(x) == 5 || x[2] != atomOK {
		return 0, fmt.Errorf("rpc: group leader %v: %v", pid, x)
	}
	return len(b), nil
}
