package node

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Distribution header tags (erl_ext_dist, "Distribution Header"); each
// follows the version byte 131.
const (
	distHeader     = 68 // normal header
	distFragHeader = 69 // first fragment of a fragmented message
	distFragCont   = 70 // next fragment
)

// maxFragSeqs bounds the fragmented messages being reassembled at once on
// one link.
const maxFragSeqs = 64

// fragSeq is one fragmented message being put together.
type fragSeq struct {
	next uint64 // the fragment id expected next (ids count down to 1)
	data []byte
}

// skipAtomCache reads the atom cache part of a header and returns what
// follows it. We never advertise DIST_HDR_ATOM_CACHE, so a well-behaved
// peer sends no cache references; one that does is refused, since its
// terms would refer to atoms we were never told.
func skipAtomCache(b []byte) ([]byte, error) {
	if len(b) < 1 {
		return nil, errors.New("short distribution header")
	}
	if b[0] != 0 {
		return nil, fmt.Errorf("distribution header with %d atom cache references, but the atom cache was not negotiated", b[0])
	}
	return b[1:], nil
}

// reassemble takes a "131 69" or "131 70" frame and returns the whole
// message once its last fragment has arrived (nil before that).
func (l *link) reassemble(b []byte) ([]byte, error) {
	if len(b) < 2+16 {
		return nil, errors.New("short fragment header")
	}
	seq := binary.BigEndian.Uint64(b[2:10])
	id := binary.BigEndian.Uint64(b[10:18])
	body := b[18:]
	if id == 0 {
		return nil, errors.New("fragment id 0")
	}
	if l.frags == nil {
		l.frags = map[uint64]*fragSeq{}
	}
	f := l.frags[seq]
	if b[1] == distFragHeader {
		if f != nil {
			return nil, fmt.Errorf("fragment sequence %d started twice", seq)
		}
		if len(l.frags) >= maxFragSeqs {
			return nil, fmt.Errorf("more than %d fragmented messages at once", maxFragSeqs)
		}
		var err error
		if body, err = skipAtomCache(body); err != nil {
			return nil, err
		}
		f = &fragSeq{next: id}
		l.frags[seq] = f
	} else if f == nil {
		return nil, fmt.Errorf("fragment of unknown sequence %d", seq)
	}
	if id != f.next {
		return nil, fmt.Errorf("fragment %d of sequence %d out of order (want %d)", id, seq, f.next)
	}
	// All partial messages of a link together stay under the message
	// size limit, so a peer cannot hold more than that in our memory.
	if l.fragBytes+len(body) > l.n.opts.MaxMessageSize {
		return nil, fmt.Errorf("fragmented messages exceed the %d-byte limit", l.n.opts.MaxMessageSize)
	}
	// Copy: the frame buffer is reused for the next frame.
	f.data = append(f.data, body...)
	l.fragBytes += len(body)
	f.next--
	if f.next > 0 {
		return nil, nil
	}
	delete(l.frags, seq)
	l.fragBytes -= len(f.data)
	return f.data, nil
}
