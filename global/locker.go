package global

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/gen"
	"github.com/distribute-go/distribute/process"
)

// The locker is global.erl's permanent locker process: when a node connects, the lockers of both
// sides take a common lock on their partitions ({global, [LockerA, LockerB]} on every known
// node), and keep it while the servers exchange names. The lockers talk through their servers
// (lock_set casts); BEAM nodes call our server's set_lock and del_lock and monitor our locker.

// Messages the locker gets from the server (Go values, delivered locally).
type (
	hisTheLockerMsg struct {
		locker        etf.Pid
		vsn           int
		hisTag, myTag etf.Term
	}
	cancelMsg struct {
		node string
		tag  etf.Term
		fn   func(*process.Process) // run before the lock is released; nil: no_fun
	}
	knownAddMsg    struct{ nodes []string }
	knownRemoveMsg struct{ node string }
)

type him struct {
	node          string
	locker        etf.Pid
	vsn           int
	myTag, hisTag etf.Term
}

type lockSet struct {
	pid    etf.Pid
	set    bool
	hasTag bool
	tag    etf.Term
}

func parseLockSet(m etf.Term) (lockSet, bool) {
	t, ok := m.(etf.Tuple)
	if !ok || (len(t) != 4 && len(t) != 5) || t[0] != atomLockSet {
		return lockSet{}, false
	}
	pid, ok := t[1].(etf.Pid)
	if !ok {
		return lockSet{}, false
	}
	ls := lockSet{pid: pid, set: t[2] == atomTrue}
	if len(t) == 5 {
		ls.hasTag, ls.tag = true, t[4]
	}
	return ls, true
}

type locker struct {
	g             *Global
	p             *process.Process
	self          string
	host          string
	local, remote []*him
	known         []string
	boss          string
	justSynced    bool
}

func newLocker(g *Global) *locker {
	l := &locker{g: g, p: g.n.Spawn(), self: g.self, boss: g.self}
	if h, err := os.Hostname(); err == nil {
		l.host, _, _ = strings.Cut(h, ".")
	}
	return l
}

func isLockerMsg(m etf.Term) bool {
	switch m.(type) {
	case hisTheLockerMsg, cancelMsg, knownAddMsg, knownRemoveMsg:
		return true
	}
	_, ok := parseLockSet(m)
	return ok
}

var errQuit = errors.New("locker stopped")

// recv takes the oldest message match accepts, waiting up to d (d < 0: without limit).
// It returns nil, nil when d passed, errQuit when the locker must end.
func (l *locker) recv(d time.Duration, match func(etf.Term) bool) (etf.Term, error) {
	ctx, cancel := l.g.ctx, context.CancelFunc(func() {})
	if d >= 0 {
		ctx, cancel = context.WithTimeout(l.g.ctx, d)
	}
	defer cancel()
	m, err := l.p.ReceiveMatch(ctx, match)
	if err == nil {
		return m, nil
	}
	if l.g.ctx.Err() != nil || l.p.Reason() != nil {
		return nil, errQuit
	}
	return nil, nil
}

func (l *locker) run() {
	defer l.p.Exit(etf.Atom("normal"))
	for {
		m, err := l.recv(0, isLockerMsg)
		if err != nil {
			return
		}
		if m == nil {
			d := time.Duration(-1)
			switch {
			case len(l.local) == 0 && len(l.remote) == 0:
			case l.justSynced:
				d = 0
			case len(l.known) == 0:
				d = 200 * time.Millisecond
			default:
				d = time.Duration(min(1000+100*len(l.known), 3000)) * time.Millisecond
			}
			l.justSynced = false
			if m, err = l.recv(d, isLockerMsg); err != nil {
				return
			}
			if m == nil {
				if !l.g.isGlobalLockSet() {
					l.selectNode()
				}
				continue
			}
		}
		l.handle(m)
	}
}

func (l *locker) handle(m etf.Term) {
	switch x := m.(type) {
	case hisTheLockerMsg:
		l.addNode(&him{node: string(x.locker.Node), locker: x.locker, vsn: x.vsn, myTag: x.myTag, hisTag: x.hisTag})
		return
	case cancelMsg:
		if x.fn != nil || x.tag == nil {
			// global.erl's locker takes a cancel with a fun only while it holds the lock, and
			// ignores one with the tag undefined (it may be an old nodedown's).
			return
		}
		l.removeNode(x.node, x.tag)
		return
	case knownAddMsg, knownRemoveMsg:
		l.updateKnown(m)
		return
	}
	ls, ok := parseLockSet(m)
	if !ok || !ls.set {
		return // a spurious lock_set false
	}
	node := string(ls.pid.Node)
	h := l.findNode(node)
	if h == nil || (ls.hasTag && !tagEq(h.myTag, ls.tag)) {
		l.sendLockSet(false, ls.pid, 5, int64(0))
		return
	}
	// The other side has locked its partition and ours partly: lock the rest of ours.
	myTag := h.myTag
	lid := lockID(l.p.Pid(), ls.pid)
	set := l.lockNodesSafely(lid, nil)
	l.sendLockSet(set, ls.pid, h.vsn, h.hisTag)
	known2 := append([]string{l.self}, l.known...)
	if !set {
		l.justSynced = false
		return
	}
	l.g.toServer(lockIsSetMsg{node: node, myTag: myTag, lockID: lid})
	if !l.waitCancelLock(node, lid, myTag, known2) {
		return
	}
	l.justSynced = true
	l.removeNode(node, myTag)
}

func (l *locker) selectNode() {
	useRemote := len(l.local) == 0
	others := l.local
	if useRemote {
		others = l.remote
	}
	others = slices.DeleteFunc(others, func(h *him) bool { return slices.Contains(l.known, h.node) })
	if useRemote {
		l.remote = others
	} else {
		l.local = others
	}
	if len(others) == 0 {
		return
	}
	h := others[rand.IntN(len(others))]
	lid := lockID(l.p.Pid(), h.locker)
	if !l.lockNodesSafely(lid, []string{h.node}) {
		return
	}
	known1 := append([]string{l.self, h.node}, l.known...)
	l.sendLockSet(true, h.locker, h.vsn, h.hisTag)
	l.lockIsSet(h, known1, lid)
}

// lockIsSet waits for the other locker's answer once we have locked both partitions' part.
func (l *locker) lockIsSet(h *him, known1 []string, lid etf.Term) {
	match := func(m etf.Term) bool {
		if c, ok := m.(cancelMsg); ok {
			return c.node == h.node && c.tag != nil && tagEq(c.tag, h.myTag)
		}
		ls, ok := parseLockSet(m)
		return ok && string(ls.pid.Node) == h.node
	}
	for {
		m, err := l.recv(-1, match)
		if err != nil {
			return
		}
		if c, ok := m.(cancelMsg); ok {
			if c.fn != nil {
				c.fn(l.p)
			}
			l.deleteGlobalLock(lid, known1)
			l.removeNode(h.node, h.myTag)
			return
		}
		ls, _ := parseLockSet(m)
		if ls.hasTag && !tagEq(ls.tag, h.myTag) {
			continue // an old session's
		}
		if !ls.set {
			l.deleteGlobalLock(lid, known1)
			return
		}
		l.g.toServer(lockIsSetMsg{node: h.node, myTag: h.myTag, lockID: lid})
		if !l.waitCancelLock(h.node, lid, h.myTag, known1) {
			return
		}
		l.justSynced = true
		l.local = slices.DeleteFunc(l.local, func(x *him) bool { return x == h })
		l.remote = slices.DeleteFunc(l.remote, func(x *him) bool { return x == h })
		return
	}
}

// waitCancelLock holds the lock until the server says the exchange with node is over.
func (l *locker) waitCancelLock(node string, lid etf.Term, myTag etf.Term, known []string) bool {
	m, err := l.recv(-1, func(m etf.Term) bool {
		c, ok := m.(cancelMsg)
		return ok && c.node == node && c.tag != nil && tagEq(c.tag, myTag)
	})
	if err != nil {
		return false
	}
	if c := m.(cancelMsg); c.fn != nil {
		c.fn(l.p)
	}
	l.deleteGlobalLock(lid, known)
	return true
}

func (l *locker) sendLockSet(set bool, to etf.Pid, vsn int, hisTag etf.Term) {
	msg := etf.Tuple{atomLockSet, l.p.Pid(), boolAtom(set), atomList(l.known)}
	if vsn >= verifyConnectVsn {
		msg = append(msg, orUndefined(hisTag))
	}
	if vsn < 6 {
		_ = l.p.Send(to, msg)
		return
	}
	_ = gen.CastFrom(l.p, process.Name{Name: ServerName, Node: string(to.Node)}, msg)
}

// lockNodesSafely is global.erl's lock_nodes_safely: the boss first, then this node and extra,
// then the rest of the known nodes.
func (l *locker) lockNodesSafely(lid etf.Term, extra []string) bool {
	first := []string{l.boss}
	if l.boss != l.self && !l.g.canSetLockLocal(lid) {
		return false
	}
	if !l.g.setLockOnNodes(l.p, lid, first) {
		return false
	}
	l.drainKnown()
	second := minus(append([]string{l.self}, extra...), first)
	if !l.g.setLockOnNodes(l.p, lid, second) {
		l.g.delLock(l.p, lid, first)
		return false
	}
	if !l.g.setLockOnNodes(l.p, lid, minus(l.known, first)) {
		l.g.delLock(l.p, lid, append(slices.Clone(first), second...))
		return false
	}
	return true
}

// deleteGlobalLock releases lid on nodes, the boss last.
func (l *locker) deleteGlobalLock(lid etf.Term, nodes []string) {
	l.g.deleteGlobalLock(l.p, lid, nodes)
}

func (l *locker) drainKnown() {
	for {
		m, err := l.recv(0, func(m etf.Term) bool {
			switch m.(type) {
			case knownAddMsg, knownRemoveMsg:
				return true
			}
			return false
		})
		if err != nil || m == nil {
			return
		}
		l.updateKnown(m)
	}
}

func (l *locker) updateKnown(m etf.Term) {
	switch x := m.(type) {
	case knownAddMsg:
		l.known = append(slices.Clone(x.nodes), l.known...)
	case knownRemoveMsg:
		if i := slices.Index(l.known, x.node); i >= 0 {
			l.known = slices.Delete(l.known, i, i+1)
		}
	}
	l.boss = slices.Max(append([]string{l.self}, l.known...))
}

func (l *locker) addNode(h *him) {
	_, host, _ := strings.Cut(h.node, "@")
	if host == l.host {
		l.local = append([]*him{h}, l.local...)
	} else {
		l.remote = append([]*him{h}, l.remote...)
	}
}

func (l *locker) findNode(node string) *him {
	for _, h := range l.local {
		if h.node == node {
			return h
		}
	}
	for _, h := range l.remote {
		if h.node == node {
			return h
		}
	}
	return nil
}

func (l *locker) removeNode(node string, tag etf.Term) {
	rm := func(list []*him) []*him {
		for i, h := range list {
			if h.node == node && tagEq(h.myTag, tag) {
				return slices.Delete(slices.Clone(list), i, i+1)
			}
		}
		return list
	}
	l.local, l.remote = rm(l.local), rm(l.remote)
}

func minus(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// ---- locking on nodes (shared by the locker and the registrar) ----

func (g *Global) toServer(m etf.Term) { _ = g.n.Send(g.proc(), m) }

// canSetLockLocal is can_set_lock on this node's table.
func (g *Global) canSetLockLocal(id etf.Term) bool {
	t, ok := id.(etf.Tuple)
	if !ok || len(t) != 2 {
		return false
	}
	g.mu.RLock()
	defer g.mu.RUnlock()
	_, can := g.tables.canSetLock(t[0], t[1])
	return can
}

type reply struct {
	node  string
	reply etf.Term
}

// multiCall is gen_server:multi_call(Nodes, global_name_server, Req) made from p: the replies
// of the nodes that answered, in the order of nodes; a node that is down or has no server is
// left out.
func (g *Global) multiCall(p *process.Process, nodes []string, req etf.Term) []reply {
	out := make([]etf.Term, len(nodes))
	done := make(chan struct{}, len(nodes))
	for i, node := range nodes {
		go func() {
			defer func() { done <- struct{}{} }()
			r, err := gen.CallFrom(g.ctx, p, process.Name{Name: ServerName, Node: node}, req)
			if err == nil {
				out[i] = r
			}
		}()
	}
	for range nodes {
		<-done
	}
	var rs []reply
	for i, r := range out {
		if r != nil {
			rs = append(rs, reply{nodes[i], r})
		}
	}
	return rs
}

// setLockOnNodes is global.erl's set_lock_on_nodes: one attempt; a partial success is undone.
func (g *Global) setLockOnNodes(p *process.Process, id etf.Term, nodes []string) bool {
	if len(nodes) == 0 {
		return true
	}
	if len(nodes) > 1 && slices.Contains(nodes, g.self) && !g.canSetLockLocal(id) {
		return false
	}
	rs := g.multiCall(p, nodes, etf.Tuple{etf.Atom("set_lock"), id})
	for _, r := range rs {
		if r.reply == atomTrue {
			continue
		}
		if len(rs) == 1 {
			return false
		}
		var trueNodes []string
		for _, r2 := range rs {
			if r2.reply == atomTrue {
				trueNodes = append(trueNodes, r2.node)
			}
		}
		g.delLock(p, id, trueNodes)
		return false
	}
	return true
}

func (g *Global) delLock(p *process.Process, id etf.Term, nodes []string) {
	if len(nodes) > 0 {
		g.multiCall(p, nodes, etf.Tuple{etf.Atom("del_lock"), id})
	}
}

func (g *Global) deleteGlobalLock(p *process.Process, id etf.Term, nodes []string) {
	if len(nodes) == 0 {
		return
	}
	boss := slices.Max(nodes)
	g.delLock(p, id, minus(nodes, []string{boss}))
	g.delLock(p, id, []string{boss})
}
