package control

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/distribute-go/distribute/etf"
)

// Frame forms (erl_ext_dist "Distribution Header"). After the 4-byte length, a frame body starts
// with 'p' (a pass-through frame: the control term and the message term, each with its own version
// byte 131), or with 131 and a header tag: 68 a normal header, 69 the first fragment of a message,
// 70 a later fragment; the terms after a header have no version byte.
const (
	PassThrough    = 'p'
	DistHeader     = 68
	DistFragHeader = 69
	DistFragCont   = 70
)

// Sentinel errors wrapped by the errors Reader.Read returns. Each concerns one frame (or the
// fragmented message it belongs to); the connection stays usable, since frames carry their own
// length.
var (
	// ErrFrame: a frame whose bytes are not a distribution frame (unknown tag, a fragment out of
	// order, atom cache references that were never negotiated, a term that does not decode).
	ErrFrame = errors.New("malformed distribution frame")
	// ErrTooLarge: a message larger than Reader.MaxMessage, or more partial messages than
	// Reader.MaxHeld allows. Its fragments are discarded as they arrive.
	ErrTooLarge = errors.New("message too large")
)

// Payload is the message term that follows a control message in a frame, still encoded, so a
// message to a process that does not exist is never decoded. It aliases the frame buffer: use it
// only until the Reader's next Read (or until the caller reuses the buffer).
type Payload struct {
	b         []byte
	versioned bool // starts with the version byte 131 ('p' frames)
}

// Len is the size of the encoded payload in bytes (0 when there is none).
func (p Payload) Len() int { return len(p.b) }

// Decode decodes the payload term.
func (p Payload) Decode() (etf.Term, error) {
	if len(p.b) == 0 {
		return nil, fmt.Errorf("%w: missing message term", ErrFrame)
	}
	var t etf.Term
	var err error
	if p.versioned {
		t, _, err = etf.Decode(p.b)
	} else {
		t, _, err = etf.DecodeTerm(p.b)
	}
	return t, err
}

// Reader turns frame bodies into control messages, reassembling fragmented messages. One Reader
// serves one connection and is not safe for concurrent use. The zero value accepts messages of any
// size and wants every message.
type Reader struct {
	// MaxMessage bounds one message (a whole frame, or all fragments of one message together); a
	// larger one is refused with ErrTooLarge and the rest of its fragments are skipped. 0 means no
	// bound.
	MaxMessage int
	// MaxHeld bounds the bytes of all partially received messages together. 0 means MaxMessage
	// (or no bound when that is 0 too).
	MaxHeld int
	// Want, if set, is asked once per fragmented message, as soon as its control message has
	// arrived, whether to keep the message; when it says no, the fragments are skipped as they
	// arrive instead of being held (a message to a process that does not exist).
	Want func(Message) bool

	seqs  map[uint64]*fragSeq
	held  int
	atoms atomCache // the fast path's atoms (fast.go)
}

// maxSeqs bounds the fragmented messages being reassembled at once on one connection.
const maxSeqs = 64

// fragSeq is one fragmented message being put together.
type fragSeq struct {
	next    uint64 // the fragment id expected next (ids count down to 1)
	data    []byte
	skip    bool    // discarded: its remaining fragments are dropped
	skipErr error   // why it was discarded (nil when Want said no)
	ctrl    Message // the control message, once decoded
}

// Read takes one frame body (the bytes after the 4-byte length; not a tick). It returns the
// control message and its payload when the frame completes a message (done is true). done is false
// for a fragment that does not complete its message, and for the fragments of a message that was
// discarded (Want said no: err is nil; too large or malformed: err says why, once per message). An
// error concerns this frame or its message only.
func (r *Reader) Read(body []byte) (m Message, p Payload, done bool, err error) {
	if len(body) == 0 {
		return nil, Payload{}, false, fmt.Errorf("%w: empty frame", ErrFrame)
	}
	if r.MaxMessage > 0 && len(body) > r.MaxMessage {
		return nil, Payload{}, false, fmt.Errorf("%w: frame of %d bytes exceeds the %d-byte limit", ErrTooLarge, len(body), r.MaxMessage)
	}
	if body[0] == PassThrough {
		if m, p, ok := r.fast(body[1:], true); ok {
			return m, p, true, nil
		}
		m, p, err = split(body[1:], true)
		return m, p, err == nil, err
	}
	if body[0] != etf.VersionTag || len(body) < 2 {
		return nil, Payload{}, false, fmt.Errorf("%w: unexpected frame tag %d", ErrFrame, body[0])
	}
	switch body[1] {
	case DistHeader:
		rest, err := skipAtomCache(body[2:])
		if err != nil {
			return nil, Payload{}, false, err
		}
		if m, p, ok := r.fast(rest, false); ok {
			return m, p, true, nil
		}
		m, p, err = split(rest, false)
		return m, p, err == nil, err
	case DistFragHeader, DistFragCont:
		return r.fragment(body)
	}
	return nil, Payload{}, false, fmt.Errorf("%w: unknown distribution header %d", ErrFrame, body[1])
}

// split decodes the control term at the start of b; the payload is what follows it.
func split(b []byte, versioned bool) (Message, Payload, error) {
	var ct etf.Term
	var n int
	var err error
	if versioned {
		ct, n, err = etf.Decode(b)
	} else {
		ct, n, err = etf.DecodeTerm(b)
	}
	if err != nil {
		return nil, Payload{}, fmt.Errorf("%w: control message: %w", ErrFrame, err)
	}
	m, err := Decode(ct)
	if err != nil {
		return nil, Payload{}, err
	}
	p := Payload{b: b[n:], versioned: versioned}
	if m.HasPayload() && len(p.b) == 0 {
		return nil, Payload{}, &Error{Op: m.Op(), Reason: "missing message term"}
	}
	return m, p, nil
}

// skipAtomCache reads the atom cache part of a header and returns what follows it. The atom cache
// is never negotiated by this project, so a well-behaved peer sends no cache references.
func skipAtomCache(b []byte) ([]byte, error) {
	if len(b) < 1 {
		return nil, fmt.Errorf("%w: short distribution header", ErrFrame)
	}
	if b[0] != 0 {
		return nil, fmt.Errorf("%w: distribution header with %d atom cache references, but the atom cache was not negotiated", ErrFrame, b[0])
	}
	return b[1:], nil
}

func (r *Reader) maxHeld() int {
	if r.MaxHeld > 0 {
		return r.MaxHeld
	}
	return r.MaxMessage
}

// fragment handles a "131 69" or "131 70" frame.
func (r *Reader) fragment(b []byte) (Message, Payload, bool, error) {
	if len(b) < 2+16 {
		return nil, Payload{}, false, fmt.Errorf("%w: short fragment header", ErrFrame)
	}
	seq := binary.BigEndian.Uint64(b[2:10])
	id := binary.BigEndian.Uint64(b[10:18])
	body := b[18:]
	if id == 0 {
		return nil, Payload{}, false, fmt.Errorf("%w: fragment id 0", ErrFrame)
	}
	if r.seqs == nil {
		r.seqs = map[uint64]*fragSeq{}
	}
	f := r.seqs[seq]
	if b[1] == DistFragHeader {
		if f != nil {
			// The peer started the sequence again: the old one cannot complete.
			r.drop(seq, f)
			return nil, Payload{}, false, fmt.Errorf("%w: fragment sequence %d started twice", ErrFrame, seq)
		}
		if len(r.seqs) >= maxSeqs {
			return nil, Payload{}, false, fmt.Errorf("%w: more than %d fragmented messages at once", ErrTooLarge, maxSeqs)
		}
		var err error
		if body, err = skipAtomCache(body); err != nil {
			return nil, Payload{}, false, err
		}
		f = &fragSeq{next: id}
		r.seqs[seq] = f
	} else if f == nil {
		return nil, Payload{}, false, fmt.Errorf("%w: fragment of unknown sequence %d", ErrFrame, seq)
	}
	if id != f.next {
		r.drop(seq, f)
		return nil, Payload{}, false, fmt.Errorf("%w: fragment %d of sequence %d out of order (want %d)", ErrFrame, id, seq, f.next)
	}
	f.next--
	// A message whose fragments cannot fit is refused at its first fragment: every fragment but
	// the last is as large as the first.
	if lim := r.MaxMessage; lim > 0 && b[1] == DistFragHeader && id > 1 && (id-1) > uint64(lim/max(len(body), 1)) {
		return r.skip(seq, f, fmt.Errorf("%w: a message of %d fragments of %d bytes exceeds the %d-byte limit", ErrTooLarge, id, len(body), lim))
	}
	if f.skip {
		if f.next == 0 {
			delete(r.seqs, seq)
		}
		return nil, Payload{}, false, nil
	}
	if lim := r.MaxMessage; lim > 0 && len(f.data)+len(body) > lim {
		return r.skip(seq, f, fmt.Errorf("%w: fragmented message exceeds the %d-byte limit", ErrTooLarge, lim))
	}
	if lim := r.maxHeld(); lim > 0 && r.held+len(body) > lim {
		return r.skip(seq, f, fmt.Errorf("%w: partial messages exceed the %d-byte limit", ErrTooLarge, lim))
	}
	// Copy: the frame buffer is reused for the next frame.
	f.data = append(f.data, body...)
	r.held += len(body)
	if f.ctrl == nil && r.Want != nil {
		// Once the control term is complete, ask whether the message is wanted at all.
		if ct, _, err := etf.DecodeTerm(f.data); err == nil {
			m, err := Decode(ct)
			if err != nil {
				return r.skip(seq, f, err)
			}
			f.ctrl = m
			if !r.Want(m) {
				return r.skip(seq, f, nil)
			}
		} else if !errors.Is(err, etf.ErrTruncated) {
			return r.skip(seq, f, fmt.Errorf("%w: control message: %w", ErrFrame, err))
		}
	}
	if f.next > 0 {
		return nil, Payload{}, false, nil
	}
	r.drop(seq, f)
	m, p, err := split(f.data, false)
	return m, p, err == nil, err
}

// skip discards the rest of sequence seq; err (nil when the message is just not wanted) is
// returned once, for the fragment that caused it.
func (r *Reader) skip(seq uint64, f *fragSeq, err error) (Message, Payload, bool, error) {
	r.held -= len(f.data)
	f.data, f.skip, f.skipErr = nil, true, err
	if f.next == 0 {
		delete(r.seqs, seq)
	}
	return nil, Payload{}, false, err
}

// drop forgets sequence seq.
func (r *Reader) drop(seq uint64, f *fragSeq) {
	r.held -= len(f.data)
	delete(r.seqs, seq)
}

// Pending returns how many fragmented messages are being reassembled and the bytes they hold.
func (r *Reader) Pending() (messages, bytes int) { return len(r.seqs), r.held }

// AppendFrame appends one whole frame, its 4-byte length included, carrying m and (when
// m.HasPayload) payload. headers selects the form: a normal distribution header "131 68 0" (no
// atom cache references) followed by the terms without version bytes, as peers that negotiated
// FRAGMENTS expect; otherwise a pass-through 'p' frame. On error dst is returned unchanged.
func AppendFrame(dst []byte, headers bool, m Message, payload etf.Term) ([]byte, error) {
	start := len(dst)
	appendFn := etf.Append
	b := dst
	if headers {
		b = append(b, 0, 0, 0, 0, etf.VersionTag, DistHeader, 0)
		appendFn = etf.AppendTerm
	} else {
		b = append(b, 0, 0, 0, 0, PassThrough)
	}
	var err error
	if fb, ok := appendFast(b, !headers, m); ok {
		b = fb
	} else {
		b, err = appendFn(b, m.Tuple())
	}
	if err == nil && m.HasPayload() {
		b, err = appendFn(b, payload)
	}
	if err != nil {
		return dst[:start], err
	}
	size := len(b) - start - 4
	if uint64(size) > 0xFFFFFFFF {
		return dst[:start], errors.New("control: frame of " + strconv.Itoa(size) + " bytes exceeds 4 GiB")
	}
	binary.BigEndian.PutUint32(b[start:], uint32(size))
	return b, nil
}
