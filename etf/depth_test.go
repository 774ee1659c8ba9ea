package etf_test

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
)

func nested(open []byte, close []byte, depth int, leaf []byte) []byte {
	b := make([]byte, 0, 1+depth*(len(open)+len(close))+len(leaf))
	b = append(b, 131)
	for range depth {
		b = append(b, open...)
	}
	b = append(b, leaf...)
	for range depth {
		b = append(b, close...)
	}
	return b
}

// depthShapes are containers nested through their only (or last) child.
var depthShapes = map[string][2][]byte{
	"tuple":      {{104, 1}, nil},
	"list":       {{108, 0, 0, 0, 1}, {106}},
	"map value":  {{116, 0, 0, 0, 1, 97, 0}, nil},
	"map key":    {{116, 0, 0, 0, 1}, {97, 0}},
	"tuple last": {{104, 2, 97, 0}, nil},
}

// TestDeepTermsRoundTrip: BEAM's binary_to_term has no depth limit, so neither do we: 2,000 and
// 1,000,000 nested containers decode, and encode back to the same bytes, without recursion.
func TestDeepTermsRoundTrip(t *testing.T) {
	for _, depth := range []int{2000, 1_000_000} {
		for name, s := range depthShapes {
			if depth > 2000 && name != "tuple" && name != "list" && name != "map value" {
				continue // the million-deep runs are slow under -race; three shapes cover the stack
			}
			t.Run(name, func(t *testing.T) {
				in := nested(s[0], s[1], depth, []byte{119, 1, 'x'})
				term, n, err := etf.Decode(in)
				require.NoError(t, err)
				require.Equal(t, len(in), n)
				out, err := etf.Append(nil, term)
				require.NoError(t, err)
				assert.True(t, bytes.Equal(in, out), "depth %d re-encodes to different bytes", depth)
			})
		}
	}
}

// TestDeepImproperTail: an improper list whose tail is a tuple holding the next such list nests.
func TestDeepImproperTail(t *testing.T) {
	in := nested([]byte{108, 0, 0, 0, 1, 97, 7, 104, 1}, nil, 100_000, []byte{97, 1})
	term, n, err := etf.Decode(in)
	require.NoError(t, err)
	require.Equal(t, len(in), n)
	out, err := etf.Append(nil, term)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(in, out))
}

// TestDeepTermBuiltInGo: a deep term built in Go (not decoded) encodes too, and decodes to itself.
func TestDeepTermBuiltInGo(t *testing.T) {
	var deep etf.Term = int64(1)
	for i := range 1_000_000 {
		switch i % 3 {
		case 0:
			deep = etf.List{deep}
		case 1:
			deep = etf.Tuple{etf.Atom("a"), deep}
		default:
			deep = etf.Map{{Key: int64(i), Value: deep}}
		}
	}
	b, err := etf.Append(nil, deep)
	require.NoError(t, err)
	back, _, err := etf.Decode(b)
	require.NoError(t, err)
	b2, err := etf.Append(nil, back)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(b, b2))
}

func TestDecodeMaxDepthOption(t *testing.T) {
	for name, s := range depthShapes {
		for _, limit := range []int{1, 50, 64, 65, 100, 1000} { // below and above the recursion cut-over
			t.Run(fmt.Sprintf("%s/%d", name, limit), func(t *testing.T) {
				opts := etf.DecodeOptions{MaxDepth: limit}
				ok := nested(s[0], s[1], limit, []byte{97, 1})
				_, n, err := opts.Decode(ok)
				require.NoError(t, err)
				assert.Equal(t, len(ok), n)
				_, _, err = opts.Decode(nested(s[0], s[1], limit+1, []byte{97, 1}))
				assert.ErrorIs(t, err, etf.ErrTooDeep)
				_, _, err = opts.DecodeTerm(nested(s[0], s[1], limit+1, []byte{97, 1})[1:])
				assert.ErrorIs(t, err, etf.ErrTooDeep)
				_, _, err = opts.Decode(nested(s[0], s[1], limit, []byte{104, 0}))
				assert.ErrorIs(t, err, etf.ErrTooDeep, "an empty tuple is a level too")
			})
		}
	}
}

// TestEncodeCycle: a term that contains itself (only possible when built by hand) fails instead of
// growing the buffer forever.
func TestEncodeCycle(t *testing.T) {
	cyclic := etf.Tuple{nil}
	cyclic[0] = cyclic
	out, err := etf.Append([]byte("keep"), cyclic)
	require.ErrorIs(t, err, etf.ErrInvalid)
	assert.Equal(t, []byte("keep"), out)

	m := etf.Map{{Key: 1, Value: nil}}
	m[0].Value = etf.List{etf.Tuple{m}}
	_, err = etf.Append(nil, m)
	require.ErrorIs(t, err, etf.ErrInvalid)

	// Sharing is not a cycle: the same tuple twice, and a slice of a tuple inside it.
	shared := etf.Tuple{int64(1), int64(2)}
	var deep etf.Term = etf.Tuple{shared, shared}
	for range 3000 {
		deep = etf.Tuple{shared, deep, shared}
	}
	_, err = etf.Append(nil, deep)
	require.NoError(t, err)
	self := etf.Tuple{int64(1), nil}
	self[1] = self[:1]
	_, err = etf.Append(nil, self)
	require.NoError(t, err)
}

// TestHostileNestingBounded: length prefixes inside nested containers cannot add up to more slots than
// the input has bytes (each tuple below claims almost all the bytes that follow it).
func TestHostileNestingBounded(t *testing.T) {
	const size = 1 << 16
	var in []byte
	in = append(in, 131)
	for len(in) < size-5 {
		rem := uint32(size - len(in) - 5)
		in = append(in, 105, byte(rem>>24), byte(rem>>16), byte(rem>>8), byte(rem))
	}
	for len(in) < size {
		in = append(in, 106)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := etf.Decode(in)
	runtime.ReadMemStats(&after)
	require.ErrorIs(t, err, etf.ErrTruncated)
	// The old per-container check allowed ~size²/10 slots here (gigabytes); the sum is now bounded.
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64*size), "bytes allocated")

	allocs := testing.AllocsPerRun(10, func() {
		_, _, _ = etf.Decode(in)
	})
	assert.Less(t, allocs, 10.0)
}

// TestDeepDecodeMemory: a million nested one-element tuples cost memory in proportion to the input.
func TestDeepDecodeMemory(t *testing.T) {
	in := nested([]byte{104, 1}, nil, 1_000_000, []byte{97, 1})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, _, err := etf.Decode(in)
	runtime.ReadMemStats(&after)
	require.NoError(t, err)
	// A 2 MB input: a one-element tuple is 16 bytes of slice, boxed (48 bytes), plus a stack frame.
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(80*len(in)))
}
