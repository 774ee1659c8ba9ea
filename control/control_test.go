package control_test

import (
	"errors"
	"math/big"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
)

var (
	pidA   = etf.Pid{Node: "a@h", ID: 11, Serial: 2, Creation: 3}
	pidB   = etf.Pid{Node: "b@h", ID: 22, Serial: 0, Creation: 4}
	ref1   = etf.Ref{Node: "a@h", Creation: 3, Len: 3, ID: [5]uint32{1, 2, 3}}
	token  = etf.Tuple{int64(0), etf.Atom("label"), int64(7), pidA, int64(1)}
	reason = etf.Tuple{etf.Atom("shutdown"), etf.Atom("because")}
	spawn  = control.SpawnRequest{ReqID: ref1, From: pidA, GroupLeader: pidB, Module: "erlang", Function: "apply", Arity: 2,
		Opts: etf.List{etf.Atom("monitor"), etf.Tuple{etf.Atom("reply"), etf.Atom("error_only")}}}
	spawnReply = control.SpawnReply{ReqID: ref1, To: pidA, Flags: control.SpawnReplyLink | control.SpawnReplyMonitor, Result: pidB}
)

// zoo is one message of every type, with the payload flag it must report.
var zoo = []struct {
	m       control.Message
	payload bool
}{
	{control.Link{From: pidA, To: pidB}, false},
	{control.Send{To: pidB}, true},
	{control.Exit{From: pidA, To: pidB, Reason: reason}, false},
	{control.Unlink{From: pidA, To: pidB}, false},
	{control.NodeLink{}, false},
	{control.RegSend{From: pidA, To: "net_kernel"}, true},
	{control.GroupLeader{From: pidA, To: pidB}, false},
	{control.Exit2{From: pidA, To: pidB, Reason: etf.Atom("kill")}, false},
	{control.SendTT{To: pidB, Token: token}, true},
	{control.ExitTT{From: pidA, To: pidB, Token: token, Reason: reason}, false},
	{control.RegSendTT{From: pidA, To: "rex", Token: token}, true},
	{control.Exit2TT{From: pidA, To: pidB, Token: token, Reason: etf.Atom("normal")}, false},
	{control.MonitorP{From: pidA, To: pidB, Ref: ref1}, false},
	{control.MonitorP{From: pidA, To: etf.Atom("net_kernel"), Ref: ref1}, false},
	{control.DemonitorP{From: pidA, To: pidB, Ref: ref1}, false},
	{control.DemonitorP{From: pidA, To: etf.Atom("rex"), Ref: ref1}, false},
	{control.MonitorPExit{From: pidB, To: pidA, Ref: ref1, Reason: etf.Atom("noproc")}, false},
	{control.MonitorPExit{From: etf.Atom("rex"), To: pidA, Ref: ref1, Reason: reason}, false},
	{control.SendSender{From: pidA, To: pidB}, true},
	{control.SendSenderTT{From: pidA, To: pidB, Token: token}, true},
	{control.PayloadExit{From: pidA, To: pidB}, true},
	{control.PayloadExitTT{From: pidA, To: pidB, Token: token}, true},
	{control.PayloadExit2{From: pidA, To: pidB}, true},
	{control.PayloadExit2TT{From: pidA, To: pidB, Token: token}, true},
	{control.PayloadMonitorPExit{From: pidB, To: pidA, Ref: ref1}, true},
	{control.PayloadMonitorPExit{From: etf.Atom("rex"), To: pidA, Ref: ref1}, true},
	{spawn, true},
	{control.SpawnRequestTT{SpawnRequest: spawn, Token: token}, true},
	{spawnReply, false},
	{control.SpawnReply{ReqID: ref1, To: pidA, Result: etf.Atom("badarg")}, false},
	{control.SpawnReplyTT{SpawnReply: spawnReply, Token: token}, false},
	{control.AliasSend{From: pidA, Alias: ref1}, true},
	{control.AliasSendTT{From: pidA, Alias: ref1, Token: token}, true},
	{control.UnlinkID{ID: 42, From: pidA, To: pidB}, false},
	{control.UnlinkID{ID: 1<<63 + 5, From: pidA, To: pidB}, false}, // a bignum on the wire
	{control.UnlinkIDAck{ID: 42, From: pidB, To: pidA}, false},
}

// wire encodes a control tuple and decodes it again, as it would arrive.
func wire(t *testing.T, tup etf.Tuple) etf.Term {
	t.Helper()
	b, err := etf.Append(nil, tup)
	require.NoError(t, err)
	back, n, err := etf.Decode(b)
	require.NoError(t, err)
	require.Equal(t, len(b), n)
	return back
}

func TestEveryMessageTypeRoundTrips(t *testing.T) {
	ops := map[control.Op]bool{}
	for _, tc := range zoo {
		t.Run(tc.m.Op().String(), func(t *testing.T) {
			tup := tc.m.Tuple()
			require.NotEmpty(t, tup)
			assert.Equal(t, int64(tc.m.Op()), tup[0], "the tuple starts with the operation")
			assert.Equal(t, tc.payload, tc.m.HasPayload())
			got, err := control.Decode(wire(t, tup))
			require.NoError(t, err)
			assert.Equal(t, tc.m, got)
			// Elements a newer peer adds are ignored.
			got, err = control.Decode(wire(t, append(append(etf.Tuple{}, tup...), etf.Atom("future"))))
			require.NoError(t, err)
			assert.Equal(t, tc.m, got)
		})
		ops[tc.m.Op()] = true
	}
	// Every operation this package names (GROUP_LEADER and NODE_LINK included) is in the zoo.
	for o := control.Op(1); o <= 40; o++ {
		if o.String() != "OP_"+itoa(int(o)) {
			assert.True(t, ops[o], "%v has no case in the zoo", o)
		}
	}
	assert.Len(t, ops, 30)
}

func itoa(i int) string { return big.NewInt(int64(i)).String() }

func TestOpString(t *testing.T) {
	assert.Equal(t, "REG_SEND", control.OpRegSend.String())
	assert.Equal(t, "PAYLOAD_MONITOR_P_EXIT", control.OpPayloadMonitorPExit.String())
	assert.Equal(t, "UNLINK_ID_ACK", control.OpUnlinkIDAck.String())
	assert.Equal(t, "OP_99", control.Op(99).String())
}

// unused are the elements a message does not carry (the Unused of SEND and REG_SEND): they go
// out as the empty atom.
var unused = map[control.Op]int{control.OpSend: 1, control.OpSendTT: 1, control.OpRegSend: 2, control.OpRegSendTT: 2}

// TestMalformedShapes: every truncated control tuple is an *Error naming its operation, and
// every element is either checked (a wrong type is an *Error) or carried as it came.
func TestMalformedShapes(t *testing.T) {
	for _, tc := range zoo {
		tup := tc.m.Tuple()
		if len(tup) > 1 {
			_, err := control.Decode(wire(t, tup[:len(tup)-1]))
			var ce *control.Error
			require.ErrorAs(t, err, &ce, "%v with %d elements", tc.m.Op(), len(tup)-1)
			assert.Equal(t, tc.m.Op(), ce.Op)
			assert.Contains(t, ce.Error(), tc.m.Op().String())
			assert.NotErrorIs(t, err, control.ErrUnknownOp)
		}
		for i := 1; i < len(tup); i++ {
			bad := append(etf.Tuple{}, tup...)
			bad[i] = 1.5 // a float is no pid, reference, atom, id, list or integer
			m, err := control.Decode(wire(t, bad))
			if err != nil {
				var ce *control.Error
				require.ErrorAs(t, err, &ce)
				assert.Equal(t, tc.m.Op(), ce.Op)
				continue
			}
			if unused[tc.m.Op()] == i {
				assert.Equal(t, tc.m, m, "%v: the unused element %d is ignored", tc.m.Op(), i)
				continue
			}
			assert.Equal(t, 1.5, m.Tuple()[i], "%v: element %d is neither checked nor carried", tc.m.Op(), i)
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	mfa := etf.Tuple{etf.Atom("m"), etf.Atom("f"), int64(1)}
	req := func(mfa, opts etf.Term) etf.Tuple {
		return etf.Tuple{int64(control.OpSpawnRequest), ref1, pidA, pidB, mfa, opts}
	}
	for _, tc := range []struct {
		what    string
		ctrl    etf.Term
		op      control.Op
		unknown bool
	}{
		{"not a tuple", etf.Atom("send"), 0, false},
		{"a list", etf.List{int64(2)}, 0, false},
		{"empty tuple", etf.Tuple{}, 0, false},
		{"operation not an integer", etf.Tuple{etf.Atom("x"), pidA}, 0, false},
		{"operation a bignum", etf.Tuple{new(big.Int).Lsh(big.NewInt(1), 70), pidA}, 0, false},
		{"unknown operation", etf.Tuple{int64(99), etf.Atom("whatever")}, 99, true},
		{"negative operation", etf.Tuple{int64(-1)}, -1, true},
		{"operation 0", etf.Tuple{int64(0)}, 0, true},
		{"negative UNLINK_ID id", etf.Tuple{int64(control.OpUnlinkID), int64(-1), pidA, pidB}, control.OpUnlinkID, false},
		{"UNLINK_ID id over 64 bits", etf.Tuple{int64(control.OpUnlinkID), new(big.Int).Lsh(big.NewInt(1), 64), pidA, pidB}, control.OpUnlinkID, false},
		{"MONITOR_P of a tuple", etf.Tuple{int64(control.OpMonitorP), pidA, etf.Tuple{etf.Atom("n"), etf.Atom("x@h")}, ref1}, control.OpMonitorP, false},
		{"MFA not a tuple", req(etf.Atom("m"), etf.List{}), control.OpSpawnRequest, false},
		{"MFA of two", req(etf.Tuple{etf.Atom("m"), etf.Atom("f")}, etf.List{}), control.OpSpawnRequest, false},
		{"MFA arity negative", req(etf.Tuple{etf.Atom("m"), etf.Atom("f"), int64(-1)}, etf.List{}), control.OpSpawnRequest, false},
		{"MFA arity 256", req(etf.Tuple{etf.Atom("m"), etf.Atom("f"), int64(256)}, etf.List{}), control.OpSpawnRequest, false},
		{"MFA module not an atom", req(etf.Tuple{"m", etf.Atom("f"), int64(1)}, etf.List{}), control.OpSpawnRequest, false},
		{"options not a list", req(mfa, etf.Atom("link")), control.OpSpawnRequest, false},
		{"options improper", req(mfa, etf.ImproperList{Elems: []etf.Term{etf.Atom("link")}, Tail: etf.Atom("x")}), control.OpSpawnRequest, false},
		{"SPAWN_REPLY flags not an integer", etf.Tuple{int64(control.OpSpawnReply), ref1, pidA, etf.Atom("x"), pidB}, control.OpSpawnReply, false},
	} {
		t.Run(tc.what, func(t *testing.T) {
			m, err := control.Decode(tc.ctrl)
			assert.Nil(t, m)
			var ce *control.Error
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.op, ce.Op)
			assert.Equal(t, tc.unknown, errors.Is(err, control.ErrUnknownOp))
			assert.NotEmpty(t, ce.Reason)
			assert.Contains(t, err.Error(), "control: ")
		})
	}
}

func TestSpawnRequestOptions(t *testing.T) {
	mfa := etf.Tuple{etf.Atom("m"), etf.Atom("f"), int64(0)}
	// A list of small integers travels as STRING_EXT; it is still a list.
	m, err := control.Decode(wire(t, etf.Tuple{int64(control.OpSpawnRequest), ref1, pidA, pidB, mfa, etf.String("\x01\x02")}))
	require.NoError(t, err)
	assert.Equal(t, etf.List{int64(1), int64(2)}, m.(control.SpawnRequest).Opts)
	// No options go out as [].
	r := control.SpawnRequest{ReqID: ref1, From: pidA, GroupLeader: pidB, Module: "m", Function: "f"}
	got, err := control.Decode(wire(t, r.Tuple()))
	require.NoError(t, err)
	assert.Empty(t, got.(control.SpawnRequest).Opts)
	assert.Equal(t, etf.List{}, r.Tuple()[5])
}

// TestDecodeTupleDirect: a message's own tuple decodes without a trip through the wire (a
// loopback delivery, a test).
func TestDecodeTupleDirect(t *testing.T) {
	for _, tc := range zoo {
		got, err := control.Decode(tc.m.Tuple())
		require.NoError(t, err, "%v", tc.m.Op())
		assert.Equal(t, tc.m, got)
	}
}
