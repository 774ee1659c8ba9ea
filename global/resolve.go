package global

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/process"
	"github.com/distribute-go/distribute/rpc"
)

// resolver is global.erl's resolver process of one session: it gets the other side's names and
// works out the operations (name clashes resolved) without holding up the server.
type resolver struct {
	tag    etf.Term
	ch     chan etf.List
	cancel context.CancelFunc
}

func (g *Global) startResolver(node string, tag etf.Term) *resolver {
	ctx, cancel := context.WithCancel(g.ctx)
	r := &resolver{tag: tag, ch: make(chan etf.List, 1), cancel: cancel}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		select {
		case names := <-r.ch:
			ops, res := g.exchangeNames(ctx, names, node)
			if ctx.Err() == nil {
				g.toServer(exchangeOpsMsg{node: node, myTag: tag, ops: ops, resolved: res})
			}
		case <-ctx.Done():
		}
	}()
	return r
}

func (r *resolver) resolve(names etf.List) {
	select {
	case r.ch <- names:
	default:
	}
}

func (r *resolver) stop() { r.cancel() }

// exchangeNames is global.erl's exchange_names: Ops are what this node applies, Res what the
// other node applies. On a clash the node whose name sorts lower resolves it, on the node of the
// pid registered here.
func (g *Global) exchangeNames(ctx context.Context, names etf.List, node string) (ops, res etf.List) {
	ops, res = etf.List{}, etf.List{}
	for _, e := range names {
		t, ok := e.(etf.Tuple)
		if !ok || len(t) != 3 {
			continue
		}
		name, method := t[0], t[2]
		pid, ok := t[1].(etf.Pid)
		if !ok {
			continue
		}
		g.mu.RLock()
		cur := g.tables.names[termKey(name)]
		var pid2 etf.Pid
		var method2 etf.Term
		if cur != nil {
			pid2, method2 = cur.pid, cur.method
		}
		g.mu.RUnlock()
		insert := etf.Tuple{atomInsert, etf.Tuple{name, pid, method}}
		switch {
		case cur == nil:
			ops = append(ops, insert)
		case pid2 == pid:
		case g.self < node:
			var result etf.Term
			var err error
			if string(pid2.Node) == g.self {
				result = g.resolveIt(ctx, method2, name, pid, pid2, "")
			} else {
				result, err = rpc.Call(ctx, g.n, string(pid2.Node), "global", "resolve_it", etf.List{method2, name, pid, pid2})
			}
			del := etf.Tuple{atomDelete, name}
			switch {
			case err != nil:
				g.log.Info("global: badrpc when a conflicting name was found", "name", etf.Format(name), "err", err)
				ops = append(ops, insert)
			case result == etf.Term(pid):
				ops = append(ops, insert)
			case result == etf.Term(pid2):
				res = append(res, etf.Tuple{atomInsert, etf.Tuple{name, pid2, method2}})
			case result == etf.Atom("none"):
				ops = append(ops, del)
				res = append(res, del)
			default:
				g.log.Info("global: resolve method returned something else", "name", etf.Format(name), "result", etf.Format(result))
				ops = append(ops, del)
				res = append(res, del)
			}
		}
	}
	return ops, res
}

// methodName recognises global's own resolve functions: fun global:F/3 (an external fun) and
// the local fun `fun random_exit_name/3` that global:register_name/2 uses (a fun of module
// global of arity 3 without free variables; global has no other).
func methodName(m etf.Term) etf.Atom {
	switch f := m.(type) {
	case etf.Export:
		if f.Module == "global" && f.Arity == 3 {
			return f.Function
		}
	case etf.Fun:
		// NEW_FUN_EXT: 112, Size:32, Arity:8, Uniq:16 bytes, Index:32, NumFree:32, Module, ...
		r := f.Raw
		if len(r) > 30 && r[0] == 112 && r[5] == 3 && r[26] == 0 && r[27] == 0 && r[28] == 0 && r[29] == 0 {
			if mod, _, err := etf.DecodeTerm(r[30:]); err == nil && mod == etf.Atom("global") {
				return "random_exit_name"
			}
		}
	}
	return ""
}

// resolveIt is global:resolve_it/4 on this node: catch Method(Name, Pid1, Pid2). global's own
// methods run here; any other fun runs on the BEAM node of the other pid, untouched.
//
// via is the node that asked (by rpc), or "": a signal to a pid of a node we are not connected
// to goes through via, which is, so that resolving does not set up a connection in the middle of
// the other nodes' exchange (a nodeup there restarts their connect, and OTP 27+ then drops the
// names of our pids it just inserted).
func (g *Global) resolveIt(ctx context.Context, method, name etf.Term, p1, p2 etf.Pid, via string) etf.Term {
	lo, hi := p1, p2
	if !(p1.Node < p2.Node) {
		lo, hi = p2, p1
	}
	switch methodName(method) {
	case "random_exit_name":
		g.log.Info("global: name conflict, terminating", "name", etf.Format(name), "pid", hi)
		g.signal(ctx, via, hi, nil)
		return lo
	case "random_notify_name":
		g.signal(ctx, via, hi, etf.Tuple{etf.Atom("global_name_conflict"), name})
		return lo
	case "notify_all_name":
		g.signal(ctx, via, p1, etf.Tuple{etf.Atom("global_name_conflict"), name, p2})
		g.signal(ctx, via, p2, etf.Tuple{etf.Atom("global_name_conflict"), name, p1})
		return etf.Atom("none")
	}
	other := string(p1.Node)
	if other == g.self {
		other = string(p2.Node)
	}
	if other == g.self {
		return etf.Tuple{etf.Atom("EXIT"), etf.Tuple{etf.Atom("badfun"), method}}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	v, err := rpc.Call(ctx, g.n, other, "global", "resolve_it", etf.List{method, name, p1, p2})
	if err != nil {
		return etf.Tuple{etf.Atom("EXIT"), etf.Tuple{etf.Atom("badrpc"), []byte(err.Error())}}
	}
	return v
}

// signal sends msg to pid, or the exit signal kill when msg is nil; see resolveIt for via.
func (g *Global) signal(ctx context.Context, via string, pid etf.Pid, msg etf.Term) {
	if node := string(pid.Node); node != g.self && via != "" && via != node && g.n.Conn(node) == nil {
		ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if msg == nil {
			_, _ = rpc.Call(ctx, g.n, via, "erlang", "exit", etf.List{pid, etf.Atom("kill")})
		} else {
			_, _ = rpc.Call(ctx, g.n, via, "erlang", "send", etf.List{pid, msg})
		}
		return
	}
	if msg == nil {
		p := g.n.Spawn()
		_ = p.SendExit(pid, etf.Atom("kill"))
		p.Exit(etf.Atom("normal"))
		return
	}
	_ = g.n.Send(pid, msg)
}

// serveResolveIt serves global:resolve_it/4 to BEAM nodes (registered in Options.RPC).
func (g *Global) serveResolveIt(ctx context.Context, args etf.List) (etf.Term, error) {
	if len(args) != 4 {
		return nil, fmt.Errorf("global:resolve_it/4: %d arguments", len(args))
	}
	p1, ok1 := args[2].(etf.Pid)
	p2, ok2 := args[3].(etf.Pid)
	if !ok1 || !ok2 {
		return etf.Tuple{etf.Atom("EXIT"), etf.Atom("badarg")}, nil
	}
	via := ""
	if info := rpc.Info(ctx); info != nil {
		via = string(info.From.Node)
	}
	return g.resolveIt(ctx, args[0], args[1], p1, p2, via), nil
}

// ---- the registrar: global's own lock on all known nodes ----

// transAllKnown is global.erl's trans_all_known: fn runs holding {global, Registrar} on this
// node and every known node, and no node became known meanwhile.
func (g *Global) transAllKnown(ctx context.Context, fn func(r *process.Process, nodes []string) error) error {
	r := g.n.Spawn()
	defer r.Exit(etf.Atom("normal"))
	id := etf.Tuple{atomGlobal, r.Pid()}
	var nodes []string
	for times := 0; ; times++ {
		known, err := g.getKnown(ctx)
		if err != nil {
			return err
		}
		all := append([]string{g.self}, known...)
		boss := slices.Max(all)
		if g.setLockOnNodes(r, id, []string{boss}) {
			if g.setLockOnNodes(r, id, all) {
				now, err := g.getKnown(ctx)
				if err != nil {
					g.deleteGlobalLock(r, id, all)
					return err
				}
				if len(minus(now, known)) == 0 {
					nodes = all
					break
				}
			}
			g.delLock(r, id, []string{boss})
		}
		t := time.NewTimer(randomSleep(times))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-g.ctx.Done():
			t.Stop()
			return ErrStopped
		}
	}
	defer g.deleteGlobalLock(r, id, nodes)
	return fn(r, nodes)
}

func (g *Global) getKnown(ctx context.Context) ([]string, error) {
	ch := make(chan []string, 1)
	if err := g.n.Send(g.proc(), getKnownMsg{reply: ch}); err != nil {
		return nil, ErrStopped
	}
	select {
	case k := <-ch:
		return k, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-g.srv.Done():
		return nil, ErrStopped
	}
}

// ---- sync ----

type syncer struct {
	want map[string]bool
	done chan struct{}
}

func (s *syncer) synced(node string) bool {
	delete(s.want, node)
	return s.check()
}

func (s *syncer) nodedown(node string) bool { return s.synced(node) }

func (s *syncer) check() bool {
	if len(s.want) == 0 {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
		return true
	}
	return false
}

func (g *Global) startSync(s *syncer) {
	for n := range g.st.connID {
		if !slices.Contains(g.st.synced, n) {
			s.want[n] = true
		}
	}
	if !s.check() {
		g.st.syncers[s] = struct{}{}
	}
}

// Sync waits until global on this node is in sync with every visible node connected now (their
// names exchanged), like global:sync/0.
func (g *Global) Sync(ctx context.Context) error {
	s := &syncer{want: map[string]bool{}, done: make(chan struct{})}
	if err := g.n.Send(g.proc(), syncMsg{s: s}); err != nil {
		return ErrStopped
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-g.srv.Done():
		return ErrStopped
	}
}

func contextDone() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx, cancel
}
