package rpc

import (
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/process"
)

// ServeRex registers the node's rex server, which answers as BEAM's rex does:
//   - {'$gen_call', From, {call, M, F, A, GroupLeader}} (and block_call) with the rpc-ified
//     result: the value, a thrown term as is, {badrpc, {'EXIT', Reason}} for an exit and
//     {badrpc, {'EXIT', {Reason, Stack}}} for an error;
//   - the C-node form {Pid, {call, M, F, A, GroupLeader}} sent to rex, as erl_call uses, with
//     {rex, Result}; GroupLeader send_stdout_to_caller streams {rex_stdout, Bin} to Pid first;
//   - {'$gen_cast', {cast, M, F, A, GroupLeader}}, run without an answer;
//   - {Pid, features_request} with {features_reply, Node, [erpc]} ([] when the connection to
//     Pid's node did not negotiate spawn_request);
//   - {Pid, {sbcast, Name, Msg}} and {Pid, {send, Name, Msg}}.
//
// Anything else is ignored, as rex ignores it. Calls run on goroutines of their own.
func (r *Registry) ServeRex(n *process.Node) (*process.Process, error) {
	p := n.SpawnHandler(func(p *process.Process, m etf.Term) { r.rex(n, p, m) })
	if err := p.Register(atomRex); err != nil {
		p.Exit(atomNormal)
		return nil, err
	}
	return p, nil
}

func (r *Registry) rex(n *process.Node, rex *process.Process, m etf.Term) {
	t, ok := m.(etf.Tuple)
	if !ok {
		return
	}
	switch {
	case len(t) == 3 && t[0] == etf.Atom("$gen_call"):
		from, ok := t[1].(etf.Tuple)
		if !ok || len(from) != 2 {
			return
		}
		pid, ok := from[0].(etf.Pid)
		if !ok {
			return
		}
		req, ok := t[2].(etf.Tuple)
		if !ok || len(req) != 5 || req[0] != atomCall && req[0] != etf.Atom("block_call") {
			return
		}
		go func() {
			v := r.rexRun(n, pid, req)
			_ = rex.Reply(from, v)
		}()
	case len(t) == 2 && t[0] == etf.Atom("$gen_cast"):
		req, ok := t[1].(etf.Tuple)
		if !ok || len(req) != 5 || req[0] != etf.Atom("cast") {
			return
		}
		go r.rexRun(n, rex.Pid(), req)
	case len(t) == 2:
		pid, ok := t[0].(etf.Pid)
		if !ok {
			return
		}
		if t[1] == etf.Atom("features_request") {
			// erpc only where spawn_request was negotiated with the asking node and this node
			// serves spawn requests (Registry.Configure).
			features := etf.List{}
			if c := n.Conn(string(pid.Node)); c != nil && c.Flags()&handshake.FlagSpawn != 0 && n.ServesSpawn() {
				features = etf.List{atomErpc}
			}
			_ = rex.Send(pid, etf.Tuple{etf.Atom("features_reply"), etf.Atom(n.Self()), features})
			return
		}
		req, ok := t[1].(etf.Tuple)
		if !ok {
			return
		}
		switch {
		case len(req) == 5 && req[0] == atomCall:
			if req[4] == atomSendStdout {
				req = etf.Tuple{req[0], req[1], req[2], req[3], etf.Tuple{atomSendStdout, pid}}
			}
			go func() {
				v := r.rexRun(n, pid, req)
				_ = rex.Send(pid, etf.Tuple{atomRex, v})
			}()
		case len(req) == 3 && (req[0] == etf.Atom("sbcast") || req[0] == etf.Atom("send")):
			name, ok := req[1].(etf.Atom)
			if !ok {
				return
			}
			msg := req[2]
			if req[0] == etf.Atom("send") {
				msg = etf.Tuple{pid, req[2]}
			}
			if err := rex.Send(name, msg); err != nil {
				_ = rex.Send(pid, etf.Tuple{atomRex, etf.Atom(n.Self()), etf.Tuple{etf.Atom("nonexisting_name"), name}})
			} else if req[0] == etf.Atom("sbcast") {
				_ = rex.Send(pid, etf.Tuple{atomRex, etf.Atom(n.Self()), etf.Atom(n.Self())})
			}
		}
	}
}

// rexRun runs {call|block_call|cast, M, F, A, GroupLeader} for caller and returns the result
// rpc-ified as rex does.
func (r *Registry) rexRun(n *process.Node, caller etf.Pid, req etf.Tuple) etf.Term {
	m, ok1 := req[1].(etf.Atom)
	f, ok2 := req[2].(etf.Atom)
	args, ok3 := asList(req[3])
	if !ok1 || !ok2 || !ok3 {
		return etf.Tuple{atomBadrpc, etf.Tuple{atomEXIT, etf.Atom("badarg")}}
	}
	q := n.Spawn() // the call's process: receives the group leader's io_reply
	defer q.Exit(atomNormal)
	ci := &CallInfo{Node: n, From: caller, GroupLeader: req[4], Module: m, Function: f, Args: args}
	ci.stdout = &glWriter{p: q, gl: req[4]}
	class, reason, stack := r.run(q, ci)
	switch class {
	case atomReturn, atomThrow:
		return reason
	case atomExit:
		return etf.Tuple{atomBadrpc, etf.Tuple{atomEXIT, reason}}
	}
	return etf.Tuple{atomBadrpc, etf.Tuple{atomEXIT, etf.Tuple{reason, stack}}}
}
