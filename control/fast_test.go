package control

import (
	"testing"

	"github.com/distribute-go/distribute/etf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	fastPid1 = etf.Pid{Node: "a@127.0.0.1", ID: 91, Serial: 2, Creation: 1700000001}
	fastPid2 = etf.Pid{Node: "b@127.0.0.1", ID: 7, Serial: 0, Creation: 3}
	fastRef  = etf.Ref{Node: "b@127.0.0.1", Creation: 3, Len: 3, ID: [5]uint32{1, 2, 3}}
	fastMsg  = etf.Tuple{etf.Atom("$gen_call"), etf.Tuple{fastPid1, fastRef}, etf.Tuple{etf.Atom("is_auth"), etf.Atom("a@127.0.0.1")}}
)

// fastCases are messages in the fast path's shapes and some in other shapes.
var fastCases = []Message{
	Send{To: fastPid2},
	RegSend{From: fastPid1, To: "net_kernel"},
	SendSender{From: fastPid1, To: fastPid2},
	AliasSend{From: fastPid1, Alias: fastRef},
	MonitorP{From: fastPid1, To: etf.Atom("net_kernel"), Ref: fastRef},
	MonitorP{From: fastPid1, To: fastPid2, Ref: fastRef},
	DemonitorP{From: fastPid1, To: etf.Atom("net_kernel"), Ref: fastRef},
	DemonitorP{From: fastPid1, To: fastPid2, Ref: fastRef},
	RegSend{From: fastPid1, To: "ünïcode"}, // not ASCII: the general path
	Link{From: fastPid1, To: fastPid2},     // not a fast operation
}

// general decodes body with the general path only; ok false: a frame Read does not hand to
// split (a bad tag, a fragment).
func general(body []byte) (m Message, p Payload, ok bool, err error) {
	if body[0] == PassThrough {
		m, p, err = split(body[1:], true)
		return m, p, true, err
	}
	if body[0] != etf.VersionTag || len(body) < 2 || body[1] != DistHeader {
		return nil, Payload{}, false, nil
	}
	rest, err := skipAtomCache(body[2:])
	if err != nil {
		return nil, Payload{}, true, err
	}
	m, p, err = split(rest, false)
	return m, p, true, err
}

// TestFastPathAgrees: for every case, both frame forms, and every truncation and every
// single-byte change of each frame, the Reader (fast path first) and the general path give
// the same message, payload and verdict.
func TestFastPathAgrees(t *testing.T) {
	fastHits := 0
	for _, m := range fastCases {
		for _, headers := range []bool{false, true} {
			frame, err := AppendFrame(nil, headers, m, fastMsg)
			require.NoError(t, err)
			body := frame[4:]

			var r Reader
			got, p, done, err := r.Read(body)
			require.NoError(t, err, "%#v", m)
			require.True(t, done)
			assert.Equal(t, m, got)
			if m.HasPayload() {
				term, err := p.Decode()
				require.NoError(t, err)
				assert.Equal(t, fastMsg, term)
			}
			rest := body[1:]
			if headers {
				rest = body[3:]
			}
			if _, _, ok := r.fast(rest, !headers); ok {
				fastHits++
			}

			variants := [][]byte{}
			for n := 1; n < len(body); n++ {
				variants = append(variants, body[:n])
			}
			for i := range body {
				for _, d := range []byte{1, 0x80, 0xff} {
					v := append([]byte(nil), body...)
					v[i] += d
					variants = append(variants, v)
				}
			}
			for _, v := range variants {
				var r Reader
				fm, fp, fdone, ferr := r.Read(v)
				gm, gp, handled, gerr := general(v)
				if !handled {
					continue
				}
				if gerr != nil {
					// Only the general path may judge: the fast path must not accept it.
					assert.Error(t, ferr, "fast path accepted % x", v)
					assert.False(t, fdone)
					continue
				}
				require.NoError(t, ferr, "% x", v)
				assert.True(t, fdone)
				assert.Equal(t, gm, fm, "% x", v)
				assert.Equal(t, gp, fp, "% x", v)
			}
		}
	}
	assert.Equal(t, 16, fastHits, "the 8 fast-shaped cases in both forms take the fast path")
}

// TestFastPathAtomCache: the cache returns the same atoms, and stops growing at its bound.
func TestFastPathAtomCache(t *testing.T) {
	var r Reader
	for i := range maxCachedAtoms + 10 {
		name := etf.Atom("p" + itoa(i))
		frame, err := AppendFrame(nil, true, RegSend{From: fastPid1, To: name}, etf.Atom("x"))
		require.NoError(t, err)
		m, _, _, err := r.Read(frame[4:])
		require.NoError(t, err)
		assert.Equal(t, RegSend{From: fastPid1, To: name}, m)
	}
	assert.Len(t, r.atoms, maxCachedAtoms)
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

// BenchmarkReadPingFrames: the three frames a BEAM net_adm:ping sends, read with a Reader.
func BenchmarkReadPingFrames(b *testing.B) {
	var frames [][]byte
	for _, m := range []Message{
		MonitorP{From: fastPid1, To: etf.Atom("net_kernel"), Ref: fastRef},
		RegSend{From: fastPid1, To: "net_kernel"},
		DemonitorP{From: fastPid1, To: etf.Atom("net_kernel"), Ref: fastRef},
	} {
		f, err := AppendFrame(nil, true, m, fastMsg)
		require.NoError(b, err)
		frames = append(frames, f[4:])
	}
	var r Reader
	b.ReportAllocs()
	for range b.N {
		for _, f := range frames {
			if _, _, _, err := r.Read(f); err != nil {
				b.Fatal(err)
			}
		}
	}
}
