package control

import (
	"strings"
	"testing"

	"github.com/distribute-go/distribute/etf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFastEncodeSameBytes: for every case the fast encoder takes, it writes exactly what the
// general encoder writes, in both forms; what it must not take, it leaves to the general one.
func TestFastEncodeSameBytes(t *testing.T) {
	taken := 0
	for _, m := range fastCases {
		for _, versioned := range []bool{true, false} {
			want, err := etf.AppendTerm(nil, m.Tuple())
			if versioned {
				want, err = etf.Append(nil, m.Tuple())
			}
			require.NoError(t, err)
			got, ok := appendFast([]byte{}, versioned, m)
			if !ok {
				continue
			}
			taken++
			assert.Equal(t, want, got, "%#v versioned=%v", m, versioned)
		}
	}
	// Every case but Link (not a fast operation) is taken: the non-ASCII atom is valid UTF-8.
	assert.Equal(t, 2*(len(fastCases)-1), taken)

	for _, m := range []Message{
		RegSend{From: fastPid1, To: etf.Atom("\xff\xfe")},                      // not UTF-8
		RegSend{From: fastPid1, To: etf.Atom(strings.Repeat("a", 256))},        // too long for the fast path
		MonitorP{From: fastPid1, To: etf.Tuple{}, Ref: fastRef},                // an unusual ToProc
		AliasSend{From: fastPid1, Alias: etf.Ref{Node: "b@127.0.0.1", Len: 0}}, // a malformed reference
	} {
		dst := []byte{1, 2, 3}
		got, ok := appendFast(dst, true, m)
		assert.False(t, ok, "%#v", m)
		assert.Equal(t, []byte{1, 2, 3}, got)
	}
}

// TestAppendFrameRoundTrip: frames written with the fast encoder read back to the same
// message and payload.
func TestAppendFrameRoundTrip(t *testing.T) {
	for _, m := range fastCases {
		for _, headers := range []bool{false, true} {
			frame, err := AppendFrame([]byte{9}, headers, m, fastMsg)
			require.NoError(t, err)
			assert.Equal(t, byte(9), frame[0])
			var r Reader
			got, p, done, err := r.Read(frame[5:])
			require.NoError(t, err)
			require.True(t, done)
			assert.Equal(t, m, got)
			if m.HasPayload() {
				term, err := p.Decode()
				require.NoError(t, err)
				assert.Equal(t, fastMsg, term)
			}
		}
	}
	_, err := AppendFrame(nil, true, RegSend{From: fastPid1, To: etf.Atom("\xff")}, fastMsg)
	assert.Error(t, err, "the general encoder still refuses an invalid atom")
}

// BenchmarkAppendReply: the frame of net_kernel's answer to a BEAM ping (ALIAS_SEND and
// {[alias|Ref], yes}).
func BenchmarkAppendReply(b *testing.B) {
	m := AliasSend{From: fastPid2, Alias: fastRef}
	reply := etf.Tuple{etf.ImproperList{Elems: []etf.Term{etf.Atom("alias")}, Tail: fastRef}, etf.Atom("yes")}
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for range b.N {
		var err error
		if buf, err = AppendFrame(buf[:0], true, m, reply); err != nil {
			b.Fatal(err)
		}
	}
}
