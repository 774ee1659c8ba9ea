package global

import (
	"github.com/distribute-go/distribute/etf"
)

// tables are global's bookkeeping of names and locks (global.erl's ets tables): written by the
// server's goroutine only, read by the API, the locker and the resolvers, under Global.mu.
type tables struct {
	names    map[string]*nameEntry // by termKey(Name)
	nameRefs map[etf.Ref]string    // monitor ref -> name key
	namesExt map[string]extEntry   // names registered for external (C) nodes
	locks    map[string]*lockEntry // by termKey(ResourceId)
	lockRefs map[etf.Ref]string    // monitor ref -> resource key
	// resources per node: the monitor refs of names and locks held by that node's pids
	nodeRes map[string]map[etf.Ref]struct{}
	resNode map[etf.Ref]string
	// globalLockDown: the last {global, _} lock went because its holder ended
	globalLockDown bool
}

type nameEntry struct {
	name   etf.Term
	pid    etf.Pid
	method etf.Term
	ref    etf.Ref
}

type extEntry struct {
	name    etf.Term
	pid     etf.Pid
	regNode etf.Atom
}

type lockEntry struct {
	resource etf.Term
	reqID    etf.Term
	holders  []holder
}

type holder struct {
	pid etf.Pid
	ref etf.Ref
}

func (t *tables) init() {
	t.names = map[string]*nameEntry{}
	t.nameRefs = map[etf.Ref]string{}
	t.namesExt = map[string]extEntry{}
	t.locks = map[string]*lockEntry{}
	t.lockRefs = map[etf.Ref]string{}
	t.nodeRes = map[string]map[etf.Ref]struct{}{}
	t.resNode = map[etf.Ref]string{}
}

// termKey is a map key for a term: its encoding. Terms that arrive from BEAM encode the same way
// each time; Go callers should use the types decoding produces (etf.Atom, []byte, etf.Tuple...).
func termKey(t etf.Term) string {
	b, err := etf.AppendTerm(nil, t)
	if err != nil {
		return "\x00" + etf.Format(t)
	}
	return string(b)
}

func (t *tables) saveNodeRes(node string, ref etf.Ref) {
	m := t.nodeRes[node]
	if m == nil {
		m = map[etf.Ref]struct{}{}
		t.nodeRes[node] = m
	}
	m[ref] = struct{}{}
	t.resNode[ref] = node
}

func (t *tables) deleteNodeRes(ref etf.Ref) {
	node, ok := t.resNode[ref]
	if !ok {
		return
	}
	delete(t.resNode, ref)
	if m := t.nodeRes[node]; m != nil {
		delete(m, ref)
		if len(m) == 0 {
			delete(t.nodeRes, node)
		}
	}
}

// canSetLock is global.erl's can_set_lock: the holders when the lock may be taken by reqID.
func (t *tables) canSetLock(resource, reqID etf.Term) ([]holder, bool) {
	l := t.locks[termKey(resource)]
	if l == nil {
		return nil, true
	}
	if etf.Equal(l.reqID, reqID) {
		return l.holders, true
	}
	return nil, false
}

func (t *tables) isLockSet(resource etf.Term) bool {
	_, ok := t.locks[termKey(resource)]
	return ok
}

func (t *tables) namesList() etf.List {
	l := make(etf.List, 0, len(t.names))
	for _, e := range t.names {
		l = append(l, etf.Tuple{e.name, e.pid, e.method})
	}
	return l
}

func (t *tables) namesExtList() etf.List {
	l := make(etf.List, 0, len(t.namesExt))
	for _, e := range t.namesExt {
		l = append(l, etf.Tuple{e.name, e.pid, e.regNode})
	}
	return l
}

// pidLess orders pids as BEAM does (checked on OTP 25): serial, number, node name, creation.
func pidLess(a, b etf.Pid) bool {
	if a.Serial != b.Serial {
		return a.Serial < b.Serial
	}
	if a.ID != b.ID {
		return a.ID < b.ID
	}
	if a.Node != b.Node {
		return a.Node < b.Node
	}
	return a.Creation < b.Creation
}

// lockID is global.erl's locker_lock_id: {global, lists:sort([LockerA, LockerB])}.
func lockID(a, b etf.Pid) etf.Tuple {
	if pidLess(b, a) {
		a, b = b, a
	}
	return etf.Tuple{atomGlobal, etf.List{a, b}}
}
