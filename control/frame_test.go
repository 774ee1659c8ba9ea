package control_test

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
)

var (
	regSend = control.RegSend{From: pidA, To: "net_kernel"}
	hello   = etf.Tuple{etf.Atom("hello"), []byte("world"), etf.List{int64(1), int64(2), int64(3)}}
)

// passThrough is a 'p' frame body: the terms each with their version byte.
func passThrough(t testing.TB, terms ...etf.Term) []byte {
	t.Helper()
	b := []byte{control.PassThrough}
	for _, x := range terms {
		var err error
		b, err = etf.Append(b, x)
		require.NoError(t, err)
	}
	return b
}

// bare encodes terms without version bytes, as after a distribution header.
func bare(t testing.TB, terms ...etf.Term) []byte {
	t.Helper()
	var b []byte
	for _, x := range terms {
		var err error
		b, err = etf.AppendTerm(b, x)
		require.NoError(t, err)
	}
	return b
}

// header is a "131 68 0" frame body.
func header(t testing.TB, terms ...etf.Term) []byte {
	return append([]byte{etf.VersionTag, control.DistHeader, 0}, bare(t, terms...)...)
}

// frag is a "131 69" (first) or "131 70" fragment frame body.
func frag(first bool, seq, id uint64, data []byte) []byte {
	b := []byte{etf.VersionTag, control.DistFragCont}
	if first {
		b[1] = control.DistFragHeader
	}
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, id)
	if first {
		b = append(b, 0) // no atom cache references
	}
	return append(b, data...)
}

// split cuts b into n pieces of equal size, the last taking the rest.
func split(b []byte, n int) [][]byte {
	size := len(b) / n
	var out [][]byte
	for i := range n - 1 {
		out = append(out, b[i*size:(i+1)*size])
	}
	return append(out, b[(n-1)*size:])
}

// fragments returns the frames of one message in k fragments on sequence seq.
func fragments(seq uint64, whole []byte, k int) [][]byte {
	var out [][]byte
	for i, piece := range split(whole, k) {
		out = append(out, frag(i == 0, seq, uint64(k-i), piece))
	}
	return out
}

// readAll feeds frames to r and returns the completed messages and every error.
type delivered struct {
	m   control.Message
	msg etf.Term
}

func readAll(t *testing.T, r *control.Reader, frames ...[]byte) (got []delivered, errs []error) {
	t.Helper()
	for _, f := range frames {
		m, p, done, err := r.Read(f)
		if err != nil {
			errs = append(errs, err)
		}
		if !done {
			assert.Nil(t, m)
			continue
		}
		require.NoError(t, err)
		d := delivered{m: m}
		if m.HasPayload() {
			var derr error
			d.msg, derr = p.Decode()
			require.NoError(t, derr)
		} else {
			assert.Zero(t, p.Len())
		}
		got = append(got, d)
	}
	return got, errs
}

func TestReaderPassThroughAndHeader(t *testing.T) {
	for _, tc := range []struct {
		what string
		body []byte
		want delivered
	}{
		{"p with payload", passThrough(t, regSend.Tuple(), hello), delivered{regSend, hello}},
		{"p without payload", passThrough(t, control.Link{From: pidA, To: pidB}.Tuple()), delivered{control.Link{From: pidA, To: pidB}, nil}},
		{"header with payload", header(t, regSend.Tuple(), hello), delivered{regSend, hello}},
		{"header without payload", header(t, control.UnlinkID{ID: 9, From: pidA, To: pidB}.Tuple()), delivered{control.UnlinkID{ID: 9, From: pidA, To: pidB}, nil}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			var r control.Reader
			got, errs := readAll(t, &r, tc.body)
			require.Empty(t, errs)
			require.Len(t, got, 1)
			assert.Equal(t, tc.want, got[0])
			n, b := r.Pending()
			assert.Zero(t, n)
			assert.Zero(t, b)
		})
	}
}

func TestReaderPayloadStaysEncoded(t *testing.T) {
	var r control.Reader
	body := passThrough(t, control.Send{To: pidB}.Tuple(), hello)
	m, p, done, err := r.Read(body)
	require.NoError(t, err)
	require.True(t, done)
	assert.Equal(t, control.Send{To: pidB}, m)
	enc, err := etf.Append(nil, hello)
	require.NoError(t, err)
	assert.Equal(t, len(enc), p.Len(), "the payload is the message term's bytes")
	assert.Zero(t, control.Payload{}.Len())
	_, err = control.Payload{}.Decode()
	assert.ErrorIs(t, err, control.ErrFrame)
}

func TestReaderMalformedFrames(t *testing.T) {
	for _, tc := range []struct {
		what string
		body []byte
		want error // a sentinel, or nil for a *control.Error
	}{
		{"empty", []byte{}, control.ErrFrame},
		{"unknown tag", []byte{'x', 1, 2}, control.ErrFrame},
		{"version byte alone", []byte{etf.VersionTag}, control.ErrFrame},
		{"unknown header", []byte{etf.VersionTag, 99, 0}, control.ErrFrame},
		{"header without cache byte", []byte{etf.VersionTag, control.DistHeader}, control.ErrFrame},
		{"atom cache references", []byte{etf.VersionTag, control.DistHeader, 1, 0, 0, 0}, control.ErrFrame},
		{"p then garbage", []byte{'p', 0xde, 0xad}, control.ErrFrame},
		{"p alone", []byte{'p'}, control.ErrFrame},
		{"control not a tuple", passThrough(t, etf.Atom("hi")), nil},
		{"SEND without message", passThrough(t, control.Send{To: pidB}.Tuple()), nil},
		{"header SEND without message", header(t, control.Send{To: pidB}.Tuple()), nil},
		{"short LINK", passThrough(t, etf.Tuple{int64(1), pidA}), nil},
		{"unknown operation", passThrough(t, etf.Tuple{int64(99)}), control.ErrUnknownOp},
		{"short fragment header", []byte{etf.VersionTag, control.DistFragHeader, 0, 0, 0}, control.ErrFrame},
		{"fragment id 0", frag(true, 1, 0, []byte{1}), control.ErrFrame},
		{"first fragment with atom cache refs", append(frag(true, 1, 2, nil)[:18], 3, 0), control.ErrFrame},
	} {
		t.Run(tc.what, func(t *testing.T) {
			var r control.Reader
			m, p, done, err := r.Read(tc.body)
			assert.Nil(t, m)
			assert.Zero(t, p.Len())
			assert.False(t, done)
			if tc.want != nil {
				require.ErrorIs(t, err, tc.want)
			} else {
				var ce *control.Error
				require.ErrorAs(t, err, &ce)
			}
			// One bad frame does not spoil the next.
			got, errs := readAll(t, &r, passThrough(t, regSend.Tuple(), hello))
			assert.Empty(t, errs)
			assert.Equal(t, []delivered{{regSend, hello}}, got)
		})
	}
}

func TestReaderFragmentsInOrder(t *testing.T) {
	whole := bare(t, regSend.Tuple(), hello)
	for _, k := range []int{1, 2, 3, 7} {
		var r control.Reader
		frames := fragments(5, whole, k)
		for i, f := range frames[:k-1] {
			m, _, done, err := r.Read(f)
			require.NoError(t, err, "fragment %d of %d", i, k)
			assert.False(t, done)
			assert.Nil(t, m)
			n, _ := r.Pending()
			assert.Equal(t, 1, n)
		}
		got, errs := readAll(t, &r, frames[k-1])
		require.Empty(t, errs)
		assert.Equal(t, []delivered{{regSend, hello}}, got, "%d fragments", k)
		n, b := r.Pending()
		assert.Zero(t, n)
		assert.Zero(t, b)
	}
}

func TestReaderFragmentsInterleaved(t *testing.T) {
	other := control.Send{To: pidB}
	a := fragments(1, bare(t, regSend.Tuple(), hello), 3)
	b := fragments(2, bare(t, other.Tuple(), etf.Atom("x")), 2)
	var r control.Reader
	got, errs := readAll(t, &r, a[0], b[0], a[1], passThrough(t, control.Link{From: pidA, To: pidB}.Tuple()), b[1], a[2])
	require.Empty(t, errs)
	assert.Equal(t, []delivered{
		{control.Link{From: pidA, To: pidB}, nil},
		{other, etf.Atom("x")},
		{regSend, hello},
	}, got)
	// A finished sequence number may be used again.
	got, errs = readAll(t, &r, fragments(1, bare(t, other.Tuple(), etf.Atom("y")), 2)...)
	require.Empty(t, errs)
	assert.Equal(t, []delivered{{other, etf.Atom("y")}}, got)
}

func TestReaderFragmentErrors(t *testing.T) {
	whole := bare(t, regSend.Tuple(), hello)
	f := fragments(3, whole, 3)
	for _, tc := range []struct {
		what   string
		frames [][]byte
	}{
		{"out of order", [][]byte{f[0], f[2]}},
		{"started twice", [][]byte{f[0], f[0]}},
		{"unknown sequence", [][]byte{f[1]}},
		{"continued after its last fragment", [][]byte{frag(true, 3, 1, whole), f[1]}},
		{"reassembled garbage", [][]byte{frag(true, 4, 2, []byte{0xde}), frag(false, 4, 1, []byte{0xad})}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			var r control.Reader
			var errs []error
			for _, fr := range tc.frames {
				_, _, _, err := r.Read(fr)
				if err != nil {
					errs = append(errs, err)
				}
			}
			require.Len(t, errs, 1, "one error for the bad frame: %v", errs)
			assert.ErrorIs(t, errs[0], control.ErrFrame)
			n, b := r.Pending()
			assert.Zero(t, n, "the broken sequence is forgotten")
			assert.Zero(t, b)
			// The sequence starts over cleanly.
			got, errs := readAll(t, &r, f...)
			require.Empty(t, errs)
			assert.Equal(t, []delivered{{regSend, hello}}, got)
		})
	}
}

func TestReaderTooLarge(t *testing.T) {
	junk := make([]byte, 3000)
	whole := bare(t, regSend.Tuple(), junk)

	t.Run("whole frame", func(t *testing.T) {
		r := control.Reader{MaxMessage: 1024}
		_, _, done, err := r.Read(passThrough(t, regSend.Tuple(), junk))
		assert.False(t, done)
		require.ErrorIs(t, err, control.ErrTooLarge)
	})
	t.Run("refused at the first fragment, the rest skipped", func(t *testing.T) {
		r := control.Reader{MaxMessage: 1024}
		frames := fragments(1, whole, 6) // about 500 bytes each: cannot fit
		_, _, done, err := r.Read(frames[0])
		assert.False(t, done)
		require.ErrorIs(t, err, control.ErrTooLarge)
		_, held := r.Pending()
		assert.Zero(t, held, "nothing is held for a refused message")
		for _, f := range frames[1:] {
			m, _, done, err := r.Read(f)
			assert.NoError(t, err, "refused once, then skipped silently")
			assert.False(t, done)
			assert.Nil(t, m)
		}
		n, _ := r.Pending()
		assert.Zero(t, n, "the last fragment ends the skipped sequence")
		got, errs := readAll(t, &r, fragments(1, bare(t, regSend.Tuple(), hello), 2)...)
		require.Empty(t, errs)
		assert.Equal(t, []delivered{{regSend, hello}}, got)
	})
	t.Run("grows past the limit", func(t *testing.T) {
		r := control.Reader{MaxMessage: 1024}
		small := whole[:100]
		_, _, _, err := r.Read(frag(true, 1, 3, small)) // 3 x 100 would fit
		require.NoError(t, err)
		_, _, _, err = r.Read(frag(false, 1, 2, whole[100:1050])) // but the second is larger
		require.ErrorIs(t, err, control.ErrTooLarge)
		_, held := r.Pending()
		assert.Zero(t, held)
		_, _, done, err := r.Read(frag(false, 1, 1, whole[1050:1150]))
		assert.NoError(t, err)
		assert.False(t, done)
		n, _ := r.Pending()
		assert.Zero(t, n)
	})
	t.Run("at the limit", func(t *testing.T) {
		msg := bare(t, regSend.Tuple(), hello)
		r := control.Reader{MaxMessage: len(msg)}
		got, errs := readAll(t, &r, fragments(1, msg, 3)...)
		require.Empty(t, errs)
		assert.Len(t, got, 1)
	})
}

func TestReaderMaxHeld(t *testing.T) {
	whole := bare(t, regSend.Tuple(), make([]byte, 1100))
	two := func(seq uint64) [][]byte {
		return [][]byte{frag(true, seq, 2, whole[:1000]), frag(false, seq, 1, whole[1000:])}
	}
	// Two messages may be held at once and complete (the one completing counts whole), a third
	// may not start.
	r := control.Reader{MaxMessage: 2000, MaxHeld: 1000 + len(whole)}
	a, b, c := two(1), two(2), two(3)
	for _, f := range [][]byte{a[0], b[0]} {
		_, _, _, err := r.Read(f)
		require.NoError(t, err)
	}
	n, held := r.Pending()
	assert.Equal(t, 2, n)
	assert.Equal(t, 2000, held)
	_, _, _, err := r.Read(c[0])
	require.ErrorIs(t, err, control.ErrTooLarge, "a third partial message exceeds MaxHeld")
	_, held2 := r.Pending()
	assert.Equal(t, held, held2)
	got, errs := readAll(t, &r, a[1], c[1], b[1])
	assert.Empty(t, errs)
	assert.Len(t, got, 2, "the two held messages complete; the refused one is skipped")
	n, held = r.Pending()
	assert.Zero(t, n)
	assert.Zero(t, held)

	t.Run("MaxHeld defaults to MaxMessage", func(t *testing.T) {
		r := control.Reader{MaxMessage: 1000}
		piece := whole[:600]
		_, _, _, err := r.Read(frag(true, 1, 2, piece))
		require.NoError(t, err)
		_, _, _, err = r.Read(frag(true, 2, 2, piece))
		require.ErrorIs(t, err, control.ErrTooLarge)
	})
	t.Run("at most 64 sequences at once", func(t *testing.T) {
		var r control.Reader
		for seq := range uint64(64) {
			_, _, _, err := r.Read(frag(true, seq, 2, []byte{1}))
			require.NoError(t, err)
		}
		_, _, _, err := r.Read(frag(true, 64, 2, []byte{1}))
		require.ErrorIs(t, err, control.ErrTooLarge)
		n, _ := r.Pending()
		assert.Equal(t, 64, n)
	})
}

func TestReaderWant(t *testing.T) {
	big := make([]byte, 4000)
	t.Run("unwanted fragments are skipped as they stream", func(t *testing.T) {
		var asked []control.Message
		r := control.Reader{Want: func(m control.Message) bool { asked = append(asked, m); return false }}
		frames := fragments(1, bare(t, regSend.Tuple(), big), 8)
		for _, f := range frames {
			m, _, done, err := r.Read(f)
			require.NoError(t, err, "an unwanted message is no error")
			assert.False(t, done)
			assert.Nil(t, m)
			_, held := r.Pending()
			assert.Zero(t, held, "nothing of an unwanted message is held")
		}
		assert.Equal(t, []control.Message{regSend}, asked, "asked once, as soon as the control message is in")
		n, _ := r.Pending()
		assert.Zero(t, n)
	})
	t.Run("asked once the control message is complete", func(t *testing.T) {
		var asked int
		r := control.Reader{Want: func(control.Message) bool { asked++; return true }}
		whole := bare(t, regSend.Tuple(), big)
		frames := [][]byte{frag(true, 1, 3, whole[:5]), frag(false, 1, 2, whole[5:2000]), frag(false, 1, 1, whole[2000:])}
		_, _, _, err := r.Read(frames[0])
		require.NoError(t, err)
		assert.Zero(t, asked, "the control term is not complete yet")
		got, errs := readAll(t, &r, frames[1:]...)
		require.Empty(t, errs)
		assert.Equal(t, 1, asked)
		require.Len(t, got, 1)
		assert.Equal(t, regSend, got[0].m)
		assert.Equal(t, big, got[0].msg)
	})
	t.Run("wanted and unwanted interleaved", func(t *testing.T) {
		toNet := control.RegSend{From: pidA, To: "net_kernel"}
		toNobody := control.RegSend{From: pidA, To: "nobody"}
		r := control.Reader{Want: func(m control.Message) bool { return m.(control.RegSend).To != "nobody" }}
		a := fragments(1, bare(t, toNet.Tuple(), hello), 2)
		b := fragments(2, bare(t, toNobody.Tuple(), hello), 2)
		got, errs := readAll(t, &r, a[0], b[0], b[1], a[1])
		require.Empty(t, errs)
		assert.Equal(t, []delivered{{toNet, hello}}, got)
	})
	t.Run("malformed control in a fragment", func(t *testing.T) {
		r := control.Reader{Want: func(control.Message) bool { return true }}
		frames := fragments(1, bare(t, etf.Tuple{int64(1), pidA}, hello), 2)
		_, _, _, err := r.Read(frames[0])
		var ce *control.Error
		require.ErrorAs(t, err, &ce)
		m, _, done, err := r.Read(frames[1])
		assert.NoError(t, err, "reported once")
		assert.False(t, done)
		assert.Nil(t, m)
	})
	t.Run("whole frames are not asked", func(t *testing.T) {
		r := control.Reader{Want: func(control.Message) bool { t.Error("asked for a whole frame"); return false }}
		got, errs := readAll(t, &r, passThrough(t, regSend.Tuple(), hello))
		require.Empty(t, errs)
		assert.Len(t, got, 1)
	})
}

func TestAppendFrame(t *testing.T) {
	for _, headers := range []bool{false, true} {
		for _, tc := range zoo {
			var payload etf.Term
			if tc.m.HasPayload() {
				payload = hello
			}
			prefix := []byte("prefix")
			b, err := control.AppendFrame(append([]byte{}, prefix...), headers, tc.m, payload)
			require.NoError(t, err)
			require.Equal(t, prefix, b[:len(prefix)], "appends")
			fr := b[len(prefix):]
			require.Equal(t, uint32(len(fr)-4), binary.BigEndian.Uint32(fr), "the length prefix")
			body := fr[4:]
			if headers {
				assert.Equal(t, []byte{etf.VersionTag, control.DistHeader, 0}, body[:3])
			} else {
				assert.Equal(t, byte(control.PassThrough), body[0])
			}
			var r control.Reader
			got, errs := readAll(t, &r, body)
			require.Empty(t, errs)
			assert.Equal(t, []delivered{{tc.m, payload}}, got, "%v headers=%v", tc.m.Op(), headers)
		}
	}
	t.Run("payload ignored without HasPayload", func(t *testing.T) {
		m := control.Link{From: pidA, To: pidB}
		a, err := control.AppendFrame(nil, false, m, hello)
		require.NoError(t, err)
		b, err := control.AppendFrame(nil, false, m, nil)
		require.NoError(t, err)
		assert.Equal(t, b, a)
	})
	t.Run("an encoding error leaves dst unchanged", func(t *testing.T) {
		dst := []byte("keep")
		for _, headers := range []bool{false, true} {
			b, err := control.AppendFrame(dst, headers, control.Send{To: pidB}, struct{}{})
			require.Error(t, err)
			assert.Equal(t, []byte("keep"), b)
		}
	})
}
