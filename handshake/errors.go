package handshake

import (
	"errors"
	"fmt"
)

// Step names one step of the handshake, so an error can say where it failed.
type Step string

// The steps, in the order of erl_dist_protocol. Initiator steps first, then
// acceptor steps.
const (
	StepSendName           Step = "send_name"
	StepRecvStatus         Step = "recv_status"
	StepRecvChallenge      Step = "recv_challenge"
	StepSendComplement     Step = "send_complement"
	StepSendChallengeReply Step = "send_challenge_reply"
	StepRecvChallengeAck   Step = "recv_challenge_ack"

	StepRecvName           Step = "recv_name"
	StepSendStatus         Step = "send_status"
	StepSendChallenge      Step = "send_challenge"
	StepRecvComplement     Step = "recv_complement"
	StepRecvChallengeReply Step = "recv_challenge_reply"
	StepSendChallengeAck   Step = "send_challenge_ack"
)

// Sentinel errors. Every error returned by Initiate and Accept is an *Error
// whose Kind is one of these, so callers test with errors.Is.
var (
	// ErrAuth: the cookie was rejected. Seen by an acceptor as a wrong
	// digest; seen by an initiator as a wrong digest in the ack, or as the
	// peer closing the connection right after our challenge reply, which is
	// how a BEAM acceptor answers a wrong cookie.
	ErrAuth = errors.New("cookie rejected")
	// ErrNotAllowed: the peer answered "not_allowed" (it refuses this node,
	// for example for missing flags or name rules), or we refused it.
	ErrNotAllowed = errors.New("not allowed")
	// ErrNameMismatch: the name the peer gave is not the node we dialled.
	ErrNameMismatch = errors.New("peer name mismatch")
	// ErrSimultaneous: the peer answered "nok": both sides are connecting
	// and the peer's attempt wins. The caller should wait for the inbound
	// connection instead.
	ErrSimultaneous = errors.New("simultaneous connect lost (nok)")
	// ErrAlreadyConnected: an "alive" exchange ended the attempt: the
	// existing connection stays.
	ErrAlreadyConnected = errors.New("already connected (alive)")
	// ErrTimeout: a step did not finish before the deadline. The cause
	// also matches os.ErrDeadlineExceeded or the context's error.
	ErrTimeout = errors.New("timeout")
	// ErrClosed: the peer closed or reset the connection.
	ErrClosed = errors.New("connection closed")
	// ErrProtocol: a malformed, oversized or unexpected message.
	ErrProtocol = errors.New("protocol violation")
	// ErrPeerTLS: the peer's first bytes are a TLS record where a plain
	// (2-byte framed) handshake frame belongs: it runs TLS distribution
	// and this side does not. An acceptor answers it with the plain status
	// not_allowed and closes; an initiator sees it as the answer to its
	// name (a BEAM TLS listener replies with a fatal unexpected_message
	// alert).
	ErrPeerTLS = errors.New("peer speaks TLS distribution")
	// ErrConfig: the Config is unusable (bad name, cookie too long).
	ErrConfig = errors.New("bad handshake config")
)

// Error is a failed handshake: which step, which kind, and the cause.
type Error struct {
	Step  Step   // where it failed
	Kind  error  // one of the sentinel errors above
	Peer  string // the peer's node name when known
	Cause error  // the underlying error, or nil
	Info  string // a human-readable detail, or ""
}

func (e *Error) Error() string {
	s := "handshake " + string(e.Step) + ": " + e.Kind.Error()
	if e.Peer != "" {
		s += " (peer " + e.Peer + ")"
	}
	if e.Info != "" {
		s += ": " + e.Info
	}
	if e.Cause != nil {
		s += ": " + e.Cause.Error()
	}
	return s
}

// Unwrap lets errors.Is match both the Kind and the Cause.
func (e *Error) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Cause}
}

func errorf(step Step, kind error, cause error, format string, args ...any) *Error {
	return &Error{Step: step, Kind: kind, Cause: cause, Info: fmt.Sprintf(format, args...)}
}
