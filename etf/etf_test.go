package etf_test

import (
	"bytes"
	"errors"
	"math"
	"math/big"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
)

var (
	tPid = etf.Pid{Node: "go@host", ID: 1234, Serial: 5, Creation: 0xDEADBEEF}
	tRef = etf.Ref{Node: "go@host", Creation: 0xDEADBEEF, Len: 3, ID: [5]uint32{1, 2, 3}}
)

func TestRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 70000)
	longList := make(etf.List, len(long))
	for i := range longList {
		longList[i] = int64('x')
	}
	big2p70 := bigPow2(70, false)
	tuple256 := make(etf.Tuple, 256)
	for i := range tuple256 {
		tuple256[i] = int64(i)
	}
	cases := []struct {
		name string
		in   etf.Term
		want etf.Term // what Decode gives back; nil means the same as in
	}{
		{"atom", etf.Atom("hello"), nil},
		{"atom empty", etf.Atom(""), nil},
		{"atom unicode", etf.Atom("日本語"), nil},
		{"atom 255 unicode", etf.Atom(strings.Repeat("ü", 255)), nil},
		{"true", true, etf.Atom("true")},
		{"false", false, etf.Atom("false")},
		{"int", 7, int64(7)},
		{"int8", int8(-128), int64(-128)},
		{"int16", int16(-300), int64(-300)},
		{"int32", int32(math.MaxInt32), int64(math.MaxInt32)},
		{"int64 big", int64(math.MinInt64), nil},
		{"int64 just past int32", int64(math.MaxInt32) + 1, nil},
		{"uint", uint(1 << 40), int64(1 << 40)},
		{"uint8", uint8(255), int64(255)},
		{"uint16", uint16(256), int64(256)},
		{"uint32", uint32(math.MaxUint32), int64(math.MaxUint32)},
		{"uint64 max", uint64(math.MaxUint64), new(big.Int).SetUint64(math.MaxUint64)},
		{"uint64 small", uint64(3), int64(3)},
		{"big", big2p70, nil},
		{"big fits", big.NewInt(-99999999999), int64(-99999999999)},
		{"big large", bigPow2(5000, true), nil},
		{"float64", 3.25, nil},
		{"float32", float32(-2.5), -2.5},
		{"pid", tPid, nil},
		{"port", etf.Port{Node: "a@b", ID: 9, Creation: 4}, nil},
		{"port v4", etf.Port{Node: "a@b", ID: math.MaxUint64, Creation: 4}, nil},
		{"ref", tRef, nil},
		{"ref5", etf.Ref{Node: "a@b", Creation: 1, Len: 5, ID: [5]uint32{5, 4, 3, 2, 1}}, nil},
		{"tuple", etf.Tuple{etf.Atom("a"), int64(1), tPid}, nil},
		{"tuple empty", etf.Tuple{}, nil},
		{"tuple large", tuple256, nil},
		{"list", etf.List{int64(1), etf.List{}, etf.Atom("x")}, nil},
		{"list empty", etf.List{}, nil},
		{"list nil", etf.List(nil), etf.List{}},
		{"nil", nil, etf.List{}},
		{"improper", etf.ImproperList{Elems: []etf.Term{int64(1)}, Tail: etf.Atom("t")}, nil},
		{"alias tag", etf.ImproperList{Elems: []etf.Term{etf.Atom("alias")}, Tail: tRef}, nil},
		{"improper nil tail", etf.ImproperList{Elems: []etf.Term{int64(1)}}, etf.List{int64(1)}},
		{"improper no elems", etf.ImproperList{Tail: int64(5)}, int64(5)},
		{"map", etf.Map{{Key: etf.Atom("k"), Value: []byte("v")}, {Key: int64(1), Value: etf.Map{}}}, nil},
		{"map empty", etf.Map{}, nil},
		{"String", etf.String("abc"), nil},
		{"String empty", etf.String(""), etf.List{}},
		{"String long", etf.String(long), longList},
		{"bytes", []byte{0, 1, 255}, nil},
		{"bytes empty", []byte{}, nil},
		{"bytes nil", []byte(nil), []byte{}},
		{"go string", "héllo", []byte("héllo")},
		{"bits", etf.BitBinary{Bytes: []byte{1, 0xE0}, Bits: 3}, nil},
		{"bits padding cleared", etf.BitBinary{Bytes: []byte{0xFF}, Bits: 1}, etf.BitBinary{Bytes: []byte{0x80}, Bits: 1}},
		{"bits 8", etf.BitBinary{Bytes: []byte{7}, Bits: 8}, []byte{7}},
		{"bits empty", etf.BitBinary{}, []byte{}},
		{"export", etf.Export{Module: "m", Function: "f", Arity: 3}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := c.want
			if want == nil {
				want = c.in
			}
			prefix := []byte("prefix")
			b, err := etf.Append(prefix, c.in)
			require.NoError(t, err)
			require.Equal(t, "prefix", string(b[:6]), "Append keeps dst")
			got, n, err := etf.Decode(b[6:])
			require.NoError(t, err)
			assert.Equal(t, len(b)-6, n)
			assert.Equal(t, want, got)

			raw, err := etf.AppendTerm(nil, c.in)
			require.NoError(t, err)
			assert.Equal(t, b[7:], raw, "AppendTerm is Append without the version byte")
			got, n, err = etf.DecodeTerm(append(raw, 0xFF)) // trailing bytes are not consumed
			require.NoError(t, err)
			assert.Equal(t, len(raw), n)
			assert.Equal(t, want, got)
		})
	}
}

func TestFunRoundTrip(t *testing.T) {
	canon := vectorByName(t, "fun_local")
	got, n, err := etf.Decode(canon)
	require.NoError(t, err)
	assert.Equal(t, len(canon), n)
	fun, ok := got.(etf.Fun)
	require.True(t, ok, "decoded %T", got)
	canon[len(canon)-1] ^= 0xFF
	assert.NotEqual(t, canon[1:], fun.Raw, "Raw must not alias the input")
	canon[len(canon)-1] ^= 0xFF
	enc, err := etf.Append(nil, etf.Tuple{fun, fun})
	require.NoError(t, err)
	back, _, err := etf.Decode(enc)
	require.NoError(t, err)
	assert.Equal(t, etf.Tuple{fun, fun}, back)
}

func TestDecodeDoesNotAlias(t *testing.T) {
	in, err := etf.Append(nil, etf.Tuple{[]byte("bin"), etf.String("str"), etf.Atom("atom_not_interned_before"), etf.BitBinary{Bytes: []byte{0xF0}, Bits: 4}})
	require.NoError(t, err)
	got, _, err := etf.Decode(in)
	require.NoError(t, err)
	for i := range in {
		in[i] = 0
	}
	assert.Equal(t, etf.Tuple{[]byte("bin"), etf.String("str"), etf.Atom("atom_not_interned_before"), etf.BitBinary{Bytes: []byte{0xF0}, Bits: 4}}, got)
}

func TestListNormalization(t *testing.T) {
	cases := []struct {
		name string
		in   []byte
		want etf.Term
	}{
		{"list tail is a list", []byte{108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 106}, etf.List{int64(1), int64(2)}},
		{"list tail is a string", []byte{108, 0, 0, 0, 1, 97, 1, 107, 0, 2, 2, 3}, etf.List{int64(1), int64(2), int64(3)}},
		{"empty list with string tail", []byte{108, 0, 0, 0, 0, 107, 0, 1, 9}, etf.String("\x09")},
		{"empty list with atom tail", []byte{108, 0, 0, 0, 0, 119, 1, 'x'}, etf.Atom("x")},
		{"empty list with nil tail", []byte{108, 0, 0, 0, 0, 106}, etf.List{}},
		{"improper tail after chain", []byte{108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 97, 3},
			etf.ImproperList{Elems: []etf.Term{int64(1), int64(2)}, Tail: int64(3)}},
		{"empty string", []byte{107, 0, 0}, etf.List{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, n, err := etf.DecodeTerm(c.in)
			require.NoError(t, err)
			assert.Equal(t, len(c.in), n)
			assert.Equal(t, c.want, got)
		})
	}
}

func TestDecodeOldFormats(t *testing.T) {
	// FLOAT_EXT as written by term_to_binary(1.5, [{minor_version, 0}]), and with a short text.
	old := append([]byte{99}, []byte("1.50000000000000000000e+00")...)
	old = append(old, make([]byte, 32-len(old))...)
	got, n, err := etf.DecodeTerm(old)
	require.NoError(t, err)
	assert.Equal(t, 32, n)
	assert.Equal(t, 1.5, got)

	// A sign byte other than 0 or 1 means negative, as in binary_to_term.
	got, _, err = etf.DecodeTerm([]byte{110, 1, 7, 5})
	require.NoError(t, err)
	assert.Equal(t, int64(-5), got)

	// Refs decoded from different encodings of the same value are equal map keys.
	r114 := []byte{114, 0, 1, 119, 1, 'n', 3, 0, 0, 0, 9}
	r101 := []byte{101, 119, 1, 'n', 0, 0, 0, 9, 3}
	a, _, err := etf.DecodeTerm(r114)
	require.NoError(t, err)
	b, _, err := etf.DecodeTerm(r101)
	require.NoError(t, err)
	m := map[etf.Ref]int{a.(etf.Ref): 1}
	assert.Equal(t, 1, m[b.(etf.Ref)])
}

func decodeErr(t *testing.T, in []byte) (*etf.DecodeError, error) {
	t.Helper()
	got, n, err := etf.Decode(in)
	require.Error(t, err, "decoded %v", got)
	assert.Nil(t, got)
	assert.Zero(t, n)
	var de *etf.DecodeError
	require.ErrorAs(t, err, &de)
	assert.NotEmpty(t, de.Error())
	return de, err
}

func TestDecodeErrors(t *testing.T) {
	atom256 := append([]byte{131, 100, 1, 0}, bytes.Repeat([]byte{'a'}, 256)...)
	utf8Atom256 := append([]byte{131, 118, 2, 0}, bytes.Repeat([]byte("é"), 256)...)
	cases := []struct {
		name   string
		in     []byte
		want   error
		offset int
	}{
		{"empty", nil, etf.ErrTruncated, 0},
		{"bad version", []byte{130, 97, 1}, etf.ErrInvalid, 0},
		{"unknown tag", []byte{131, 1}, etf.ErrUnknownTag, 1},
		{"atom cache ref", []byte{131, 82, 0}, etf.ErrUnknownTag, 1},
		{"compressed", []byte{131, 80, 0, 0, 0, 1, 0}, etf.ErrUnknownTag, 1},
		{"NaN", []byte{131, 70, 0x7F, 0xF8, 0, 0, 0, 0, 0, 1}, etf.ErrInvalid, 1},
		{"Inf", []byte{131, 70, 0x7F, 0xF0, 0, 0, 0, 0, 0, 0}, etf.ErrInvalid, 1},
		{"bad FLOAT_EXT", append([]byte{131, 99}, make([]byte, 31)...), etf.ErrInvalid, 1},
		{"FLOAT_EXT inf", append(append([]byte{131, 99}, "inf"...), make([]byte, 28)...), etf.ErrInvalid, 1},
		{"latin1 atom 256 chars", atom256, etf.ErrInvalid, 1},
		{"utf8 atom 256 chars", utf8Atom256, etf.ErrInvalid, 1},
		{"atom bad utf8", []byte{131, 119, 2, 0xC3, 0x28}, etf.ErrInvalid, 1},
		{"ref len 0", []byte{131, 90, 0, 0, 119, 1, 'n', 0, 0, 0, 0}, etf.ErrInvalid, 1},
		{"ref len 6", append([]byte{131, 90, 0, 6, 119, 1, 'n'}, make([]byte, 28)...), etf.ErrInvalid, 1},
		{"pid node not atom", []byte{131, 88, 97, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, etf.ErrInvalid, 2},
		{"bits 0", []byte{131, 77, 0, 0, 0, 1, 0, 1}, etf.ErrInvalid, 1},
		{"bits 9", []byte{131, 77, 0, 0, 0, 1, 9, 1}, etf.ErrInvalid, 1},
		{"bits without bytes", []byte{131, 77, 0, 0, 0, 0, 3}, etf.ErrInvalid, 1},
		{"export arity not small int", []byte{131, 113, 119, 1, 'm', 119, 1, 'f', 98, 0, 0, 0, 1}, etf.ErrInvalid, 8},
		{"fun too small", []byte{131, 112, 0, 0, 0, 4}, etf.ErrInvalid, 1},
		{"tuple element missing", []byte{131, 104, 2, 97, 1}, etf.ErrTruncated, 5},
		{"list tail missing", []byte{131, 108, 0, 0, 0, 2, 119, 1, 'a', 119, 1, 'b'}, etf.ErrTruncated, 12},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			de, err := decodeErr(t, c.in)
			assert.ErrorIs(t, err, c.want)
			assert.Equal(t, c.offset, de.Offset)
		})
	}
}

// TestHugeLengthPrefixes: a length that the input cannot hold fails with ErrTruncated before allocating.
func TestHugeLengthPrefixes(t *testing.T) {
	ff := []byte{0xFF, 0xFF, 0xFF, 0xFF}
	inputs := map[string][]byte{
		"binary":     append(append([]byte{131, 109}, ff...), 1, 2, 3),
		"bitbinary":  append(append([]byte{131, 77}, ff...), 3, 1),
		"large big":  append(append([]byte{131, 111}, ff...), 0, 1),
		"list":       append(append([]byte{131, 108}, ff...), 97, 1, 106),
		"tuple":      append(append([]byte{131, 105}, ff...), 97, 1),
		"map":        append(append([]byte{131, 116}, ff...), 97, 1, 97, 2),
		"fun":        append(append([]byte{131, 112}, ff...), 0),
		"string":     {131, 107, 0xFF, 0xFF, 'a'},
		"atom":       {131, 118, 0xFF, 0xFF, 'a'},
		"map half":   append([]byte{131, 116, 0, 0, 0, 3}, 97, 1, 97, 1, 97, 1), // 3 pairs need >= 6 bytes
		"list nodes": append([]byte{131, 108, 0, 0, 0, 3}, 97, 1, 97),           // 3 elements + tail need >= 4 bytes
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			start := time.Now()
			for range 100 {
				_, _, err := etf.Decode(in)
				require.ErrorIs(t, err, etf.ErrTruncated)
			}
			elapsed := time.Since(start)
			runtime.ReadMemStats(&after)
			assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "allocated bytes for 100 decodes")
			assert.Less(t, elapsed, time.Second)
		})
	}
}

// TestLongTailChain: a list written as a chain of one-element lists (each the tail of the previous) is one
// flat list, not nesting; it decodes in linear time.
func TestLongTailChain(t *testing.T) {
	const n = 200000
	b := []byte{131}
	for range n {
		b = append(b, 108, 0, 0, 0, 1, 97, 0)
	}
	b = append(b, 97, 1)
	start := time.Now()
	term, used, err := etf.Decode(b)
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 5*time.Second)
	assert.Equal(t, len(b), used)
	il, ok := term.(etf.ImproperList)
	require.True(t, ok, "got %T", term)
	assert.Len(t, il.Elems, n)
	assert.Equal(t, int64(1), il.Tail)
}

func decodeErrOnly(b []byte) (etf.Term, error) {
	t, _, err := etf.Decode(b)
	return t, err
}

func TestEncodeErrors(t *testing.T) {
	cases := []struct {
		name string
		in   etf.Term
		want error
	}{
		{"chan", make(chan int), etf.ErrUnsupportedType},
		{"struct", struct{}{}, etf.ErrUnsupportedType},
		{"go map", map[string]int{}, etf.ErrUnsupportedType},
		{"pointer to pid", &tPid, etf.ErrUnsupportedType},
		{"nested unsupported", etf.Tuple{1, etf.List{etf.Map{{Key: 1, Value: errors.New("x")}}}}, etf.ErrUnsupportedType},
		{"atom 256 chars", etf.Atom(strings.Repeat("é", 256)), etf.ErrInvalid},
		{"atom 256 ascii", etf.Atom(strings.Repeat("a", 256)), etf.ErrInvalid},
		{"atom bad utf8", etf.Atom("\xff"), etf.ErrInvalid},
		{"pid bad node", etf.Pid{Node: etf.Atom(strings.Repeat("n", 300))}, etf.ErrInvalid},
		{"ref len 0", etf.Ref{Node: "n"}, etf.ErrInvalid},
		{"ref len 6", etf.Ref{Node: "n", Len: 6}, etf.ErrInvalid},
		{"NaN", math.NaN(), etf.ErrInvalid},
		{"Inf", float32(math.Inf(-1)), etf.ErrInvalid},
		{"nil big", (*big.Int)(nil), etf.ErrInvalid},
		{"bits 0", etf.BitBinary{Bytes: []byte{1}}, etf.ErrInvalid},
		{"bits 9", etf.BitBinary{Bytes: []byte{1}, Bits: 9}, etf.ErrInvalid},
		{"bits without bytes", etf.BitBinary{Bits: 1}, etf.ErrInvalid},
		{"fun empty", etf.Fun{}, etf.ErrInvalid},
		{"fun wrong size", etf.Fun{Raw: append([]byte{112, 0, 0, 0, 40}, make([]byte, 30)...)}, etf.ErrInvalid},
		{"export bad atom", etf.Export{Module: "\xff", Function: "f"}, etf.ErrInvalid},
		{"improper bad tail", etf.ImproperList{Elems: []etf.Term{1}, Tail: struct{}{}}, etf.ErrUnsupportedType},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dst := []byte("keep")
			out, err := etf.Append(dst, c.in)
			require.ErrorIs(t, err, c.want)
			var ee *etf.EncodeError
			require.ErrorAs(t, err, &ee)
			assert.NotEmpty(t, ee.Type)
			assert.Contains(t, err.Error(), "etf: cannot encode")
			assert.Equal(t, []byte("keep"), out, "dst is returned unchanged")
		})
	}
}

// TestEncodeNoAllocs: the ping path encodes into a reused buffer without allocating.
func TestEncodeNoAllocs(t *testing.T) {
	ctrl, msg := isAuthCall()
	buf := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		buf, err = etf.Append(buf[:0], ctrl)
		if err != nil {
			panic(err)
		}
		buf, err = etf.Append(buf, msg)
		if err != nil {
			panic(err)
		}
	})
	assert.Zero(t, allocs)
	var more etf.Term = etf.Tuple{int64(-1 << 40), uint64(1 << 63), etf.Atom(strings.Repeat("ü", 200)), etf.Port{Node: "n", ID: 1 << 40}, 2.5, true}
	allocs = testing.AllocsPerRun(100, func() {
		buf, _ = etf.Append(buf[:0], more)
	})
	assert.Zero(t, allocs)
}

// TestConcurrentDecode decodes from many goroutines at once (run with -race: the atom table is shared).
func TestConcurrentDecode(t *testing.T) {
	var terms [][]byte
	var want []etf.Term
	for i := range 64 {
		term := etf.Tuple{etf.Atom("atom_" + strings.Repeat("x", i)), etf.Pid{Node: etf.Atom("n" + strings.Repeat("y", i%7) + "@h"), ID: uint32(i)}}
		b, err := etf.Append(nil, term)
		require.NoError(t, err)
		terms, want = append(terms, b), append(want, term)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 200 {
				i := (g*31 + round) % len(terms)
				got, _, err := etf.Decode(terms[i])
				if err != nil {
					errs <- err
					return
				}
				if !assert.ObjectsAreEqual(want[i], got) {
					errs <- errors.New("decoded a different term")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
}
