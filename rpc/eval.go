package rpc

import (
	"context"
	"fmt"
	"strings"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/process"
)

// EvalError is Erlang source that did not scan or parse on the node: Message is the node's
// own description (Mod:format_error), Location where it was found.
type EvalError struct {
	Stage    string // "scan" or "parse"
	Location etf.Term
	Message  string
}

func (e *EvalError) Error() string {
	return fmt.Sprintf("rpc: eval: %s error at %v: %s", e.Stage, e.Location, e.Message)
}

// Eval evaluates Erlang expressions on the node nodeName, as erl_call -e does, and returns the
// value of the last one: src ("X = 6, X * 7." — the final dot may be left out) is scanned,
// parsed and evaluated there (erl_scan:string, erl_parse:parse_exprs, erl_eval:exprs with new
// bindings), each step an rpc with o's options (o may be nil; o.Stdout gets the output of the
// evaluation). Source that does not scan or parse is an *EvalError; an exception raised by the
// expressions is an *Exception, as for Call.
func Eval(ctx context.Context, n *process.Node, nodeName, src string, o *CallOptions) (etf.Term, error) {
	var quiet CallOptions
	if o != nil {
		quiet.Method = o.Method
	}
	s := strings.TrimSpace(src)
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	chars := make(etf.List, 0, len(s))
	for _, r := range s {
		chars = append(chars, int64(r))
	}
	scanned, err := CallWith(ctx, n, nodeName, "erl_scan", "string", etf.List{chars}, &quiet)
	if err != nil {
		return nil, err
	}
	st, ok := scanned.(etf.Tuple)
	if !ok || len(st) != 3 {
		return nil, &EvalError{Stage: "scan", Message: fmt.Sprintf("unexpected answer %v", scanned)}
	}
	if st[0] != atomOK {
		return nil, evalError(ctx, n, nodeName, "scan", st[1], &quiet)
	}
	parsed, err := CallWith(ctx, n, nodeName, "erl_parse", "parse_exprs", etf.List{st[1]}, &quiet)
	if err != nil {
		return nil, err
	}
	pt, ok := parsed.(etf.Tuple)
	if !ok || len(pt) != 2 {
		return nil, &EvalError{Stage: "parse", Message: fmt.Sprintf("unexpected answer %v", parsed)}
	}
	if pt[0] != atomOK {
		return nil, evalError(ctx, n, nodeName, "parse", pt[1], &quiet)
	}
	bindings, err := CallWith(ctx, n, nodeName, "erl_eval", "new_bindings", nil, &quiet)
	if err != nil {
		return nil, err
	}
	v, err := CallWith(ctx, n, nodeName, "erl_eval", "exprs", etf.List{pt[1], bindings}, o)
	if err != nil {
		return nil, err
	}
	vt, ok := v.(etf.Tuple)
	if !ok || len(vt) != 3 || vt[0] != etf.Atom("value") {
		return nil, fmt.Errorf("rpc: eval: unexpected answer %v", v)
	}
	return vt[1], nil
}

// evalError describes {Location, Module, Descriptor} with the node's Module:format_error.
func evalError(ctx context.Context, n *process.Node, nodeName, stage string, info etf.Term, o *CallOptions) error {
	e := &EvalError{Stage: stage, Message: fmt.Sprint(info)}
	t, ok := info.(etf.Tuple)
	if !ok || len(t) != 3 {
		return e
	}
	e.Location = t[0]
	if mod, ok := t[1].(etf.Atom); ok {
		if msg, err := CallWith(ctx, n, nodeName, mod, "format_error", etf.List{t[2]}, o); err == nil {
			if b, ok := chardata(nil, msg, false, 0); ok {
				e.Message = string(b)
			}
		}
	}
	return e
}
