package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/rpc"
)

const callUsage = `
Usage: distribute call [flags] NODE MODULE FUNCTION [ARG...]

Calls MODULE:FUNCTION(ARG...) on NODE from a short-lived hidden node, like
erl_call -a 'MODULE FUNCTION [ARGS]', and prints the value on stdout on one
line as io:format("~0tp~n", [Value]) prints it (--json: as JSON, where the
value has a JSON form). Each ARG is one Erlang term in Erlang syntax:
  distribute call app@host erlang node
  distribute call app@host lists seq 1 5
  distribute call app@host erlang element 2 '{a, b, c}'
The call goes the erpc way (spawn_request of erpc:execute_call/4) when NODE
supports it, through NODE's rex server otherwise (--method chooses).

An exception in the called function is printed on stderr with its class and
reason (and the stacktrace of an error):
  error: badarith
and a call that produced no value with its badrpc reason (nodedown, timeout,
notsup, ...); both exit 1.

With --fetch-stdout, what the called function writes to its group leader
(io:format and friends) is printed on stdout before the value, as erl_call
-fetch_stdout does. With --address HOST:PORT (or :PORT for NODE's host), NODE
is dialled at its distribution port directly, without asking an EPMD, like
erl_call -address. The node only dials out (no EPMD registration; see
distribute ping --help for how it is named). --timeout bounds each step
(EPMD check, connect, the call).

Exit status: 0 with a value, 1 for an exception, a badrpc or a failure to
connect, 2 for a usage error (an ARG that does not parse is one).
`

const evalUsage = `
Usage: distribute eval [flags] NODE 'EXPRS.'

Evaluates Erlang expressions on NODE, like erl_call -e: EXPRS is scanned,
parsed and evaluated on NODE (erl_scan:string, erl_parse:parse_exprs,
erl_eval:exprs) and the value of the last expression is printed on stdout as
io:format("~0tp~n", [Value]) prints it (--json: as JSON where it has a JSON
form). The final "." may be left out.
  distribute eval app@host 'X = 6, X * 7.'
Source that does not scan or parse is reported on stderr with NODE's own
message and location, an exception with its class and reason; both exit 1.
--fetch-stdout, --address, --method and --timeout are as for call.
`

// rpcFlags are the flags call and eval add to the client flags.
type rpcFlags struct {
	asJSON      bool
	fetchStdout bool
	address     string
	method      string
}

func (f *rpcFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.asJSON, "json", false, "print the value as JSON (a value with no JSON form is an error)")
	fs.BoolVar(&f.fetchStdout, "fetch-stdout", false, "print what the call writes to its group leader before the value (erl_call -fetch_stdout)")
	fs.StringVar(&f.address, "address", "", "dial NODE at `HOST:PORT` (or :PORT) without asking an EPMD (erl_call -address)")
	fs.StringVar(&f.method, "method", "auto", "`HOW` to call: auto (erpc when NODE supports it, else rex), erpc or rex")
}

func (f *rpcFlags) options(stdout io.Writer) (*rpc.CallOptions, error) {
	o := &rpc.CallOptions{}
	switch f.method {
	case "auto":
		o.Method = rpc.Auto
	case "erpc":
		o.Method = rpc.ERPC
	case "rex":
		o.Method = rpc.Rex
	default:
		return nil, usagef("--method must be auto, erpc or rex, not %q", f.method)
	}
	if f.fetchStdout {
		o.Stdout = stdout
	}
	return o, nil
}

func cmdCall(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return rpcCommand(ctx, "call", callUsage, args, stdout, stderr)
}

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return rpcCommand(ctx, "eval", evalUsage, args, stdout, stderr)
}

// rpcCommand runs call or eval.
func rpcCommand(ctx context.Context, name, usage string, args []string, stdout, stderr io.Writer) int {
	c := newCommand(name, usage, stdout, stderr)
	var cf clientFlags
	cf.register(c.fs, "distribute-<random hex>")
	var rf rpcFlags
	rf.register(c.fs)
	pos, code, done := c.parse(args)
	if done {
		return code
	}
	var target string
	var module, function etf.Atom
	var callArgs etf.List
	var src string
	switch name {
	case "call":
		if len(pos) < 3 {
			return c.usageFail(fmt.Errorf("want NODE MODULE FUNCTION [ARG...], got %d arguments", len(pos)))
		}
		target, module, function = pos[0], etf.Atom(pos[1]), etf.Atom(pos[2])
		for _, a := range []string{pos[1], pos[2]} {
			if err := validAtom(a); err != nil {
				return c.usageFail(fmt.Errorf("%q: %v", a, err))
			}
		}
		callArgs = etf.List{}
		for i, a := range pos[3:] {
			t, err := etf.Parse(a)
			if err != nil {
				return c.usageFail(termError("ARG "+strconv.Itoa(i+1), a, err))
			}
			callArgs = append(callArgs, t)
		}
	default:
		if len(pos) != 2 {
			return c.usageFail(fmt.Errorf("want NODE 'EXPRS.', got %d arguments", len(pos)))
		}
		target, src = pos[0], pos[1]
	}
	opts, err := rf.options(stdout)
	if err != nil {
		return c.usageFail(err)
	}
	if rf.address != "" {
		addr, err := peerAddress(rf.address, target)
		if err != nil {
			return c.usageFail(err)
		}
		cf.hooks = append(cf.hooks, func(o *node.Options) error {
			o.PeerAddrs = map[string]string{target: addr}
			return nil
		})
	}
	n, log, code, done := c.startClientFor(ctx, &cf, []string{target})
	if done {
		return code
	}
	defer func() { _ = n.Stop() }()
	timeout := time.Duration(cf.timeout)
	if rf.address == "" {
		err = connectOne(ctx, n, target, timeout)
	} else {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err = n.Connect(cctx, target)
		cancel()
	}
	if err != nil {
		return c.fail(fmt.Errorf("%s %s: %s", name, target, reason(err)))
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var v etf.Term
	if name == "call" {
		v, err = rpc.CallWith(cctx, n, target, module, function, callArgs, opts)
	} else {
		v, err = rpc.Eval(cctx, n, target, src, opts)
	}
	log.Debug(name, "node", target, "err", err)
	if err != nil {
		fmt.Fprintln(stderr, rpcFailure(err))
		return exitFail
	}
	return printValue(c, v, rf.asJSON)
}

// peerAddress turns --address into host:port; ":PORT" takes NODE's host.
func peerAddress(v, target string) (string, error) {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", usagef("--address %q: want HOST:PORT or :PORT", v)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return "", usagef("--address %q: %q is not a port number 1..65535", v, port)
	}
	if host == "" {
		if err := node.ValidateName(target); err != nil {
			return "", usagef("bad node name: %v (want alive@host)", err)
		}
		_, host, _ = strings.Cut(target, "@")
	}
	return net.JoinHostPort(host, port), nil
}

// rpcFailure is the stderr line of a failed call: the exception class and reason (and the
// stacktrace of an error), badrpc and its reason, or the eval error.
func rpcFailure(err error) string {
	var ex *rpc.Exception
	var br *rpc.BadRPC
	var ee *rpc.EvalError
	switch {
	case errors.As(err, &ex):
		s := fmt.Sprintf("%s: %s", ex.Class, etf.Format(ex.Reason))
		if ex.Stack != nil {
			s += "\nstacktrace: " + etf.Format(ex.Stack)
		}
		return s
	case errors.As(err, &br):
		s := "badrpc: " + etf.Format(br.Reason)
		if br.Err != nil {
			s += " (" + br.Err.Error() + ")"
		}
		return s
	case errors.As(err, &ee):
		return fmt.Sprintf("%s error at %s: %s", ee.Stage, etf.Format(ee.Location), ee.Message)
	}
	return "error: " + reason(err)
}

// printValue prints the call's value as ~0tp does, or as JSON.
func printValue(c *command, v etf.Term, asJSON bool) int {
	if !asJSON {
		fmt.Fprintln(c.stdout, etf.Format(v))
		return exitOK
	}
	j, err := jsonValue(v)
	if err != nil {
		fmt.Fprintf(c.stderr, "distribute %s: the value %s has no JSON form: %v\n", c.name, etf.Format(v), err)
		return exitFail
	}
	b, err := json.Marshal(j)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintln(c.stdout, string(b))
	return exitOK
}

// jsonValue maps a term to JSON: true/false, numbers, binaries (UTF-8) as strings, other
// atoms as strings, lists and tuples as arrays, maps with atom, binary or string keys as
// objects. Pids, references, ports, funs, bitstrings, improper lists and non-UTF-8 binaries
// have no JSON form.
func jsonValue(t etf.Term) (any, error) {
	switch v := t.(type) {
	case etf.Atom:
		switch v {
		case "true":
			return true, nil
		case "false":
			return false, nil
		case "null", "nil":
			return nil, nil
		}
		return string(v), nil
	case int64:
		return v, nil
	case *big.Int:
		return json.Number(v.String()), nil
	case float64:
		return v, nil
	case []byte:
		if !utf8.Valid(v) {
			return nil, errors.New("a binary that is not UTF-8")
		}
		return string(v), nil
	case etf.String:
		out := make([]any, len(v))
		for i := range len(v) {
			out[i] = int64(v[i])
		}
		return out, nil
	case etf.List:
		return jsonArray(v)
	case etf.Tuple:
		return jsonArray(v)
	case etf.Map:
		out := make(map[string]any, len(v))
		for _, e := range v {
			var k string
			switch kk := e.Key.(type) {
			case etf.Atom:
				k = string(kk)
			case []byte:
				k = string(kk)
			case etf.String:
				k = string(kk)
			default:
				return nil, fmt.Errorf("a map key %s", etf.Format(e.Key))
			}
			val, err := jsonValue(e.Value)
			if err != nil {
				return nil, err
			}
			out[k] = val
		}
		return out, nil
	}
	return nil, fmt.Errorf("a %T", t)
}

func jsonArray(ts []etf.Term) (any, error) {
	out := make([]any, len(ts))
	for i, e := range ts {
		v, err := jsonValue(e)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}
