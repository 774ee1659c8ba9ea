// Package control is the protocol between connected nodes (erl_dist_protocol, "Protocol between
// connected nodes"): one Go type per control message, decoded from and turned into the control tuple
// that travels on a distribution connection, and the framing those messages travel in (pass-through
// 'p' frames, distribution headers, fragments).
//
// The package is pure: no goroutines, no I/O, no state beyond what a caller holds (a Reader per
// connection). A control message that is malformed (wrong arity, wrong element type) is an *Error the
// caller can log and skip: it is one bad message, not a reason to drop the connection.
package control

import (
	"errors"
	"strconv"

	"github.com/distribute-go/distribute/etf"
)

// Op is a control message's operation code, the first element of its tuple.
type Op int

// Operation codes (erl_dist_protocol).
const (
	OpLink                = Op(1)
	OpSend                = Op(2)
	OpExit                = Op(3)
	OpUnlink              = Op(4)
	OpNodeLink            = Op(5)
	OpRegSend             = Op(6)
	OpGroupLeader         = Op(7)
	OpExit2               = Op(8)
	OpSendTT              = Op(12)
	OpExitTT              = Op(13)
	OpRegSendTT           = Op(16)
	OpExit2TT             = Op(18)
	OpMonitorP            = Op(19)
	OpDemonitorP          = Op(20)
	OpMonitorPExit        = Op(21)
	OpSendSender          = Op(22)
	OpSendSenderTT        = Op(23)
	OpPayloadExit         = Op(24)
	OpPayloadExitTT       = Op(25)
	OpPayloadExit2        = Op(26)
	OpPayloadExit2TT      = Op(27)
	OpPayloadMonitorPExit = Op(28)
	OpSpawnRequest        = Op(29)
	OpSpawnRequestTT      = Op(30)
	OpSpawnReply          = Op(31)
	OpSpawnReplyTT        = Op(32)
	OpAliasSend           = Op(33)
	OpAliasSendTT         = Op(34)
	OpUnlinkID            = Op(35)
	OpUnlinkIDAck         = Op(36)
)

var opNames = map[Op]string{
	OpLink: "LINK", OpSend: "SEND", OpExit: "EXIT", OpUnlink: "UNLINK", OpNodeLink: "NODE_LINK",
	OpRegSend: "REG_SEND", OpGroupLeader: "GROUP_LEADER", OpExit2: "EXIT2", OpSendTT: "SEND_TT",
	OpExitTT: "EXIT_TT", OpRegSendTT: "REG_SEND_TT", OpExit2TT: "EXIT2_TT", OpMonitorP: "MONITOR_P",
	OpDemonitorP: "DEMONITOR_P", OpMonitorPExit: "MONITOR_P_EXIT", OpSendSender: "SEND_SENDER",
	OpSendSenderTT: "SEND_SENDER_TT", OpPayloadExit: "PAYLOAD_EXIT", OpPayloadExitTT: "PAYLOAD_EXIT_TT",
	OpPayloadExit2: "PAYLOAD_EXIT2", OpPayloadExit2TT: "PAYLOAD_EXIT2_TT",
	OpPayloadMonitorPExit: "PAYLOAD_MONITOR_P_EXIT", OpSpawnRequest: "SPAWN_REQUEST",
	OpSpawnRequestTT: "SPAWN_REQUEST_TT", OpSpawnReply: "SPAWN_REPLY", OpSpawnReplyTT: "SPAWN_REPLY_TT",
	OpAliasSend: "ALIAS_SEND", OpAliasSendTT: "ALIAS_SEND_TT", OpUnlinkID: "UNLINK_ID",
	OpUnlinkIDAck: "UNLINK_ID_ACK",
}

func (o Op) String() string {
	if s, ok := opNames[o]; ok {
		return s
	}
	return "OP_" + strconv.Itoa(int(o))
}

// Message is one control message. Tuple returns the control tuple as it goes on the wire;
// HasPayload says whether a message term follows it in the frame (the message of a SEND, the reason
// of a PAYLOAD_EXIT, the argument list of a SPAWN_REQUEST).
type Message interface {
	Op() Op
	Tuple() etf.Tuple
	HasPayload() bool
}

// Error is a control message that cannot be decoded: not a tuple, an unknown operation, or an
// element of the wrong type. Op is 0 when the operation itself is unreadable.
type Error struct {
	Op     Op
	Reason string
	Err    error // ErrUnknownOp, or nil
}

// Unwrap returns ErrUnknownOp for an unknown operation.
func (e *Error) Unwrap() error { return e.Err }

func (e *Error) Error() string {
	if e.Op == 0 {
		return "control: " + e.Reason
	}
	return "control: " + e.Op.String() + ": " + e.Reason
}

// ErrUnknownOp is wrapped by an *Error for an operation code this package does not know; a node
// ignores such messages, as BEAM ignores what it does not understand from newer peers.
var ErrUnknownOp = errors.New("unknown control operation")

// Link is LINK {1, FromPid, ToPid}.
type Link struct{ From, To etf.Pid }

// Send is SEND {2, Unused, ToPid}; the message follows.
type Send struct {
	To etf.Pid
}

// Exit is EXIT {3, FromPid, ToPid, Reason}: a linked process ended.
type Exit struct {
	From, To etf.Pid
	Reason   etf.Term
}

// Unlink is the old UNLINK {4, FromPid, ToPid} (before UNLINK_ID).
type Unlink struct{ From, To etf.Pid }

// NodeLink is NODE_LINK {5} (unused by OTP).
type NodeLink struct{}

// RegSend is REG_SEND {6, FromPid, Unused, ToName}; the message follows.
type RegSend struct {
	From etf.Pid
	To   etf.Atom
}

// GroupLeader is GROUP_LEADER {7, FromPid, ToPid}.
type GroupLeader struct{ From, To etf.Pid }

// Exit2 is EXIT2 {8, FromPid, ToPid, Reason}: exit/2 sent to a process.
type Exit2 struct {
	From, To etf.Pid
	Reason   etf.Term
}

// SendTT is SEND_TT {12, Unused, ToPid, TraceToken}; the message follows.
type SendTT struct {
	To    etf.Pid
	Token etf.Term
}

// ExitTT is EXIT_TT {13, FromPid, ToPid, TraceToken, Reason}.
type ExitTT struct {
	From, To      etf.Pid
	Token, Reason etf.Term
}

// RegSendTT is REG_SEND_TT {16, FromPid, Unused, ToName, TraceToken}; the message follows.
type RegSendTT struct {
	From  etf.Pid
	To    etf.Atom
	Token etf.Term
}

// Exit2TT is EXIT2_TT {18, FromPid, ToPid, TraceToken, Reason}.
type Exit2TT struct {
	From, To      etf.Pid
	Token, Reason etf.Term
}

// MonitorP is MONITOR_P {19, FromPid, ToProc, Ref}; ToProc is a pid or a registered name (an atom).
type MonitorP struct {
	From etf.Pid
	To   etf.Term
	Ref  etf.Ref
}

// DemonitorP is DEMONITOR_P {20, FromPid, ToProc, Ref}.
type DemonitorP struct {
	From etf.Pid
	To   etf.Term
	Ref  etf.Ref
}

// MonitorPExit is MONITOR_P_EXIT {21, FromProc, ToPid, Ref, Reason}: the monitored process ended.
// FromProc is the pid or the name the monitor was set on.
type MonitorPExit struct {
	From   etf.Term
	To     etf.Pid
	Ref    etf.Ref
	Reason etf.Term
}

// SendSender is SEND_SENDER {22, FromPid, ToPid}; the message follows.
type SendSender struct{ From, To etf.Pid }

// SendSenderTT is SEND_SENDER_TT {23, FromPid, ToPid, TraceToken}; the message follows.
type SendSenderTT struct {
	From, To etf.Pid
	Token    etf.Term
}

// PayloadExit is PAYLOAD_EXIT {24, FromPid, ToPid}; the reason follows as the payload.
type PayloadExit struct{ From, To etf.Pid }

// PayloadExitTT is PAYLOAD_EXIT_TT {25, FromPid, ToPid, TraceToken}; the reason follows.
type PayloadExitTT struct {
	From, To etf.Pid
	Token    etf.Term
}

// PayloadExit2 is PAYLOAD_EXIT2 {26, FromPid, ToPid}; the reason follows.
type PayloadExit2 struct{ From, To etf.Pid }

// PayloadExit2TT is PAYLOAD_EXIT2_TT {27, FromPid, ToPid, TraceToken}; the reason follows.
type PayloadExit2TT struct {
	From, To etf.Pid
	Token    etf.Term
}

// PayloadMonitorPExit is PAYLOAD_MONITOR_P_EXIT {28, FromProc, ToPid, Ref}; the reason follows.
type PayloadMonitorPExit struct {
	From etf.Term
	To   etf.Pid
	Ref  etf.Ref
}

// SpawnRequest is SPAWN_REQUEST {29, ReqId, From, GroupLeader, {M, F, Arity}, OptList}; the argument
// list follows as the payload. Opts holds the options as sent (atoms such as monitor and link, or
// tuples such as {reply, error_only}).
type SpawnRequest struct {
	ReqID       etf.Ref
	From        etf.Pid
	GroupLeader etf.Pid
	Module      etf.Atom
	Function    etf.Atom
	Arity       int
	Opts        etf.List
}

// SpawnRequestTT is SPAWN_REQUEST_TT: a SpawnRequest with a trace token.
type SpawnRequestTT struct {
	SpawnRequest
	Token etf.Term
}

// SpawnReply is SPAWN_REPLY {31, ReqId, To, Flags, Result}: Result is the new pid, or an error atom.
type SpawnReply struct {
	ReqID  etf.Ref
	To     etf.Pid
	Flags  int64
	Result etf.Term
}

// SpawnReply flags (erl_dist_protocol).
const (
	SpawnReplyLink    = 1 // a link was set up
	SpawnReplyMonitor = 2 // a monitor was set up
)

// SpawnReplyTT is SPAWN_REPLY_TT: a SpawnReply with a trace token.
type SpawnReplyTT struct {
	SpawnReply
	Token etf.Term
}

// AliasSend is ALIAS_SEND {33, FromPid, Alias}; the message follows.
type AliasSend struct {
	From  etf.Pid
	Alias etf.Ref
}

// AliasSendTT is ALIAS_SEND_TT {34, FromPid, Alias, Token}; the message follows.
type AliasSendTT struct {
	From  etf.Pid
	Alias etf.Ref
	Token etf.Term
}

// UnlinkID is UNLINK_ID {35, Id, FromPid, ToPid}.
type UnlinkID struct {
	ID       uint64
	From, To etf.Pid
}

// UnlinkIDAck is UNLINK_ID_ACK {36, Id, FromPid, ToPid}.
type UnlinkIDAck struct {
	ID       uint64
	From, To etf.Pid
}

func (Link) Op() Op                { return OpLink }
func (Send) Op() Op                { return OpSend }
func (Exit) Op() Op                { return OpExit }
func (Unlink) Op() Op              { return OpUnlink }
func (NodeLink) Op() Op            { return OpNodeLink }
func (RegSend) Op() Op             { return OpRegSend }
func (GroupLeader) Op() Op         { return OpGroupLeader }
func (Exit2) Op() Op               { return OpExit2 }
func (SendTT) Op() Op              { return OpSendTT }
func (ExitTT) Op() Op              { return OpExitTT }
func (RegSendTT) Op() Op           { return OpRegSendTT }
func (Exit2TT) Op() Op             { return OpExit2TT }
func (MonitorP) Op() Op            { return OpMonitorP }
func (DemonitorP) Op() Op          { return OpDemonitorP }
func (MonitorPExit) Op() Op        { return OpMonitorPExit }
func (SendSender) Op() Op          { return OpSendSender }
func (SendSenderTT) Op() Op        { return OpSendSenderTT }
func (PayloadExit) Op() Op         { return OpPayloadExit }
func (PayloadExitTT) Op() Op       { return OpPayloadExitTT }
func (PayloadExit2) Op() Op        { return OpPayloadExit2 }
func (PayloadExit2TT) Op() Op      { return OpPayloadExit2TT }
func (PayloadMonitorPExit) Op() Op { return OpPayloadMonitorPExit }
func (SpawnRequest) Op() Op        { return OpSpawnRequest }
func (SpawnRequestTT) Op() Op      { return OpSpawnRequestTT }
func (SpawnReply) Op() Op          { return OpSpawnReply }
func (SpawnReplyTT) Op() Op        { return OpSpawnReplyTT }
func (AliasSend) Op() Op           { return OpAliasSend }
func (AliasSendTT) Op() Op         { return OpAliasSendTT }
func (UnlinkID) Op() Op            { return OpUnlinkID }
func (UnlinkIDAck) Op() Op         { return OpUnlinkIDAck }

func (Link) HasPayload() bool                { return false }
func (Send) HasPayload() bool                { return true }
func (Exit) HasPayload() bool                { return false }
func (Unlink) HasPayload() bool              { return false }
func (NodeLink) HasPayload() bool            { return false }
func (RegSend) HasPayload() bool             { return true }
func (GroupLeader) HasPayload() bool         { return false }
func (Exit2) HasPayload() bool               { return false }
func (SendTT) HasPayload() bool              { return true }
func (ExitTT) HasPayload() bool              { return false }
func (RegSendTT) HasPayload() bool           { return true }
func (Exit2TT) HasPayload() bool             { return false }
func (MonitorP) HasPayload() bool            { return false }
func (DemonitorP) HasPayload() bool          { return false }
func (MonitorPExit) HasPayload() bool        { return false }
func (SendSender) HasPayload() bool          { return true }
func (SendSenderTT) HasPayload() bool        { return true }
func (PayloadExit) HasPayload() bool         { return true }
func (PayloadExitTT) HasPayload() bool       { return true }
func (PayloadExit2) HasPayload() bool        { return true }
func (PayloadExit2TT) HasPayload() bool      { return true }
func (PayloadMonitorPExit) HasPayload() bool { return true }
func (SpawnRequest) HasPayload() bool        { return true }
func (SpawnRequestTT) HasPayload() bool      { return true }
func (SpawnReply) HasPayload() bool          { return false }
func (SpawnReplyTT) HasPayload() bool        { return false }
func (AliasSend) HasPayload() bool           { return true }
func (AliasSendTT) HasPayload() bool         { return true }
func (UnlinkID) HasPayload() bool            { return false }
func (UnlinkIDAck) HasPayload() bool         { return false }

var empty = etf.Atom("")

func op(o Op) int64 { return int64(o) }

func (m Link) Tuple() etf.Tuple        { return etf.Tuple{op(OpLink), m.From, m.To} }
func (m Send) Tuple() etf.Tuple        { return etf.Tuple{op(OpSend), empty, m.To} }
func (m Exit) Tuple() etf.Tuple        { return etf.Tuple{op(OpExit), m.From, m.To, m.Reason} }
func (m Unlink) Tuple() etf.Tuple      { return etf.Tuple{op(OpUnlink), m.From, m.To} }
func (m NodeLink) Tuple() etf.Tuple    { return etf.Tuple{op(OpNodeLink)} }
func (m RegSend) Tuple() etf.Tuple     { return etf.Tuple{op(OpRegSend), m.From, empty, m.To} }
func (m GroupLeader) Tuple() etf.Tuple { return etf.Tuple{op(OpGroupLeader), m.From, m.To} }
func (m Exit2) Tuple() etf.Tuple       { return etf.Tuple{op(OpExit2), m.From, m.To, m.Reason} }
func (m SendTT) Tuple() etf.Tuple      { return etf.Tuple{op(OpSendTT), empty, m.To, m.Token} }
func (m ExitTT) Tuple() etf.Tuple {
	return etf.Tuple{op(OpExitTT), m.From, m.To, m.Token, m.Reason}
}
func (m RegSendTT) Tuple() etf.Tuple {
	return etf.Tuple{op(OpRegSendTT), m.From, empty, m.To, m.Token}
}
func (m Exit2TT) Tuple() etf.Tuple {
	return etf.Tuple{op(OpExit2TT), m.From, m.To, m.Token, m.Reason}
}
func (m MonitorP) Tuple() etf.Tuple   { return etf.Tuple{op(OpMonitorP), m.From, m.To, m.Ref} }
func (m DemonitorP) Tuple() etf.Tuple { return etf.Tuple{op(OpDemonitorP), m.From, m.To, m.Ref} }
func (m MonitorPExit) Tuple() etf.Tuple {
	return etf.Tuple{op(OpMonitorPExit), m.From, m.To, m.Ref, m.Reason}
}
func (m SendSender) Tuple() etf.Tuple { return etf.Tuple{op(OpSendSender), m.From, m.To} }
func (m SendSenderTT) Tuple() etf.Tuple {
	return etf.Tuple{op(OpSendSenderTT), m.From, m.To, m.Token}
}
func (m PayloadExit) Tuple() etf.Tuple { return etf.Tuple{op(OpPayloadExit), m.From, m.To} }
func (m PayloadExitTT) Tuple() etf.Tuple {
	return etf.Tuple{op(OpPayloadExitTT), m.From, m.To, m.Token}
}
func (m PayloadExit2) Tuple() etf.Tuple { return etf.Tuple{op(OpPayloadExit2), m.From, m.To} }
func (m PayloadExit2TT) Tuple() etf.Tuple {
	return etf.Tuple{op(OpPayloadExit2TT), m.From, m.To, m.Token}
}
func (m PayloadMonitorPExit) Tuple() etf.Tuple {
	return etf.Tuple{op(OpPayloadMonitorPExit), m.From, m.To, m.Ref}
}
func (m SpawnRequest) Tuple() etf.Tuple {
	return etf.Tuple{op(OpSpawnRequest), m.ReqID, m.From, m.GroupLeader, m.mfa(), m.opts()}
}
func (m SpawnRequestTT) Tuple() etf.Tuple {
	return etf.Tuple{op(OpSpawnRequestTT), m.ReqID, m.From, m.GroupLeader, m.mfa(), m.opts(), m.Token}
}
func (m SpawnReply) Tuple() etf.Tuple {
	return etf.Tuple{op(OpSpawnReply), m.ReqID, m.To, m.Flags, m.Result}
}
func (m SpawnReplyTT) Tuple() etf.Tuple {
	return etf.Tuple{op(OpSpawnReplyTT), m.ReqID, m.To, m.Flags, m.Result, m.Token}
}
func (m AliasSend) Tuple() etf.Tuple { return etf.Tuple{op(OpAliasSend), m.From, m.Alias} }
func (m AliasSendTT) Tuple() etf.Tuple {
	return etf.Tuple{op(OpAliasSendTT), m.From, m.Alias, m.Token}
}
func (m UnlinkID) Tuple() etf.Tuple { return etf.Tuple{op(OpUnlinkID), m.ID, m.From, m.To} }
func (m UnlinkIDAck) Tuple() etf.Tuple {
	return etf.Tuple{op(OpUnlinkIDAck), m.ID, m.From, m.To}
}

func (m SpawnRequest) mfa() etf.Tuple {
	return etf.Tuple{m.Module, m.Function, int64(m.Arity)}
}

func (m SpawnRequest) opts() etf.List {
	if m.Opts == nil {
		return etf.List{}
	}
	return m.Opts
}
