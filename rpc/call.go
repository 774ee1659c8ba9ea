// Package rpc is remote procedure calls both ways between a distribute node and BEAM: Call runs
// Module:Function(Args...) on a BEAM node (the erpc way, or through rex for peers without
// spawn_request), and a Registry of Go functions serves erpc:call, rpc:call, erpc:multicall,
// rpc:multicall and erl_call from BEAM (SPAWN_REQUEST of erpc:execute_call/4, and the rex
// server).
package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/gen"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/process"
)

// Sentinels matched with errors.Is by a *BadRPC.
var (
	// ErrNodeDown: the node cannot be reached or its connection went down ({badrpc, nodedown}).
	ErrNodeDown = errors.New("nodedown")
	// ErrTimeout: ctx ended before the result ({badrpc, timeout}).
	ErrTimeout = errors.New("timeout")
	// ErrNotSup: the node does not serve the request ({badrpc, notsup}).
	ErrNotSup = errors.New("notsup")
)

// Exception is an exception the called function raised, as erpc:call re-raises it: Class is
// error, exit or throw; Stack is the stacktrace of an error (trimmed by erpc to the frames below
// the call), nil for the other classes.
type Exception struct {
	Class  etf.Atom
	Reason etf.Term
	Stack  etf.Term
}

func (e *Exception) Error() string {
	if e.Stack != nil {
		return fmt.Sprintf("rpc: %s:%v (stacktrace %v)", e.Class, e.Reason, e.Stack)
	}
	return fmt.Sprintf("rpc: %s:%v", e.Class, e.Reason)
}

// Throw, Exit and Error make the *Exception a Go function returns to raise that class in its
// BEAM caller. Error's stack is [{Module, Function, Arity, []}] of the called function.
func Throw(reason etf.Term) *Exception { return &Exception{Class: atomThrow, Reason: reason} }

// Exit makes an exit exception (see Throw).
func Exit(reason etf.Term) *Exception { return &Exception{Class: atomExit, Reason: reason} }

// Error makes an error exception (see Throw).
func Error(reason etf.Term) *Exception { return &Exception{Class: atomError, Reason: reason} }

// BadRPC is a call that produced no result: Reason is what rpc:call returns in
// {badrpc, Reason}: nodedown, timeout, notsup, {'EXIT', Reason} for a call process that ended
// without a result (killed, or a rex call that raised), or a spawn error such as badarg.
// errors.Is matches ErrNodeDown, ErrTimeout and ErrNotSup by Reason, and the cause in Err.
type BadRPC struct {
	Reason etf.Term
	Err    error
}

func (e *BadRPC) Error() string {
	s := fmt.Sprintf("rpc: badrpc %v", e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is matches the sentinel of Reason.
func (e *BadRPC) Is(target error) bool {
	switch target {
	case ErrNodeDown:
		return e.Reason == atomNodedown
	case ErrTimeout:
		return e.Reason == atomTimeout
	case ErrNotSup:
		return e.Reason == atomNotsup
	}
	return false
}

// Unwrap returns the cause.
func (e *BadRPC) Unwrap() error { return e.Err }

// Method chooses how Call reaches the node.
type Method int

const (
	// Auto uses erpc when the connection negotiated spawn_request (both sides advertise
	// handshake.FlagSpawn), rex otherwise.
	Auto Method = iota
	// ERPC spawns erpc:execute_call/4 on the node; the result comes in the monitor's DOWN
	// reason, with the exception class kept.
	ERPC
	// Rex asks the node's rex server ({call, M, F, A, GroupLeader}). Its answer is rpc-ified
	// on the BEAM side: an exit or error comes back as BadRPC {'EXIT', ...} and a thrown value
	// as a plain result, so the class is lost.
	Rex
)

// CallOptions tune a call. The zero value is Call's behaviour.
type CallOptions struct {
	Method Method
	// Stdout, if set, receives what the called function writes to its group leader (as
	// erl_call's -fetch_stdout), UTF-8; it is complete when Call returns. Otherwise the output
	// is discarded. The erpc way needs the node to advertise handshake.FlagUnicodeIO (see
	// Registry.Configure) for output that mixes UTF-8 binaries with characters above 255.
	Stdout io.Writer
}

// Call runs module:function(args...) on the BEAM node nodeName and returns its value, like
// erpc:call. ctx bounds the call, connection setup included. A raised exception is an
// *Exception; no result at all is a *BadRPC (nodedown, timeout, notsup, ...).
func Call(ctx context.Context, n *process.Node, nodeName string, module, function etf.Atom, args etf.List) (etf.Term, error) {
	return CallWith(ctx, n, nodeName, module, function, args, nil)
}

// CallWith is Call with options; o may be nil.
func CallWith(ctx context.Context, n *process.Node, nodeName string, module, function etf.Atom, args etf.List, o *CallOptions) (etf.Term, error) {
	var opts CallOptions
	if o != nil {
		opts = *o
	}
	if args == nil {
		args = etf.List{}
	}
	if n.Conn(nodeName) == nil {
		if err := n.Connect(ctx, nodeName); err != nil {
			if ctx.Err() != nil {
				return nil, &BadRPC{Reason: atomTimeout, Err: err}
			}
			return nil, &BadRPC{Reason: atomNodedown, Err: err}
		}
	}
	c := n.Conn(nodeName)
	if c == nil {
		return nil, &BadRPC{Reason: atomNodedown}
	}
	method := opts.Method
	if method == Auto {
		method = Rex
		if c.Flags()&handshake.FlagSpawn != 0 {
			method = ERPC
		}
	}
	if method == Rex {
		return callRex(ctx, n, nodeName, module, function, args, opts.Stdout)
	}
	return callERPC(ctx, n, nodeName, module, function, args, opts.Stdout)
}

func callERPC(ctx context.Context, n *process.Node, nodeName string, module, function etf.Atom, args etf.List, stdout io.Writer) (etf.Term, error) {
	p := n.Spawn()
	defer p.Exit(atomNormal)
	var gl *captureGL
	so := process.SpawnOptions{Monitor: true, Reply: process.ReplyErrorOnly}
	if stdout != nil {
		gl = startCaptureGL(ctx, n, stdout)
		defer gl.stop()
		so.GroupLeader = gl.p.Pid()
	}
	res := n.MakeRef()
	req, err := p.SpawnRequest(nodeName, atomErpc, atomExecuteCall, etf.List{res, module, function, args}, so)
	if err != nil {
		return nil, &BadRPC{Reason: atomNodedown, Err: err}
	}
	m, err := p.ReceiveMatch(ctx, func(t etf.Term) bool {
		x, ok := t.(etf.Tuple)
		if !ok {
			return false
		}
		return len(x) == 4 && x[0] == atomSpawnReply && x[1] == req ||
			len(x) == 5 && x[0] == atomDown && x[1] == req
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, &BadRPC{Reason: atomTimeout, Err: ctx.Err()}
		}
		return nil, &BadRPC{Reason: atomNodedown, Err: err}
	}
	x := m.(etf.Tuple)
	if x[0] == atomSpawnReply {
		switch r := x[3]; r {
		case atomNoconn:
			return nil, &BadRPC{Reason: atomNodedown}
		default:
			return nil, &BadRPC{Reason: r}
		}
	}
	if gl != nil {
		gl.stop() // every write was answered before the process ended
	}
	return erpcResult(res, x[4])
}

// erpcResult decodes the DOWN reason of an erpc:execute_call process.
func erpcResult(res etf.Ref, reason etf.Term) (etf.Term, error) {
	if reason == atomNoconn {
		return nil, &BadRPC{Reason: atomNodedown}
	}
	t, ok := reason.(etf.Tuple)
	if ok && len(t) >= 3 && t[0] == res {
		switch {
		case len(t) == 3 && t[1] == atomReturn:
			return t[2], nil
		case len(t) == 3 && (t[1] == atomThrow || t[1] == atomExit):
			return nil, &Exception{Class: t[1].(etf.Atom), Reason: t[2]}
		case len(t) == 4 && t[1] == atomError:
			return nil, &Exception{Class: atomError, Reason: t[2], Stack: t[3]}
		case len(t) == 3 && t[1] == atomError:
			// {Ref, error, {erpc, R}}: erpc raises error({erpc, R}).
			return nil, &Exception{Class: atomError, Reason: t[2]}
		}
	}
	// The process ended some other way (killed, ...): erpc exits {signal, Reason}, rpc
	// returns {badrpc, {'EXIT', Reason}}.
	return nil, &BadRPC{Reason: etf.Tuple{atomEXIT, reason}}
}

func callRex(ctx context.Context, n *process.Node, nodeName string, module, function etf.Atom, args etf.List, stdout io.Writer) (etf.Term, error) {
	p := n.Spawn()
	defer p.Exit(atomNormal)
	var gl etf.Term
	if stdout != nil {
		gl = etf.Tuple{atomSendStdout, p.Pid()}
	} else {
		d := newDiscardGL(n)
		defer d.Exit(atomNormal)
		gl = d.Pid()
	}
	r, err := gen.CallFrom(ctx, p, process.Name{Name: atomRex, Node: nodeName},
		etf.Tuple{atomCall, module, function, args, gl})
	if stdout != nil {
		// rex's group leader streams {rex_stdout, Bin} to p before it sends the reply.
		flushRexStdout(p, stdout)
	}
	switch {
	case errors.Is(err, gen.ErrTimeout):
		return nil, &BadRPC{Reason: atomTimeout, Err: err}
	case errors.Is(err, gen.ErrNodeDown):
		return nil, &BadRPC{Reason: atomNodedown, Err: err}
	case err != nil:
		var ce *gen.CallError
		if errors.As(err, &ce) {
			return nil, &BadRPC{Reason: etf.Tuple{atomEXIT, ce.Reason}, Err: err}
		}
		return nil, &BadRPC{Reason: etf.Tuple{atomEXIT, []byte(err.Error())}, Err: err}
	}
	if t, ok := r.(etf.Tuple); ok && len(t) == 2 && t[0] == atomBadrpc {
		return nil, &BadRPC{Reason: t[1]}
	}
	return r, nil
}

func flushRexStdout(p *process.Process, w io.Writer) {
	done, cancel := context.WithCancel(context.Background())
	cancel()
	for {
		m, err := p.ReceiveMatch(done, func(t etf.Term) bool {
			x, ok := t.(etf.Tuple)
			return ok && len(x) == 2 && x[0] == atomRexStdout
		})
		if err != nil {
			return
		}
		if b, ok := m.(etf.Tuple)[1].([]byte); ok {
			_, _ = w.Write(b)
		}
	}
}

var (
	atomNormal      = etf.Atom("normal")
	atomNodedown    = etf.Atom("nodedown")
	atomNoconn      = etf.Atom("noconnection")
	atomTimeout     = etf.Atom("timeout")
	atomNotsup      = etf.Atom("notsup")
	atomErpc        = etf.Atom("erpc")
	atomExecuteCall = etf.Atom("execute_call")
	atomSpawnReply  = etf.Atom("spawn_reply")
	atomDown        = etf.Atom("DOWN")
	atomReturn      = etf.Atom("return")
	atomThrow       = etf.Atom("throw")
	atomExit        = etf.Atom("exit")
	atomError       = etf.Atom("error")
	atomEXIT        = etf.Atom("EXIT")
	atomRex         = etf.Atom("rex")
	atomCall        = etf.Atom("call")
	atomBadrpc      = etf.Atom("badrpc")
	atomSendStdout  = etf.Atom("send_stdout_to_caller")
	atomRexStdout   = etf.Atom("rex_stdout")
	atomUndef       = etf.Atom("undef")
	atomOK          = etf.Atom("ok")
)
