// Package handshake carries out the Erlang distribution handshake
// (erl_dist_protocol, "Distribution Handshake") over a net.Conn: the
// initiator side (Initiate) and the acceptor side (Accept), as explicit
// steps, each under a deadline and with a size limit on every frame.
//
// The initiator sends the version 6 name message ('N'). The acceptor takes
// version 6 and the older version 5 form ('n', followed by the complement
// 'c' when both sides know HANDSHAKE_23). Authentication is the MD5
// challenge/response over the shared cookie; challenges come from
// crypto/rand and digests are compared in constant time. The package knows
// nothing about node state: the acceptor asks a Decide callback which
// status to answer (ok, ok_simultaneous, nok, alive, not_allowed).
package handshake

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds a whole handshake when Config.Timeout is zero; it is
// OTP's default net_setuptime.
const DefaultTimeout = 7 * time.Second

// MaxFrame is the largest handshake frame accepted (a name message carries
// at most a 255-character node name, at most 1020 bytes of UTF-8).
const MaxFrame = 2048

// MaxCookie is the longest cookie accepted, in bytes.
const MaxCookie = 255

// Config is one side's view of the handshake.
type Config struct {
	Name     string        // this node's full name, alive@host
	Cookie   string        // shared secret; never logged or printed
	Flags    Flags         // advertised flags; 0 means DefaultFlags
	Required Flags         // flags demanded of the peer; 0 means RequiredFlags
	Creation uint32        // this node's creation (from EPMD), never 0
	Timeout  time.Duration // bound on the whole handshake; 0 means DefaultTimeout
	Rand     io.Reader     // challenge source; nil means crypto/rand
	// FrameSize is the length prefix of each handshake frame in bytes: 2
	// (0 means 2) on plain TCP, 4 inside TLS, where inet_tls_dist runs the
	// handshake on a {packet,4} socket.
	FrameSize int
	// StillWanted, if set, answers the acceptor's "alive" status during
	// Initiate: true goes on (the peer drops its old connection), false
	// ends the attempt with ErrAlreadyConnected. nil means always true.
	// A node answers whether this attempt is still its pending one.
	StillWanted func(peer string) bool
}

// Status is the acceptor's answer to a name message.
type Status string

// Statuses an acceptor may answer; "named:" is sent by Accept itself when
// the initiator asked for a dynamic name.
const (
	StatusOK             Status = "ok"
	StatusOKSimultaneous Status = "ok_simultaneous"
	StatusNok            Status = "nok"
	StatusNotAllowed     Status = "not_allowed"
	StatusAlive          Status = "alive"
)

// Peer is what the other side said about itself.
type Peer struct {
	Name     string // full node name
	Flags    Flags  // its advertised flags, digest bit expanded
	Creation uint32 // 0 when it used the version 5 form without complement
	Version  int    // 5 or 6: the form of its name message (acceptor) or challenge (initiator)
}

// Result is a completed handshake.
type Result struct {
	Peer     Peer
	Flags    Flags  // negotiated: ours AND the peer's
	Name     string // this node's name; differs from Config.Name only after "named:"
	Creation uint32 // this node's creation; differs from Config.Creation only after "named:"
}

// Decide is the acceptor's callback: given the peer's name message it
// returns the status to answer. When it returns StatusAlive the initiator
// is asked whether to go on; Accept returns ErrAlreadyConnected if it says
// no, and goes on (the caller then replaces the old connection) if yes.
type Decide func(Peer) Status

type state struct {
	conn    net.Conn
	ctx     context.Context
	cfg     *Config
	flags   Flags
	step    Step
	peer    string
	hdr     [4]byte
	hlen    int  // frame length prefix: 2 or 4
	first   bool // no frame read yet
	buf     [MaxFrame]byte
	outbuf  []byte
	stopCtx func() bool
}

func (c *Config) validate(step Step) error {
	if c.FrameSize != 0 && c.FrameSize != 2 && c.FrameSize != 4 {
		return errorf(step, ErrConfig, nil, "frame size %d: must be 2 or 4", c.FrameSize)
	}
	if len(c.Cookie) > MaxCookie {
		return errorf(step, ErrConfig, nil, "cookie longer than %d bytes", MaxCookie)
	}
	if err := ValidateNodeName(c.Name); err != nil && c.Flags&FlagNameMe == 0 {
		return errorf(step, ErrConfig, nil, "own name: %v", err)
	}
	return nil
}

// ValidateNodeName checks the shape every node name must have: alive@host,
// both parts non-empty, at most 255 characters in all, valid UTF-8 with no
// control characters.
func ValidateNodeName(name string) error {
	at := strings.IndexByte(name, '@')
	switch {
	case at < 0:
		return errors.New("node name " + strconv.Quote(name) + " has no '@'")
	case at == 0:
		return errors.New("node name " + strconv.Quote(name) + " has an empty alive part")
	case at == len(name)-1:
		return errors.New("node name " + strconv.Quote(name) + " has an empty host part")
	}
	n := 0
	for _, r := range name {
		if r == 0xFFFD || r < 0x20 || r == 0x7f {
			return errors.New("node name " + strconv.Quote(name) + " has an invalid character")
		}
		n++
	}
	if n > 255 {
		return errors.New("node name is longer than 255 characters")
	}
	return nil
}

func newState(ctx context.Context, conn net.Conn, cfg *Config) *state {
	s := &state{conn: conn, ctx: ctx, cfg: cfg, hlen: 2, first: true}
	if cfg.FrameSize == 4 {
		s.hlen = 4
	}
	s.flags = cfg.Flags
	if s.flags == 0 {
		s.flags = DefaultFlags
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	dl := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	_ = conn.SetDeadline(dl)
	s.stopCtx = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return s
}

// finish clears the deadline if the handshake succeeded and the context did
// not fire meanwhile.
func (s *state) finish(err error) error {
	if !s.stopCtx() && err == nil {
		// The context fired: the conn's deadline is in the past now.
		return s.fail(s.ctx.Err())
	}
	if err == nil {
		if e := s.conn.SetDeadline(time.Time{}); e != nil {
			return s.fail(e)
		}
	}
	return err
}

func (s *state) required() Flags {
	if s.cfg.Required == 0 {
		return RequiredFlags
	}
	return s.cfg.Required
}

// fail turns an I/O error into an *Error of the right kind for this step.
func (s *state) fail(err error) error {
	var he *Error
	if errors.As(err, &he) {
		return err
	}
	// Anything else (EOF, reset, broken pipe, closed) means the peer
	// or the caller closed the connection.
	kind := ErrClosed
	if ctxErr := s.ctx.Err(); ctxErr != nil {
		kind, err = ErrTimeout, ctxErr
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		kind = ErrTimeout
	}
	return &Error{Step: s.step, Kind: kind, Peer: s.peer, Cause: err}
}

func (s *state) protocol(format string, args ...any) error {
	e := errorf(s.step, ErrProtocol, nil, format, args...)
	e.Peer = s.peer
	return e
}

// IsTLSRecord reports whether b, the first bytes a peer sent, start a TLS
// record (change_cipher_spec, alert, handshake or application_data, major
// version 3): what a TLS distribution node sends where a plain handshake
// frame is expected. A plain frame cannot start so: its 2-byte length would
// be 5120 or more, beyond MaxFrame.
func IsTLSRecord(b []byte) bool {
	return len(b) >= 2 && b[0] >= 0x14 && b[0] <= 0x17 && b[1] == 0x03
}

func (s *state) readFrame() ([]byte, error) {
	if _, err := io.ReadFull(s.conn, s.hdr[:s.hlen]); err != nil {
		return nil, s.fail(err)
	}
	if s.first && s.hlen == 2 && IsTLSRecord(s.hdr[:2]) {
		info := "the peer answered with a TLS record: it runs TLS distribution (-proto_dist inet_tls) and this node plain"
		if s.step == StepRecvName {
			info = "TLS record on a plain distribution listener: the peer runs TLS distribution (-proto_dist inet_tls) and this node plain"
		}
		return nil, &Error{Step: s.step, Kind: ErrPeerTLS, Peer: s.peer, Info: info}
	}
	s.first = false
	var n int
	if s.hlen == 4 {
		n = int(min(binary.BigEndian.Uint32(s.hdr[:4]), MaxFrame+1))
	} else {
		n = int(binary.BigEndian.Uint16(s.hdr[:2]))
	}
	if n == 0 {
		return nil, s.protocol("empty frame")
	}
	if n > MaxFrame {
		return nil, s.protocol("frame of %d bytes exceeds the %d-byte limit", n, MaxFrame)
	}
	if _, err := io.ReadFull(s.conn, s.buf[:n]); err != nil {
		return nil, s.fail(err)
	}
	return s.buf[:n], nil
}

// writeFrame sends s.outbuf as one frame; s.outbuf[:s.hlen] is reserved
// for the length.
func (s *state) writeFrame() error {
	if s.hlen == 4 {
		binary.BigEndian.PutUint32(s.outbuf[:4], uint32(len(s.outbuf)-4))
	} else {
		binary.BigEndian.PutUint16(s.outbuf[:2], uint16(len(s.outbuf)-2))
	}
	if _, err := s.conn.Write(s.outbuf); err != nil {
		return s.fail(err)
	}
	return nil
}

func (s *state) begin(tag byte) {
	s.outbuf = append(s.outbuf[:0], 0, 0, 0, 0)[:s.hlen]
	s.outbuf = append(s.outbuf, tag)
}

func (s *state) challenge() (uint32, error) {
	r := s.cfg.Rand
	if r == nil {
		r = rand.Reader
	}
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, errorf(s.step, ErrConfig, err, "no random challenge")
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

// Digest is MD5(cookie ++ decimal ASCII of the unsigned 32-bit challenge).
func Digest(cookie string, challenge uint32) [16]byte {
	h := md5.New()
	_, _ = io.WriteString(h, cookie)
	var num [10]byte
	_, _ = h.Write(strconv.AppendUint(num[:0], uint64(challenge), 10))
	var d [16]byte
	h.Sum(d[:0])
	return d
}

func (s *state) sendStatus(st string) error {
	s.begin('s')
	s.outbuf = append(s.outbuf, st...)
	return s.writeFrame()
}

// Initiate runs the initiator's side of the handshake on conn, dialled to
// the node peer. On error the caller closes conn.
func Initiate(ctx context.Context, conn net.Conn, cfg *Config, peer string) (res *Result, err error) {
	s := newState(ctx, conn, cfg)
	s.peer = peer
	defer func() { err = s.finish(err); res = nilIfErr(res, err) }()
	s.step = StepSendName
	if err := cfg.validate(s.step); err != nil {
		return nil, err
	}
	res = &Result{Name: cfg.Name, Creation: cfg.Creation}

	s.begin('N')
	s.outbuf = binary.BigEndian.AppendUint64(s.outbuf, uint64(s.flags))
	s.outbuf = binary.BigEndian.AppendUint32(s.outbuf, cfg.Creation)
	s.outbuf = binary.BigEndian.AppendUint16(s.outbuf, uint16(len(cfg.Name)))
	s.outbuf = append(s.outbuf, cfg.Name...)
	if err := s.writeFrame(); err != nil {
		return nil, err
	}

	s.step = StepRecvStatus
	f, err := s.readFrame()
	if err != nil {
		return nil, err
	}
	if f[0] != 's' {
		return nil, s.protocol("expected status 's', got tag %d", f[0])
	}
	st := string(f[1:])
	switch {
	case s.flags&FlagNameMe != 0 && (st == string(StatusOK) || st == string(StatusOKSimultaneous) || st == string(StatusAlive)):
		// We have no name of our own to go on with.
		return nil, s.protocol("asked for a dynamic name (NAME_ME) but got status %q", st)
	case st == string(StatusOK), st == string(StatusOKSimultaneous):
	case st == string(StatusNok):
		return nil, &Error{Step: s.step, Kind: ErrSimultaneous, Peer: peer}
	case st == string(StatusNotAllowed):
		return nil, &Error{Step: s.step, Kind: ErrNotAllowed, Peer: peer, Info: "the peer refused this node"}
	case st == string(StatusAlive):
		// The peer believes a connection from us is up. We are dialling,
		// so ours is gone: tell it to replace it, unless the caller no
		// longer wants this attempt.
		if cfg.StillWanted != nil && !cfg.StillWanted(peer) {
			_ = s.sendStatus("false")
			return nil, &Error{Step: s.step, Kind: ErrAlreadyConnected, Peer: peer, Info: "answered alive with false"}
		}
		if err := s.sendStatus("true"); err != nil {
			return nil, err
		}
	case strings.HasPrefix(st, "named:"):
		if s.flags&FlagNameMe == 0 {
			return nil, s.protocol("status named: without a NAME_ME request")
		}
		b := f[1+len("named:"):]
		if len(b) < 2 || len(b) < 2+int(binary.BigEndian.Uint16(b))+4 {
			return nil, s.protocol("short named: status")
		}
		n := int(binary.BigEndian.Uint16(b))
		res.Name = string(b[2 : 2+n])
		if err := ValidateNodeName(res.Name); err != nil {
			return nil, s.protocol("named: %v", err)
		}
		// The acceptor also assigns our creation.
		res.Creation = binary.BigEndian.Uint32(b[2+n:])
	default:
		return nil, s.protocol("unknown status %q", truncate(st))
	}

	s.step = StepRecvChallenge
	if f, err = s.readFrame(); err != nil {
		return nil, err
	}
	var peerChallenge uint32
	var name string
	switch f[0] {
	case 'N':
		if len(f) < 1+8+4+4+2 {
			return nil, s.protocol("short challenge")
		}
		res.Peer.Flags = Flags(binary.BigEndian.Uint64(f[1:9])).expand()
		peerChallenge = binary.BigEndian.Uint32(f[9:13])
		res.Peer.Creation = binary.BigEndian.Uint32(f[13:17])
		n := int(binary.BigEndian.Uint16(f[17:19]))
		if len(f) < 19+n {
			return nil, s.protocol("short challenge name")
		}
		name = string(f[19 : 19+n])
		res.Peer.Version = 6
	case 'n':
		if len(f) < 1+2+4+4 {
			return nil, s.protocol("short challenge")
		}
		res.Peer.Flags = Flags(binary.BigEndian.Uint32(f[3:7])).expand()
		peerChallenge = binary.BigEndian.Uint32(f[7:11])
		name = string(f[11:])
		res.Peer.Version = 5
	default:
		return nil, s.protocol("expected challenge 'N', got tag %d", f[0])
	}
	if name != peer {
		return nil, &Error{Step: s.step, Kind: ErrNameMismatch, Peer: peer,
			Info: "the peer calls itself " + strconv.Quote(truncate(name))}
	}
	res.Peer.Name = name
	if missing := s.required() &^ res.Peer.Flags; missing != 0 {
		return nil, &Error{Step: s.step, Kind: ErrNotAllowed, Peer: peer,
			Info: "the peer lacks required flags " + missing.String()}
	}
	res.Flags = s.flags & res.Peer.Flags

	s.step = StepSendChallengeReply
	mine, err := s.challenge()
	if err != nil {
		return nil, err
	}
	d := Digest(cfg.Cookie, peerChallenge)
	s.begin('r')
	s.outbuf = binary.BigEndian.AppendUint32(s.outbuf, mine)
	s.outbuf = append(s.outbuf, d[:]...)
	if err := s.writeFrame(); err != nil {
		return nil, err
	}

	s.step = StepRecvChallengeAck
	f, err = s.readFrame()
	if err != nil {
		if errors.Is(err, ErrClosed) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
			// A BEAM acceptor closes without a word on a wrong digest,
			// after reading our reply. (A frame cut short is a truncated
			// frame, and a reset means the peer did not read our reply:
			// neither is a verdict on the cookie.)
			return nil, &Error{Step: s.step, Kind: ErrAuth, Peer: peer, Cause: err.(*Error).Cause,
				Info: "the peer closed the connection after our challenge reply (cookie mismatch)"}
		}
		return nil, err
	}
	if f[0] != 'a' || len(f) != 17 {
		return nil, s.protocol("expected challenge ack 'a' of 17 bytes, got tag %d, %d bytes", f[0], len(f))
	}
	want := Digest(cfg.Cookie, mine)
	if subtle.ConstantTimeCompare(want[:], f[1:17]) != 1 {
		return nil, &Error{Step: s.step, Kind: ErrAuth, Peer: peer, Info: "the peer's digest does not match our cookie"}
	}
	return res, nil
}

// Accept runs the acceptor's side of the handshake on an accepted conn.
// decide chooses the status; nil means always StatusOK. On error the caller
// closes conn.
func Accept(ctx context.Context, conn net.Conn, cfg *Config, decide Decide) (res *Result, err error) {
	s := newState(ctx, conn, cfg)
	defer func() { err = s.finish(err); res = nilIfErr(res, err) }()
	s.step = StepRecvName
	if err := cfg.validate(s.step); err != nil {
		return nil, err
	}
	res = &Result{Name: cfg.Name, Creation: cfg.Creation}

	f, err := s.readFrame()
	if err != nil {
		if errors.Is(err, ErrPeerTLS) {
			// Refuse at once, in the one form a TLS client can tell from
			// silence: a plain frame where it expects a TLS record.
			_ = s.sendStatus(string(StatusNotAllowed))
			// Take the rest of the record already here, so that closing
			// sends FIN, not a reset that could overtake the answer.
			_ = conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			_, _ = conn.Read(s.buf[:])
		}
		return nil, err
	}
	var name string
	switch f[0] {
	case 'N':
		if len(f) < 1+8+4+2 {
			return nil, s.protocol("short name message")
		}
		res.Peer.Flags = Flags(binary.BigEndian.Uint64(f[1:9])).expand()
		res.Peer.Creation = binary.BigEndian.Uint32(f[9:13])
		n := int(binary.BigEndian.Uint16(f[13:15]))
		if len(f) != 15+n {
			return nil, s.protocol("name length %d does not match the frame", n)
		}
		name = string(f[15:])
		res.Peer.Version = 6
	case 'n':
		if len(f) < 1+2+4 {
			return nil, s.protocol("short name message")
		}
		if v := binary.BigEndian.Uint16(f[1:3]); v != 5 {
			return nil, s.protocol("unsupported handshake version %d", v)
		}
		res.Peer.Flags = Flags(binary.BigEndian.Uint32(f[3:7])).expand()
		name = string(f[7:])
		res.Peer.Version = 5
	default:
		return nil, s.protocol("expected name message 'N' or 'n', got tag %d", f[0])
	}

	s.step = StepSendStatus
	named := false
	if res.Peer.Flags&FlagNameMe != 0 && res.Peer.Version == 6 {
		host := strings.TrimPrefix(name, "@")
		if host == "" || strings.ContainsRune(host, '@') {
			return nil, s.protocol("NAME_ME with a bad host %q", truncate(name))
		}
		var b [10]byte
		if _, err := io.ReadFull(randReader(cfg.Rand), b[:]); err != nil {
			return nil, errorf(s.step, ErrConfig, err, "no random name")
		}
		name = "gen" + hex.EncodeToString(b[:6]) + "@" + host
		// The peer's creation is ours to assign too (erl_dist_protocol,
		// "named:"); it has none yet and may well have sent 0.
		res.Peer.Creation = binary.BigEndian.Uint32(b[6:])
		if res.Peer.Creation == 0 {
			res.Peer.Creation = 1
		}
		named = true
	}
	if err := ValidateNodeName(name); err != nil {
		_ = s.sendStatus(string(StatusNotAllowed))
		return nil, s.protocol("%v", err)
	}
	s.peer = name
	res.Peer.Name = name
	if missing := s.required() &^ res.Peer.Flags; missing != 0 {
		_ = s.sendStatus(string(StatusNotAllowed))
		return nil, &Error{Step: s.step, Kind: ErrNotAllowed, Peer: name,
			Info: "the peer lacks required flags " + missing.String()}
	}
	st := StatusOK
	if decide != nil {
		st = decide(res.Peer)
	}
	switch {
	case named && (st == StatusOK || st == StatusOKSimultaneous):
		s.begin('s')
		s.outbuf = append(s.outbuf, "named:"...)
		s.outbuf = binary.BigEndian.AppendUint16(s.outbuf, uint16(len(name)))
		s.outbuf = append(s.outbuf, name...)
		s.outbuf = binary.BigEndian.AppendUint32(s.outbuf, res.Peer.Creation)
		if err := s.writeFrame(); err != nil {
			return nil, err
		}
	case st == StatusOK, st == StatusOKSimultaneous:
		if err := s.sendStatus(string(st)); err != nil {
			return nil, err
		}
	case st == StatusNok:
		_ = s.sendStatus(string(st))
		return nil, &Error{Step: s.step, Kind: ErrSimultaneous, Peer: name, Info: "refused: another connection with this peer is being set up here"}
	case st == StatusNotAllowed:
		_ = s.sendStatus(string(st))
		return nil, &Error{Step: s.step, Kind: ErrNotAllowed, Peer: name, Info: "refused by this node"}
	case st == StatusAlive:
		if err := s.sendStatus(string(st)); err != nil {
			return nil, err
		}
		if f, err = s.readFrame(); err != nil {
			return nil, err
		}
		switch string(f) {
		case "strue":
		case "sfalse":
			return nil, &Error{Step: s.step, Kind: ErrAlreadyConnected, Peer: name}
		default:
			return nil, s.protocol("expected 'true' or 'false' after alive")
		}
	default:
		return nil, s.protocol("bad status %q from Decide", st)
	}

	s.step = StepSendChallenge
	mine, err := s.challenge()
	if err != nil {
		return nil, err
	}
	if res.Peer.Version == 6 || res.Peer.Flags&FlagHandshake23 != 0 {
		s.begin('N')
		s.outbuf = binary.BigEndian.AppendUint64(s.outbuf, uint64(s.flags))
		s.outbuf = binary.BigEndian.AppendUint32(s.outbuf, mine)
		s.outbuf = binary.BigEndian.AppendUint32(s.outbuf, cfg.Creation)
		s.outbuf = binary.BigEndian.AppendUint16(s.outbuf, uint16(len(cfg.Name)))
	} else {
		s.begin('n')
		s.outbuf = binary.BigEndian.AppendUint16(s.outbuf, 5)
		s.outbuf = binary.BigEndian.AppendUint32(s.outbuf, uint32(s.flags))
		s.outbuf = binary.BigEndian.AppendUint32(s.outbuf, mine)
	}
	s.outbuf = append(s.outbuf, cfg.Name...)
	if err := s.writeFrame(); err != nil {
		return nil, err
	}

	if res.Peer.Version == 5 && res.Peer.Flags&FlagHandshake23 != 0 {
		s.step = StepRecvComplement
		if f, err = s.readFrame(); err != nil {
			return nil, err
		}
		if f[0] != 'c' || len(f) != 9 {
			return nil, s.protocol("expected complement 'c' of 9 bytes")
		}
		res.Peer.Flags |= Flags(binary.BigEndian.Uint32(f[1:5])) << 32
		res.Peer.Flags = res.Peer.Flags.expand()
		res.Peer.Creation = binary.BigEndian.Uint32(f[5:9])
	}
	res.Flags = s.flags & res.Peer.Flags

	s.step = StepRecvChallengeReply
	if f, err = s.readFrame(); err != nil {
		return nil, err
	}
	if f[0] != 'r' || len(f) != 21 {
		return nil, s.protocol("expected challenge reply 'r' of 21 bytes")
	}
	want := Digest(cfg.Cookie, mine)
	if subtle.ConstantTimeCompare(want[:], f[5:21]) != 1 {
		// Like BEAM: close without a word.
		return nil, &Error{Step: s.step, Kind: ErrAuth, Peer: name, Info: "the peer's digest does not match our cookie"}
	}
	peerChallenge := binary.BigEndian.Uint32(f[1:5])

	s.step = StepSendChallengeAck
	d := Digest(cfg.Cookie, peerChallenge)
	s.begin('a')
	s.outbuf = append(s.outbuf, d[:]...)
	if err := s.writeFrame(); err != nil {
		return nil, err
	}
	return res, nil
}

func randReader(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}

func nilIfErr(r *Result, err error) *Result {
	if err != nil {
		return nil
	}
	return r
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
