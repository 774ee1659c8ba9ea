package pg

import (
	"context"
	"slices"

	"github.com/distribute-go/distribute/etf"
)

// loop serves the scope process's mailbox, one message at a time (as pg's gen_server does),
// until the process exits.
func (s *Scope) loop() {
	defer close(s.done)
	for {
		m, err := s.proc.Receive(context.Background())
		if err != nil {
			s.mu.Lock()
			s.stopped = true
			s.mu.Unlock()
			return
		}
		s.handle(m)
	}
}

// handle dispatches one message. Anything that is not pg's protocol is ignored (pg.erl
// crashes on it; one bad peer message must not cost the scope).
func (s *Scope) handle(m etf.Term) {
	t, _ := m.(etf.Tuple)
	if len(t) == 0 {
		s.ignored(m)
		return
	}
	switch {
	case len(t) == 2 && t[0] == atomGenCast:
		c, _ := t[1].(etf.Tuple)
		switch {
		case len(c) == 3 && c[0] == atomSync:
			peer, ok1 := c[1].(etf.Pid)
			groups, ok2 := syncGroups(c[2])
			if ok1 && ok2 {
				s.sync(peer, groups)
				return
			}
		case len(c) == 4 && c[0] == atomLocalDat: // OTP 29's form, {local_data, Peer, Version, #{Group => Pids}}
			peer, ok1 := c[1].(etf.Pid)
			groups, ok2 := mapGroups(c[3])
			if ok1 && ok2 {
				s.sync(peer, groups)
				return
			}
		}
	case (len(t) == 2 || len(t) == 3) && t[0] == atomDiscover: // OTP 27+ adds a version
		if peer, ok := t[1].(etf.Pid); ok {
			s.discovered(peer)
			return
		}
	case len(t) == 4 && t[0] == atomJoin:
		peer, ok1 := t[1].(etf.Pid)
		pids, ok2 := pidsOf(t[3])
		if ok1 && ok2 {
			s.join(peer, t[2], pids)
			return
		}
	case len(t) == 4 && t[0] == atomLeave:
		peer, ok1 := t[1].(etf.Pid)
		pids, ok2 := pidsOf(t[2])
		groups, ok3 := t[3].(etf.List)
		if ok1 && ok2 && ok3 {
			s.leave(peer, pids, groups)
			return
		}
	case len(t) == 3 && t[0] == atomUpdate: // OTP 29's form, {update, Peer, [{Group, Add, Remove}]}
		peer, ok1 := t[1].(etf.Pid)
		ups, ok2 := updates(t[2])
		if ok1 && ok2 {
			s.update(peer, ups)
			return
		}
	case len(t) == 5 && t[0] == atomDown && t[2] == atomProcess:
		ref, ok1 := t[1].(etf.Ref)
		pid, ok2 := t[3].(etf.Pid)
		if ok1 && ok2 {
			s.down(ref, pid)
			return
		}
	case len(t) == 2 && t[0] == atomNodeup:
		if node, ok := t[1].(etf.Atom); ok {
			s.mu.Lock()
			s.discoverLocked(string(node))
			s.mu.Unlock()
			return
		}
	case len(t) == 2 && t[0] == atomNodedown:
		return // the monitors of the peers' scope processes say what went
	}
	s.ignored(m)
}

func (s *Scope) ignored(m etf.Term) {
	s.log.Debug("pg: message ignored", "message", etf.Format(m))
}

// discovered answers {discover, Peer}: our local members to Peer, and a discover of our own
// when Peer is new, as pg.erl does.
func (s *Scope) discovered(peer etf.Pid) {
	if string(peer.Node) == s.n.Self() {
		return
	}
	s.mu.RLock()
	_, known := s.peers[peer]
	s.mu.RUnlock()
	var ref etf.Ref
	if !known {
		// Only this goroutine adds peers, so the peer is still unknown once the monitor (which
		// may send, so it runs without the lock) is set.
		var ok bool
		if ref, ok = s.monitorPeer(peer); !ok {
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sendSyncLocked(peer)
	if !known {
		s.peers[peer] = &remote{ref: ref, groups: map[string][]etf.Pid{}}
		s.sendPidLocked(peer, etf.Tuple{atomDiscover, s.proc.Pid()})
	}
}

// monitorPeer monitors a peer's scope process, if its node is connected (noconnect: a scope
// never connects by itself).
func (s *Scope) monitorPeer(peer etf.Pid) (etf.Ref, bool) {
	if s.n.Conn(string(peer.Node)) == nil {
		return etf.Ref{}, false
	}
	ref, err := s.proc.Monitor(peer)
	return ref, err == nil
}

// sendSyncLocked casts our local members to peer: {'$gen_cast', {sync, Self, [{Group, Pids}]}}.
func (s *Scope) sendSyncLocked(peer etf.Pid) {
	s.sendPidLocked(peer, etf.Tuple{atomGenCast, etf.Tuple{atomSync, s.proc.Pid(), s.localGroupsLocked()}})
}

// groupPids is one group of a sync: the group and its pids on the sender's node.
type groupPids struct {
	group etf.Term
	pids  []etf.Pid
}

// sync takes a peer's full list of members, in place of what it said before. A peer that was
// unknown is monitored and gets our own sync first, so that every peer has our sync before any
// join or leave of ours (OTP's pg crashes on a leave of a group it has not heard of).
func (s *Scope) sync(peer etf.Pid, groups []groupPids) {
	if string(peer.Node) == s.n.Self() {
		return
	}
	keyed := make([]string, len(groups))
	for i, g := range groups {
		k, err := groupKey(g.group)
		if err != nil {
			s.ignored(g.group)
			return
		}
		keyed[i] = k
	}
	s.mu.RLock()
	_, known := s.peers[peer]
	s.mu.RUnlock()
	var ref etf.Ref
	if !known {
		var ok bool
		if ref, ok = s.monitorPeer(peer); !ok {
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peers[peer]
	if p == nil {
		p = &remote{ref: ref}
		s.peers[peer] = p
		s.sendSyncLocked(peer)
	}
	for k, pids := range p.groups {
		s.removeLocked(k, pids, false)
	}
	p.groups = map[string][]etf.Pid{}
	for i, g := range groups {
		if len(g.pids) == 0 {
			continue
		}
		k := keyed[i]
		p.groups[k] = append(p.groups[k], g.pids...)
		gr := s.groupLocked(k, g.group)
		gr.all = append(gr.all, g.pids...)
	}
}

// join takes a peer's {join, Peer, Group, Pids}; a peer that is not known is ignored, as pg.erl
// ignores it.
func (s *Scope) join(peer etf.Pid, group etf.Term, pids []etf.Pid) {
	k, err := groupKey(group)
	if err != nil || len(pids) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peers[peer]
	if p == nil {
		return
	}
	p.groups[k] = append(p.groups[k], pids...)
	g := s.groupLocked(k, group)
	g.all = append(g.all, pids...)
}

// leave takes a peer's {leave, Peer, Pids, Groups}: each pid leaves each group once, if the
// peer had said it joined.
func (s *Scope) leave(peer etf.Pid, pids []etf.Pid, groups etf.List) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.peers[peer]
	if p == nil {
		return
	}
	for _, group := range groups {
		k, err := groupKey(group)
		if err != nil {
			continue
		}
		s.peerLeaveLocked(p, k, pids)
	}
}

// peerLeaveLocked removes each of pids once from peer p's members of group k.
func (s *Scope) peerLeaveLocked(p *remote, k string, pids []etf.Pid) {
	have := p.groups[k]
	var gone []etf.Pid
	for _, pid := range pids {
		if i := slices.Index(have, pid); i >= 0 {
			have = append(have[:i], have[i+1:]...)
			gone = append(gone, pid)
		}
	}
	if len(have) == 0 {
		delete(p.groups, k)
	} else {
		p.groups[k] = have
	}
	s.removeLocked(k, gone, false)
}

// groupUpdate is one entry of OTP 29's update: pids that joined and left one group.
type groupUpdate struct {
	group       etf.Term
	add, remove []etf.Pid
}

// update takes OTP 29's {update, Peer, [{Group, Add, Remove}]}.
func (s *Scope) update(peer etf.Pid, ups []groupUpdate) {
	for _, u := range ups {
		s.join(peer, u.group, u.add)
		if len(u.remove) > 0 {
			s.leave(peer, u.remove, etf.List{u.group})
		}
	}
}

// down handles a DOWN of a monitor: a local member ended (it leaves its groups, and the peers
// are told), or a peer's scope process ended or its connection went down (its members go).
func (s *Scope) down(ref etf.Ref, pid etf.Pid) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.local[pid]; m != nil && m.ref == ref {
		delete(s.local, pid)
		// One leave per group, the pid in it once per join: every OTP version takes that shape
		// (OTP 29 mishandles a group named twice in one leave).
		counts := map[string]int{}
		var order []string
		for _, k := range m.groups {
			if counts[k] == 0 {
				order = append(order, k)
			}
			counts[k]++
		}
		for _, k := range order {
			g := s.groups[k]
			if g == nil {
				continue
			}
			term := g.term
			pids := make([]etf.Pid, counts[k])
			for i := range pids {
				pids[i] = pid
			}
			s.removeLocked(k, pids, true)
			s.broadcastLocked(etf.Tuple{atomLeave, s.proc.Pid(), pidList(pids), etf.List{term}})
		}
		return
	}
	if p := s.peers[pid]; p != nil && p.ref == ref {
		delete(s.peers, pid)
		for k, pids := range p.groups {
			s.removeLocked(k, pids, false)
		}
	}
}

// pidsOf reads a pid or a list of pids (pg's PidOrPids).
func pidsOf(t etf.Term) ([]etf.Pid, bool) {
	switch v := t.(type) {
	case etf.Pid:
		return []etf.Pid{v}, true
	case etf.List:
		out := make([]etf.Pid, len(v))
		for i, e := range v {
			p, ok := e.(etf.Pid)
			if !ok {
				return nil, false
			}
			out[i] = p
		}
		return out, true
	}
	return nil, false
}

// syncGroups reads a sync's [{Group, [Pid]}].
func syncGroups(t etf.Term) ([]groupPids, bool) {
	l, ok := t.(etf.List)
	if !ok {
		return nil, false
	}
	out := make([]groupPids, len(l))
	for i, e := range l {
		gp, ok := e.(etf.Tuple)
		if !ok || len(gp) != 2 {
			return nil, false
		}
		pids, ok := pidsOf(gp[1])
		if !ok {
			return nil, false
		}
		out[i] = groupPids{gp[0], pids}
	}
	return out, true
}

// mapGroups reads OTP 29's #{Group => [Pid]}.
func mapGroups(t etf.Term) ([]groupPids, bool) {
	m, ok := t.(etf.Map)
	if !ok {
		return nil, false
	}
	out := make([]groupPids, len(m))
	for i, e := range m {
		pids, ok := pidsOf(e.Value)
		if !ok {
			return nil, false
		}
		out[i] = groupPids{e.Key, pids}
	}
	return out, true
}

// updates reads OTP 29's [{Group, Add, Remove}].
func updates(t etf.Term) ([]groupUpdate, bool) {
	l, ok := t.(etf.List)
	if !ok {
		return nil, false
	}
	out := make([]groupUpdate, len(l))
	for i, e := range l {
		u, ok := e.(etf.Tuple)
		if !ok || len(u) != 3 {
			return nil, false
		}
		add, ok1 := pidsOf(u[1])
		remove, ok2 := pidsOf(u[2])
		if !ok1 || !ok2 {
			return nil, false
		}
		out[i] = groupUpdate{u[0], add, remove}
	}
	return out, true
}
