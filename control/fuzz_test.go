package control_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
)

// FuzzDecode: any term decodes to a Message or an *Error, never a panic; a Message re-encodes to
// a tuple that decodes to the same Message (compared by its encoding).
func FuzzDecode(f *testing.F) {
	for _, tc := range zoo {
		b, err := etf.Append(nil, tc.m.Tuple())
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{131, 104, 0})
	f.Add([]byte{131, 104, 1, 97, 99})
	f.Fuzz(func(t *testing.T, b []byte) {
		term, _, err := etf.Decode(b)
		if err != nil {
			return
		}
		m, err := control.Decode(term)
		if err != nil {
			var ce *control.Error
			require.ErrorAs(t, err, &ce)
			require.Nil(t, m)
			return
		}
		enc1, err := etf.Append(nil, m.Tuple())
		require.NoError(t, err, "%#v", m)
		back, _, err := etf.Decode(enc1)
		require.NoError(t, err)
		m2, err := control.Decode(back)
		require.NoError(t, err)
		require.Equal(t, m.Op(), m2.Op())
		enc2, err := etf.Append(nil, m2.Tuple())
		require.NoError(t, err)
		require.Equal(t, enc1, enc2)
	})
}

// fuzzFrames joins frame bodies, each behind a 2-byte length, as FuzzReader's input.
func fuzzFrames(bodies ...[]byte) []byte {
	var b []byte
	for _, x := range bodies {
		b = binary.BigEndian.AppendUint16(b, uint16(len(x)))
		b = append(b, x...)
	}
	return b
}

const (
	fuzzMaxMessage = 600
	fuzzMaxHeld    = 1000
)

// FuzzReader feeds a sequence of frames to one Reader with limits and a Want that refuses some
// messages: no panic, the limits hold, errors carry a known sentinel or an *Error, and a
// delivered message sent again with AppendFrame reads back the same.
func FuzzReader(f *testing.F) {
	msg := bare(f, regSend.Tuple(), hello)
	f.Add(fuzzFrames(passThrough(f, regSend.Tuple(), hello), header(f, control.Link{From: pidA, To: pidB}.Tuple())))
	f.Add(fuzzFrames(fragments(1, msg, 3)...))
	f.Add(fuzzFrames(append(fragments(1, msg, 2), fragments(2, bare(f, control.RegSend{From: pidA, To: "nobody"}.Tuple(), hello), 3)...)...))
	f.Add(fuzzFrames(frag(true, 1, 5, make([]byte, 300)), frag(false, 1, 4, make([]byte, 300))))
	f.Add(fuzzFrames(frag(true, 1, 3, msg[:4]), frag(false, 1, 1, msg[4:])))
	for _, tc := range zoo {
		var payload etf.Term
		if tc.m.HasPayload() {
			payload = hello
		}
		fr, err := control.AppendFrame(nil, true, tc.m, payload)
		require.NoError(f, err)
		f.Add(fuzzFrames(fr[4:]))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := control.Reader{
			MaxMessage: fuzzMaxMessage,
			MaxHeld:    fuzzMaxHeld,
			Want: func(m control.Message) bool {
				rs, ok := m.(control.RegSend)
				return !ok || rs.To != "nobody"
			},
		}
		for len(in) >= 2 {
			size := int(binary.BigEndian.Uint16(in))
			in = in[2:]
			if size > len(in) {
				size = len(in)
			}
			body := append([]byte(nil), in[:size]...)
			in = in[size:]
			m, p, done, err := r.Read(body)
			n, held := r.Pending()
			require.LessOrEqual(t, held, fuzzMaxHeld)
			require.LessOrEqual(t, n, 64)
			if err != nil {
				var ce *control.Error
				require.True(t, errors.Is(err, control.ErrFrame) || errors.Is(err, control.ErrTooLarge) || errors.As(err, &ce), "%v", err)
				require.False(t, done)
				continue
			}
			if !done {
				require.Nil(t, m)
				continue
			}
			require.NotNil(t, m)
			var payload etf.Term
			if m.HasPayload() {
				require.NotZero(t, p.Len())
				if payload, err = p.Decode(); err != nil {
					continue // the payload is the receiver's to decode and refuse
				}
			}
			checkResend(t, m, payload)
		}
	})
}

// checkResend sends m again in both frame forms and reads it back with a fresh Reader.
func checkResend(t *testing.T, m control.Message, payload etf.Term) {
	want, err := etf.Append(nil, m.Tuple())
	require.NoError(t, err)
	for _, headers := range []bool{false, true} {
		fr, err := control.AppendFrame(nil, headers, m, payload)
		require.NoError(t, err)
		var r control.Reader
		m2, p2, done, err := r.Read(fr[4:])
		require.NoError(t, err)
		require.True(t, done)
		got, err := etf.Append(nil, m2.Tuple())
		require.NoError(t, err)
		require.True(t, bytes.Equal(want, got))
		if m.HasPayload() {
			x, err := p2.Decode()
			require.NoError(t, err)
			a, err := etf.Append(nil, payload)
			require.NoError(t, err)
			b, err := etf.Append(nil, x)
			require.NoError(t, err)
			require.Equal(t, a, b)
		}
	}
}
