package control

import (
	"encoding/binary"

	"github.com/distribute-go/distribute/etf"
)

// A fast path for the control tuples that carry nearly all traffic: SEND, REG_SEND,
// SEND_SENDER, ALIAS_SEND, MONITOR_P and DEMONITOR_P (the three frames of a BEAM
// net_adm:ping are MONITOR_P, REG_SEND and DEMONITOR_P). They are read straight from the
// bytes, without building the generic tuple of etf terms first. Anything in another shape
// (another operation, extra elements, an old pid or reference encoding, a Latin-1 or non-ASCII
// atom, a truncated tuple) is left to the general path, which decodes it or says what is wrong,
// so the two paths agree on every input.

// Tags of the external term format the fast path reads.
const (
	tagSmallTuple     = 104
	tagSmallInteger   = 97
	tagNewPid         = 88
	tagNewerReference = 90
	tagAtomUTF8       = 118
	tagSmallAtomUTF8  = 119
	maxCachedAtoms    = 1024
	maxRefWords       = 5
	maxFastAtomLength = 255
	fastOpSend        = 2
	fastOpRegSend     = 6
	fastOpMonitorP    = 19
	fastOpDemonitorP  = 20
	fastOpSendSender  = 22
	fastOpAliasSend   = 33
)

// atomCache maps atom bytes to the atom and the atom boxed as a term, so a frequent atom
// (a node name, a registered name) costs no allocation; one per Reader, as a Reader is used
// by one goroutine.
type atomCache map[string]atomEntry

type atomEntry struct {
	a etf.Atom
	t etf.Term
}

// fast decodes b (a control tuple and what follows it; versioned: with a 131 version byte
// before each term) when it is one of the fast path's shapes; ok false sends it to split.
func (r *Reader) fast(b []byte, versioned bool) (m Message, p Payload, ok bool) {
	f := fastDecoder{b: b, atoms: &r.atoms}
	if versioned && !f.byte(etf.VersionTag) {
		return nil, Payload{}, false
	}
	if !f.byte(tagSmallTuple) || f.i >= len(b) {
		return nil, Payload{}, false
	}
	arity := int(b[f.i])
	f.i++
	if !f.byte(tagSmallInteger) || f.i >= len(b) {
		return nil, Payload{}, false
	}
	op := b[f.i]
	f.i++
	switch {
	case op == fastOpSend && arity == 3:
		if _, ok := f.atom(); !ok {
			return nil, Payload{}, false
		}
		m = Send{To: f.pid()}
	case op == fastOpRegSend && arity == 4:
		from := f.pid()
		if _, ok := f.atom(); !ok {
			return nil, Payload{}, false
		}
		to, _ := f.atom()
		m = RegSend{From: from, To: to}
	case op == fastOpSendSender && arity == 3:
		m = SendSender{From: f.pid(), To: f.pid()}
	case op == fastOpAliasSend && arity == 3:
		m = AliasSend{From: f.pid(), Alias: f.ref()}
	case (op == fastOpMonitorP || op == fastOpDemonitorP) && arity == 4:
		from := f.pid()
		to := f.proc()
		ref := f.ref()
		if op == fastOpMonitorP {
			m = MonitorP{From: from, To: to, Ref: ref}
		} else {
			m = DemonitorP{From: from, To: to, Ref: ref}
		}
	default:
		return nil, Payload{}, false
	}
	if f.bad {
		return nil, Payload{}, false
	}
	p = Payload{b: b[f.i:], versioned: versioned}
	if m.HasPayload() && len(p.b) == 0 {
		return nil, Payload{}, false // the general path reports it
	}
	return m, p, true
}

// fastDecoder reads terms from b at i; the first term not in a fast shape sets bad.
type fastDecoder struct {
	b     []byte
	i     int
	bad   bool
	atoms *atomCache
}

func (f *fastDecoder) byte(want byte) bool {
	if f.i >= len(f.b) || f.b[f.i] != want {
		f.bad = true
		return false
	}
	f.i++
	return true
}

// atomBytes reads a UTF-8 atom tag and returns the name's bytes, ASCII only.
func (f *fastDecoder) atomBytes() ([]byte, bool) {
	if f.bad || f.i+2 > len(f.b) {
		f.bad = true
		return nil, false
	}
	var n, start int
	switch f.b[f.i] {
	case tagSmallAtomUTF8:
		n, start = int(f.b[f.i+1]), f.i+2
	case tagAtomUTF8:
		if f.i+3 > len(f.b) {
			f.bad = true
			return nil, false
		}
		n, start = int(binary.BigEndian.Uint16(f.b[f.i+1:])), f.i+3
	default:
		f.bad = true
		return nil, false
	}
	if n > maxFastAtomLength || start+n > len(f.b) {
		f.bad = true
		return nil, false
	}
	name := f.b[start : start+n]
	for _, c := range name {
		if c >= 0x80 {
			f.bad = true
			return nil, false
		}
	}
	f.i = start + n
	return name, true
}

func (f *fastDecoder) atomEntry() (atomEntry, bool) {
	name, ok := f.atomBytes()
	if !ok {
		return atomEntry{}, false
	}
	if *f.atoms == nil {
		*f.atoms = atomCache{}
	}
	if e, ok := (*f.atoms)[string(name)]; ok {
		return e, true
	}
	a := etf.Atom(name)
	e := atomEntry{a: a, t: a}
	if len(*f.atoms) < maxCachedAtoms {
		(*f.atoms)[string(a)] = e
	}
	return e, true
}

func (f *fastDecoder) atom() (etf.Atom, bool) {
	e, ok := f.atomEntry()
	return e.a, ok
}

func (f *fastDecoder) pid() etf.Pid {
	if !f.byte(tagNewPid) {
		return etf.Pid{}
	}
	node, ok := f.atom()
	if !ok || f.i+12 > len(f.b) {
		f.bad = true
		return etf.Pid{}
	}
	p := etf.Pid{Node: node,
		ID:       binary.BigEndian.Uint32(f.b[f.i:]),
		Serial:   binary.BigEndian.Uint32(f.b[f.i+4:]),
		Creation: binary.BigEndian.Uint32(f.b[f.i+8:])}
	f.i += 12
	return p
}

// proc reads a pid or an atom, as a term (the atom's box comes from the cache).
func (f *fastDecoder) proc() etf.Term {
	if f.bad || f.i >= len(f.b) {
		f.bad = true
		return nil
	}
	if f.b[f.i] == tagNewPid {
		return f.pid()
	}
	e, ok := f.atomEntry()
	if !ok {
		return nil
	}
	return e.t
}

func (f *fastDecoder) ref() etf.Ref {
	if !f.byte(tagNewerReference) || f.i+2 > len(f.b) {
		f.bad = true
		return etf.Ref{}
	}
	n := int(binary.BigEndian.Uint16(f.b[f.i:]))
	f.i += 2
	if n == 0 || n > maxRefWords {
		f.bad = true
		return etf.Ref{}
	}
	node, ok := f.atom()
	if !ok || f.i+4+4*n > len(f.b) {
		f.bad = true
		return etf.Ref{}
	}
	r := etf.Ref{Node: node, Len: uint8(n), Creation: binary.BigEndian.Uint32(f.b[f.i:])}
	f.i += 4
	for k := range n {
		r.ID[k] = binary.BigEndian.Uint32(f.b[f.i:])
		f.i += 4
	}
	return r
}
