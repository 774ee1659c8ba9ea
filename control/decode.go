package control

import (
	"math/big"
	"strconv"

	"github.com/distribute-go/distribute/etf"
)

// Decode turns a decoded control tuple into its Message. Elements past the ones an operation
// defines are ignored (newer peers may add some); missing or mistyped ones are an *Error.
func Decode(ctrl etf.Term) (Message, error) {
	t, ok := ctrl.(etf.Tuple)
	if !ok || len(t) == 0 {
		return nil, &Error{Reason: "control message is not a non-empty tuple"}
	}
	code, ok := t[0].(int64)
	if !ok {
		return nil, &Error{Reason: "operation is not an integer"}
	}
	d := decoder{op: Op(code), t: t}
	m := d.message()
	if d.err != nil {
		return nil, d.err
	}
	return m, nil
}

// decoder reads the elements of one control tuple; the first problem sticks in err.
type decoder struct {
	op  Op
	t   etf.Tuple
	err error
}

func (d *decoder) fail(reason string) {
	if d.err == nil {
		d.err = &Error{Op: d.op, Reason: reason}
	}
}

func (d *decoder) arity(n int) bool {
	if len(d.t) < n {
		d.fail("tuple has " + strconv.Itoa(len(d.t)) + " elements, want " + strconv.Itoa(n))
		return false
	}
	return true
}

func (d *decoder) pid(i int) etf.Pid {
	p, ok := d.t[i].(etf.Pid)
	if !ok {
		d.fail("element " + strconv.Itoa(i+1) + " is not a pid")
	}
	return p
}

func (d *decoder) ref(i int) etf.Ref {
	r, ok := d.t[i].(etf.Ref)
	if !ok {
		d.fail("element " + strconv.Itoa(i+1) + " is not a reference")
	}
	return r
}

func (d *decoder) atom(i int) etf.Atom {
	a, ok := d.t[i].(etf.Atom)
	if !ok {
		d.fail("element " + strconv.Itoa(i+1) + " is not an atom")
	}
	return a
}

// proc reads a pid or a registered name.
func (d *decoder) proc(i int) etf.Term {
	switch d.t[i].(type) {
	case etf.Pid, etf.Atom:
		return d.t[i]
	}
	d.fail("element " + strconv.Itoa(i+1) + " is neither a pid nor an atom")
	return nil
}

func (d *decoder) id(i int) uint64 {
	switch v := d.t[i].(type) {
	case int64:
		if v >= 0 {
			return uint64(v)
		}
	case uint64: // as UnlinkID.Tuple makes it, before encoding
		return v
	case *big.Int:
		if v.Sign() >= 0 && v.IsUint64() {
			return v.Uint64()
		}
	}
	d.fail("element " + strconv.Itoa(i+1) + " is not an unsigned 64-bit id")
	return 0
}

func (d *decoder) message() Message {
	t := d.t
	switch d.op {
	case OpLink, OpUnlink, OpGroupLeader, OpSendSender, OpPayloadExit, OpPayloadExit2:
		if !d.arity(3) {
			return nil
		}
		from, to := d.pid(1), d.pid(2)
		switch d.op {
		case OpLink:
			return Link{From: from, To: to}
		case OpUnlink:
			return Unlink{From: from, To: to}
		case OpGroupLeader:
			return GroupLeader{From: from, To: to}
		case OpSendSender:
			return SendSender{From: from, To: to}
		case OpPayloadExit:
			return PayloadExit{From: from, To: to}
		default:
			return PayloadExit2{From: from, To: to}
		}
	case OpSendSenderTT, OpPayloadExitTT, OpPayloadExit2TT:
		if !d.arity(4) {
			return nil
		}
		from, to, tok := d.pid(1), d.pid(2), t[3]
		switch d.op {
		case OpSendSenderTT:
			return SendSenderTT{From: from, To: to, Token: tok}
		case OpPayloadExitTT:
			return PayloadExitTT{From: from, To: to, Token: tok}
		default:
			return PayloadExit2TT{From: from, To: to, Token: tok}
		}
	case OpSend:
		if !d.arity(3) {
			return nil
		}
		return Send{To: d.pid(2)}
	case OpSendTT:
		if !d.arity(4) {
			return nil
		}
		return SendTT{To: d.pid(2), Token: t[3]}
	case OpExit, OpExit2:
		if !d.arity(4) {
			return nil
		}
		from, to := d.pid(1), d.pid(2)
		if d.op == OpExit {
			return Exit{From: from, To: to, Reason: t[3]}
		}
		return Exit2{From: from, To: to, Reason: t[3]}
	case OpExitTT, OpExit2TT:
		if !d.arity(5) {
			return nil
		}
		from, to := d.pid(1), d.pid(2)
		if d.op == OpExitTT {
			return ExitTT{From: from, To: to, Token: t[3], Reason: t[4]}
		}
		return Exit2TT{From: from, To: to, Token: t[3], Reason: t[4]}
	case OpNodeLink:
		return NodeLink{}
	case OpRegSend:
		if !d.arity(4) {
			return nil
		}
		return RegSend{From: d.pid(1), To: d.atom(3)}
	case OpRegSendTT:
		if !d.arity(5) {
			return nil
		}
		return RegSendTT{From: d.pid(1), To: d.atom(3), Token: t[4]}
	case OpMonitorP, OpDemonitorP:
		if !d.arity(4) {
			return nil
		}
		from, to, ref := d.pid(1), d.proc(2), d.ref(3)
		if d.op == OpMonitorP {
			return MonitorP{From: from, To: to, Ref: ref}
		}
		return DemonitorP{From: from, To: to, Ref: ref}
	case OpMonitorPExit:
		if !d.arity(5) {
			return nil
		}
		return MonitorPExit{From: d.proc(1), To: d.pid(2), Ref: d.ref(3), Reason: t[4]}
	case OpPayloadMonitorPExit:
		if !d.arity(4) {
			return nil
		}
		return PayloadMonitorPExit{From: d.proc(1), To: d.pid(2), Ref: d.ref(3)}
	case OpSpawnRequest, OpSpawnRequestTT:
		n := 6
		if d.op == OpSpawnRequestTT {
			n = 7
		}
		if !d.arity(n) {
			return nil
		}
		r := SpawnRequest{ReqID: d.ref(1), From: d.pid(2), GroupLeader: d.pid(3)}
		mfa, ok := t[4].(etf.Tuple)
		if !ok || len(mfa) != 3 {
			d.fail("element 5 is not {Module, Function, Arity}")
			return nil
		}
		m, ok1 := mfa[0].(etf.Atom)
		f, ok2 := mfa[1].(etf.Atom)
		a, ok3 := mfa[2].(int64)
		if !ok1 || !ok2 || !ok3 || a < 0 || a > 255 {
			d.fail("element 5 is not {Module, Function, Arity}")
			return nil
		}
		r.Module, r.Function, r.Arity = m, f, int(a)
		switch o := t[5].(type) {
		case etf.List:
			r.Opts = o
		case etf.String:
			// A list of small integers is no option list BEAM sends, but it is a list.
			r.Opts = make(etf.List, len(o))
			for i := range len(o) {
				r.Opts[i] = int64(o[i])
			}
		default:
			d.fail("element 6 is not an option list")
			return nil
		}
		if d.op == OpSpawnRequestTT {
			return SpawnRequestTT{SpawnRequest: r, Token: t[6]}
		}
		return r
	case OpSpawnReply, OpSpawnReplyTT:
		n := 5
		if d.op == OpSpawnReplyTT {
			n = 6
		}
		if !d.arity(n) {
			return nil
		}
		fl, ok := t[3].(int64)
		if !ok {
			d.fail("element 4 is not an integer")
		}
		r := SpawnReply{ReqID: d.ref(1), To: d.pid(2), Flags: fl, Result: t[4]}
		if d.op == OpSpawnReplyTT {
			return SpawnReplyTT{SpawnReply: r, Token: t[5]}
		}
		return r
	case OpAliasSend:
		if !d.arity(3) {
			return nil
		}
		return AliasSend{From: d.pid(1), Alias: d.ref(2)}
	case OpAliasSendTT:
		if !d.arity(4) {
			return nil
		}
		return AliasSendTT{From: d.pid(1), Alias: d.ref(2), Token: t[3]}
	case OpUnlinkID, OpUnlinkIDAck:
		if !d.arity(4) {
			return nil
		}
		id, from, to := d.id(1), d.pid(2), d.pid(3)
		if d.op == OpUnlinkID {
			return UnlinkID{ID: id, From: from, To: to}
		}
		return UnlinkIDAck{ID: id, From: from, To: to}
	}
	d.err = &Error{Op: d.op, Reason: ErrUnknownOp.Error(), Err: ErrUnknownOp}
	return nil
}
