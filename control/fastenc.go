package control

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/distribute-go/distribute/etf"
)

// appendFast appends the control tuple of m (with a version byte first when versioned) for
// the operations the decoding fast path reads, byte for byte what etf.Append / etf.AppendTerm
// of m.Tuple() writes, without building the tuple of terms. ok false: m is another operation
// or holds something the general encoder must judge (a long or invalid atom, a malformed
// reference, an unusual ToProc); dst is then returned unchanged.
func appendFast(dst []byte, versioned bool, m Message) (b []byte, ok bool) {
	b = dst
	if versioned {
		b = append(b, etf.VersionTag)
	}
	e := fastEncoder{b: b}
	switch m := m.(type) {
	case Send:
		e.head(3, fastOpSend)
		e.atom("")
		e.pid(m.To)
	case RegSend:
		e.head(4, fastOpRegSend)
		e.pid(m.From)
		e.atom("")
		e.atom(m.To)
	case SendSender:
		e.head(3, fastOpSendSender)
		e.pid(m.From)
		e.pid(m.To)
	case AliasSend:
		e.head(3, fastOpAliasSend)
		e.pid(m.From)
		e.ref(m.Alias)
	case MonitorP:
		e.head(4, fastOpMonitorP)
		e.pid(m.From)
		e.proc(m.To)
		e.ref(m.Ref)
	case DemonitorP:
		e.head(4, fastOpDemonitorP)
		e.pid(m.From)
		e.proc(m.To)
		e.ref(m.Ref)
	default:
		return dst, false
	}
	if e.bad {
		return dst, false
	}
	return e.b, true
}

type fastEncoder struct {
	b   []byte
	bad bool
}

func (e *fastEncoder) head(arity int, op byte) {
	e.b = append(e.b, tagSmallTuple, byte(arity), tagSmallInteger, op)
}

func (e *fastEncoder) atom(a etf.Atom) {
	if len(a) > 255 || !utf8.ValidString(string(a)) {
		e.bad = true
		return
	}
	e.b = append(e.b, tagSmallAtomUTF8, byte(len(a)))
	e.b = append(e.b, a...)
}

func (e *fastEncoder) pid(p etf.Pid) {
	e.b = append(e.b, tagNewPid)
	e.atom(p.Node)
	e.b = binary.BigEndian.AppendUint32(e.b, p.ID)
	e.b = binary.BigEndian.AppendUint32(e.b, p.Serial)
	e.b = binary.BigEndian.AppendUint32(e.b, p.Creation)
}

func (e *fastEncoder) ref(r etf.Ref) {
	if r.Len == 0 || r.Len > maxRefWords {
		e.bad = true
		return
	}
	e.b = append(e.b, tagNewerReference, 0, r.Len)
	e.atom(r.Node)
	e.b = binary.BigEndian.AppendUint32(e.b, r.Creation)
	for _, w := range r.ID[:r.Len] {
		e.b = binary.BigEndian.AppendUint32(e.b, w)
	}
}

func (e *fastEncoder) proc(t etf.Term) {
	switch v := t.(type) {
	case etf.Pid:
		e.pid(v)
	case etf.Atom:
		e.atom(v)
	default:
		e.bad = true
	}
}
