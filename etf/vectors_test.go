package etf_test

import (
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
)

// Values of the node that produced testdata/otp25_vectors.tsv (regenerating the file changes them).
const (
	genNode     = etf.Atom("etfgen8940@127.0.0.1")
	genCreation = 0x825BC848
	goNode      = etf.Atom("go@host")
)

var (
	genPid      = etf.Pid{Node: genNode, ID: 9, Serial: 0, Creation: genCreation}
	genRef      = etf.Ref{Node: genNode, Creation: genCreation, Len: 3, ID: [5]uint32{0x000077B4, 0x68400002, 0xC8CDF974}}
	genAliasRef = etf.Ref{Node: genNode, Creation: genCreation, Len: 3, ID: [5]uint32{0x000077B3, 0x68410002, 0xC8CDF974}}
	genAliasTag = etf.ImproperList{Elems: []etf.Term{etf.Atom("alias")}, Tail: genAliasRef}
)

func bigPow2(n uint, neg bool) *big.Int {
	v := new(big.Int).Lsh(big.NewInt(1), n)
	if neg {
		v.Neg(v)
	}
	return v
}

// expectedVectors is what each golden vector must decode to (fun_local is checked separately).
func expectedVectors() map[string]etf.Term {
	seq := make(etf.Tuple, 300)
	for i := range seq {
		seq[i] = int64(i + 1)
	}
	a := func(s string) etf.Atom { return etf.Atom(s) }
	return map[string]etf.Term{
		"small_int_0":      int64(0),
		"small_int_255":    int64(255),
		"int_256":          int64(256),
		"int_neg1":         int64(-1),
		"int_max32":        int64(2147483647),
		"int_min32":        int64(-2147483648),
		"big_2p31":         int64(2147483648),
		"big_neg_2p31_1":   int64(-2147483649),
		"big_max64":        int64(9223372036854775807),
		"big_min64":        int64(-9223372036854775808),
		"big_2p64_1":       new(big.Int).SetUint64(18446744073709551615),
		"big_2p100":        bigPow2(100, false),
		"big_neg_2p100":    bigPow2(100, true),
		"large_big_2p2100": bigPow2(2100, false),
		"float_1_5":        1.5,
		"float_neg_0_1":    -0.1,
		"float_0":          0.0,
		"float_1e300":      1.0e300,
		"atom_empty":       a(""),
		"atom_ok":          a("ok"),
		"atom_true":        a("true"),
		"atom_false":       a("false"),
		"atom_latin1":      a("héllo"),
		"atom_utf8":        a("日本"),
		"atom_255":         a(strings.Repeat("a", 255)),
		"atom_255_utf8":    a(strings.Repeat("日", 255)),
		"pid_self":         genPid,
		"port_real":        etf.Port{Node: genNode, ID: 0, Creation: genCreation},
		"ref_real":         genRef,
		"tuple_empty":      etf.Tuple{},
		"tuple_pair":       etf.Tuple{a("ok"), int64(1)},
		"tuple_300":        seq,
		"nil":              etf.List{},
		"list_mixed":       etf.List{int64(1), a("a"), int64(1000)},
		"string_hello":     etf.String("hello"),
		"improper":         etf.ImproperList{Elems: []etf.Term{int64(1)}, Tail: int64(2)},
		"alias_tag":        genAliasTag,
		"binary_empty":     []byte{},
		"binary_123":       []byte{1, 2, 3},
		"bits_3":           etf.BitBinary{Bytes: []byte{0x20}, Bits: 3},
		"bits_13":          etf.BitBinary{Bytes: []byte{0xFF, 0x18}, Bits: 5},
		"map_empty":        etf.Map{},
		"map_two":          etf.Map{{Key: a("a"), Value: int64(1)}, {Key: []byte("b"), Value: etf.String("\x02")}},
		"export_abs":       etf.Export{Module: "erlang", Function: "abs", Arity: 1},
		"nested": etf.Tuple{
			etf.List{etf.Map{{Key: a("k"), Value: etf.Tuple{int64(1), etf.List{[]byte{}}}}}},
			etf.String("x"),
			etf.List{etf.List{}},
		},
		"is_auth_ctrl": etf.Tuple{int64(6), genPid, a(""), a("net_kernel")},
		"is_auth_call": etf.Tuple{a("$gen_call"), etf.Tuple{genPid, genAliasTag},
			etf.Tuple{a("is_auth"), genNode}},
		"is_auth_reply_ctrl": etf.Tuple{int64(2), a(""), genPid},
		"is_auth_reply":      etf.Tuple{genRef, a("yes")},
		"alias_reply_ctrl":   etf.Tuple{int64(33), genPid, genAliasTag},
		"alias_reply":        etf.Tuple{genAliasTag, a("yes")},

		"legacy_pid_ext":             etf.Pid{Node: goNode, ID: 42, Serial: 1, Creation: 3},
		"legacy_port_ext":            etf.Port{Node: goNode, ID: 7, Creation: 2},
		"legacy_v4_port_small":       etf.Port{Node: goNode, ID: 7, Creation: 5},
		"legacy_v4_port_big":         etf.Port{Node: goNode, ID: 1<<40 + 3, Creation: 5},
		"legacy_reference_ext":       etf.Ref{Node: goNode, Creation: 1, Len: 1, ID: [5]uint32{9}},
		"legacy_new_reference_ext":   etf.Ref{Node: goNode, Creation: 2, Len: 3, ID: [5]uint32{1, 2, 3}},
		"legacy_newer_ref_len5":      etf.Ref{Node: goNode, Creation: 77, Len: 5, ID: [5]uint32{1, 2, 3, 4, 5}},
		"legacy_newer_ref_len1":      etf.Ref{Node: goNode, Creation: 77, Len: 1, ID: [5]uint32{1}},
		"legacy_small_atom_ext":      a("abc"),
		"legacy_atom_ext_latin1":     a("éÿ"),
		"legacy_atom_utf8_long_form": a("ok"),
		"legacy_big_padded":          int64(5),
		"legacy_big_neg_zero":        int64(0),
		"legacy_large_big_small":     int64(-7),
		"legacy_bits_padding":        etf.BitBinary{Bytes: []byte{0xA0}, Bits: 3},
		"legacy_bits_whole":          []byte{1, 2},
		"legacy_bits_empty":          []byte{},
		"legacy_string_empty":        etf.List{},
	}
}

// TestVectors checks every OTP 25 capture: the canonical bytes decode to the expected term, our Append
// of that term reproduces BEAM's bytes exactly, and every other encoding of it decodes to the same term.
func TestVectors(t *testing.T) {
	if *update {
		regenerateVectors(t)
	}
	want := expectedVectors()
	seen := 0
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			exp, ok := want[v.Name]
			if v.Name == "fun_local" {
				exp, ok = etf.Fun{Raw: v.Canon[1:]}, true
			}
			require.True(t, ok, "no expectation for vector %s", v.Name)
			seen++

			got, n, err := etf.Decode(v.Canon)
			require.NoError(t, err)
			assert.Equal(t, len(v.Canon), n)
			assert.Equal(t, exp, got)

			enc, err := etf.Append(nil, exp)
			require.NoError(t, err)
			assert.Equal(t, v.Canon, enc, "Append differs from OTP 25 term_to_binary")

			if v.Name == "fun_local" {
				return // a fun is opaque: its other encodings are different Raw bytes
			}
			for _, alt := range v.Alts {
				got, n, err := etf.Decode(alt)
				require.NoError(t, err, "alt %x", alt)
				assert.Equal(t, len(alt), n)
				assert.Equal(t, exp, got, "alt %x", alt)
			}
		})
	}
	assert.Equal(t, len(want)+1, seen, "every expectation has a vector")
}

// TestVectorsTruncated cuts every vector at every offset: always an error wrapping ErrTruncated, never a panic.
func TestVectorsTruncated(t *testing.T) {
	for _, v := range loadVectors(t) {
		for _, b := range append([][]byte{v.Canon}, v.Alts...) {
			for cut := 0; cut < len(b); cut++ {
				_, _, err := etf.Decode(b[:cut])
				require.ErrorIs(t, err, etf.ErrTruncated, "%s cut at %d", v.Name, cut)
				var de *etf.DecodeError
				require.ErrorAs(t, err, &de)
				assert.LessOrEqual(t, de.Offset, cut)
			}
			_, _, err := etf.DecodeTerm(b[1 : len(b)-1])
			assert.ErrorIs(t, err, etf.ErrTruncated, "%s without last byte", v.Name)
		}
	}
}
