package etf

import (
	"hash/maphash"
	"sync/atomic"
)

// The intern table keeps recently decoded atoms (node names, '$gen_call', yes, ...) so that decoding
// them again allocates nothing. It is bounded (a fixed number of slots, each replaced on collision),
// so hostile input cannot grow it, and it is safe for concurrent use.
const (
	internSlots  = 1024
	internMaxLen = 255
)

type internEntry struct {
	atom Atom
	term Term // the same atom, boxed once
}

var (
	internSeed  = maphash.MakeSeed()
	internTable [internSlots]atomic.Pointer[internEntry]
	emptyAtom   Term = Atom("")
)

// intern returns name as an Atom and as a Term, both shared when the atom was seen recently.
func intern(name []byte) (Atom, Term) {
	if len(name) == 0 {
		return "", emptyAtom
	}
	if len(name) > internMaxLen {
		a := Atom(name)
		return a, a
	}
	slot := &internTable[maphash.Bytes(internSeed, name)&(internSlots-1)]
	if e := slot.Load(); e != nil && string(e.atom) == string(name) {
		return e.atom, e.term
	}
	a := Atom(name)
	e := &internEntry{atom: a, term: a}
	slot.Store(e)
	return a, e.term
}
