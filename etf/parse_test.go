package etf_test

import (
	"math"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
)

func TestParse(t *testing.T) {
	a := func(s string) etf.Atom { return etf.Atom(s) }
	big30, _ := new(big.Int).SetString("123456789012345678901234567890", 10)
	cases := []struct {
		src  string
		want etf.Term
	}{
		{`hello`, a("hello")},
		{`'hello world'`, a("hello world")},
		{`'\n\t\'\\\x41\101\^A\s\d\e'`, a("\n\t'\\AA\x01 \x7f\x1b")},
		{`'\x{1F600}'`, a("😀")},
		{`héllo`, a("héllo")},
		{`node@host`, a("node@host")},
		{`'日本'`, a("日本")},
		{`maybe`, a("maybe")},
		{`true`, a("true")},
		{`''`, a("")},
		{`42`, int64(42)},
		{`-42`, int64(-42)},
		{`+42`, int64(42)},
		{`- 42`, int64(-42)},
		{`-(42)`, int64(-42)},
		{`1_000_000`, int64(1000000)},
		{`16#ff`, int64(255)},
		{`16#FF_FF`, int64(65535)},
		{`2#1010`, int64(10)},
		{`36#zz`, int64(36*36 - 1)},
		{`-16#10`, int64(-16)},
		{`$a`, int64(97)},
		{`$\n`, int64(10)},
		{`$\x{10FFFF}`, int64(0x10FFFF)},
		{`$ `, int64(32)},
		{`$日`, int64(0x65E5)},
		{`-$a`, int64(-97)},
		{`9223372036854775807`, int64(math.MaxInt64)},
		{`-9223372036854775808`, int64(math.MinInt64)},
		{`9223372036854775808`, new(big.Int).Lsh(big.NewInt(1), 63)},
		{`123456789012345678901234567890`, big30},
		{`1.5`, 1.5},
		{`-2.5`, -2.5},
		{`1.0e10`, 1.0e10},
		{`1.0E-5`, 1.0e-5},
		{`2.5e+3`, 2500.0},
		{`-0.0`, math.Copysign(0, -1)},
		{`1_0.2_5`, 10.25},
		{`"abc"`, etf.String("abc")},
		{`"a" "b"  "c"`, etf.String("abc")},
		{`""`, etf.List{}},
		{`[]`, etf.List{}},
		{`"é"`, etf.String("\xe9")},
		{`"日本"`, etf.List{int64(0x65E5), int64(0x672C)}},
		{`"line\nnext"`, etf.String("line\nnext")},
		{`[1,2,3]`, etf.String("\x01\x02\x03")},
		{`[1,256]`, etf.List{int64(1), int64(256)}},
		{`[-1]`, etf.List{int64(-1)}},
		{`[a, "b", <<"c">>]`, etf.List{a("a"), etf.String("b"), []byte("c")}},
		{`[a|b]`, etf.ImproperList{Elems: []etf.Term{a("a")}, Tail: a("b")}},
		{`[1,2|[3]]`, etf.String("\x01\x02\x03")},
		{`[1|"ab"]`, etf.String("\x01ab")},
		{`[a|[b|c]]`, etf.ImproperList{Elems: []etf.Term{a("a"), a("b")}, Tail: a("c")}},
		{`[[]]`, etf.List{etf.List{}}},
		{`{}`, etf.Tuple{}},
		{`{a, {b}, {}}`, etf.Tuple{a("a"), etf.Tuple{a("b")}, etf.Tuple{}}},
		{`#{}`, etf.Map{}},
		{`#{k => v}`, etf.Map{{Key: a("k"), Value: a("v")}}},
		{`# { b => 1, a => 2, a => 3 }`, etf.Map{{Key: a("a"), Value: int64(3)}, {Key: a("b"), Value: int64(1)}}},
		{`#{2 => x, 1.0 => y, 1 => z}`, etf.Map{{Key: int64(1), Value: a("z")}, {Key: int64(2), Value: a("x")}, {Key: 1.0, Value: a("y")}}},
		{`<<>>`, []byte{}},
		{`<<"abc">>`, []byte("abc")},
		{`<<1,2,3>>`, []byte{1, 2, 3}},
		{`<<"é"/utf8>>`, []byte("é")},
		{`<<"é">>`, []byte{0xE9}},
		{`<<"日"/utf16>>`, []byte{0x65, 0xE5}},
		{`<<"a"/utf32-little>>`, []byte{'a', 0, 0, 0}},
		{`<<1:3>>`, etf.BitBinary{Bytes: []byte{0x20}, Bits: 3}},
		{`<<300:4>>`, etf.BitBinary{Bytes: []byte{0xC0}, Bits: 4}},
		{`<<-1:12>>`, etf.BitBinary{Bytes: []byte{0xFF, 0xF0}, Bits: 4}},
		{`<<16#123:12/little>>`, etf.BitBinary{Bytes: []byte{0x23, 0x10}, Bits: 4}},
		{`<<255:16/little>>`, []byte{0xFF, 0}},
		{`<<1:2/unit:8>>`, []byte{0, 1}},
		{`<<1:16/signed-big>>`, []byte{0, 1}},
		{`<<"ab":16>>`, []byte{0, 'a', 0, 'b'}},
		{`<<1.5/float>>`, []byte{0x3F, 0xF8, 0, 0, 0, 0, 0, 0}},
		{`<<1.5:32/float>>`, []byte{0x3F, 0xC0, 0, 0}},
		{`<<1.5:16/float>>`, []byte{0x3E, 0}},
		{`<<2:32/float-little>>`, []byte{0, 0, 0, 0x40}},
		{`<<<<1:1>>/bits, 1:7>>`, []byte{0x81}},
		{`<<<<"abc">>:2/binary>>`, []byte("ab")},
		{`<<<<"abc">>/binary, "d">>`, []byte("abcd")},
		{`<<$a, ($b)>>`, []byte("ab")},
		{`fun erlang:abs/1`, etf.Export{Module: "erlang", Function: "abs", Arity: 1}},
		{`{ok, % a comment
		   done}.`, etf.Tuple{a("ok"), a("done")}},
		{"  42 .  % trailing\n", int64(42)},
		{`((a))`, a("a")},
		// OTP 27 sigils and triple-quoted strings (checked against erl_parse in OTP 27).
		{`~"a\nb"`, []byte("a\nb")},
		{`~b"a\x{e9}"`, []byte("aé")},
		{`~B"a\nb"`, []byte(`a\nb`)},
		{`~s"x\ty"`, etf.String("x\ty")},
		{`~S"x\ty"`, etf.String(`x\ty`)},
		{`~(a"b)`, []byte(`a"b`)},
		{`~[a\]b]`, []byte("a]b")},
		{`~""`, []byte{}},
		{"\"\"\"\n  hello \"x\"\n    world\n  \"\"\"", etf.String("hello \"x\"\n  world")},
		{`{hello, <<"x">>, [1,2,3], #{k => v}}`, etf.Tuple{a("hello"), []byte("x"), etf.String("\x01\x02\x03"), etf.Map{{Key: a("k"), Value: a("v")}}}},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			got, err := etf.Parse(c.src)
			if c.want == nil {
				var se *etf.SyntaxError
				require.ErrorAs(t, err, &se)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, got)
		})
	}
}

func TestParseErrors(t *testing.T) {
	cases := []struct {
		src       string
		line, col int
		msg       string
	}{
		{`{a, X}`, 1, 5, "variable"},
		{`{a,`, 1, 4, "end of input"},
		{`{a b}`, 1, 4, "before: b"},
		{"[1,\n  2 3]", 2, 5, "before: 3"},
		{`and`, 1, 1, "and"},
		{`1 + 2`, 1, 3, "before: +"},
		{`'abc`, 1, 1, "unterminated atom"},
		{`"abc`, 1, 1, "unterminated string"},
		{`#{a := 1}`, 1, 5, "=>"},
		{`-a`, 1, 1, "numbers only"},
		{`- -1`, 1, 1, "numbers only"},
		{`{é, 日}`, 1, 5, "illegal character"},
		{`37#1`, 1, 1, "base"},
		{`1.0e999`, 1, 1, "illegal float"},
		{`a. b.`, 1, 4, "before: b"},
		{`<<1:3/foo>>`, 1, 7, "unknown segment type"},
		{`<<"é"/binary>>`, 1, 3, "string segment"},
		{`<<<<1:3>>/binary>>`, 1, 3, "multiple of the unit"},
		{`'` + strings.Repeat("a", 256) + `'`, 1, 1, "too long"},
		{`fun f/1`, 1, 6, "expected :"},
		{``, 1, 1, "end of input"},
		{`'it''s'`, 1, 5, "before: 's'"},
		{`a@b.c`, 1, 4, "before: ."},
	}
	for _, c := range cases {
		t.Run(c.src, func(t *testing.T) {
			_, err := etf.Parse(c.src)
			var se *etf.SyntaxError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, c.line, se.Line, "line")
			assert.Equal(t, c.col, se.Column, "column")
			assert.Contains(t, se.Msg, c.msg)
			assert.Contains(t, err.Error(), "column")
		})
	}
	_, err := etf.Parse(strings.Repeat("[", etf.MaxParseDepth+10))
	require.ErrorContains(t, err, "nesting deeper")
}

func TestParseAll(t *testing.T) {
	terms, err := etf.ParseAll("%% config\n{a, 1}.\n{b, [x]}.\n\n")
	require.NoError(t, err)
	assert.Equal(t, []etf.Term{etf.Tuple{etf.Atom("a"), int64(1)}, etf.Tuple{etf.Atom("b"), etf.List{etf.Atom("x")}}}, terms)
	terms, err = etf.ParseAll("  % nothing\n")
	require.NoError(t, err)
	assert.Empty(t, terms)
	_, err = etf.ParseAll("{a, 1}.\n{b, 2}")
	var se *etf.SyntaxError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 2, se.Line)
}

func TestCompareAndEqual(t *testing.T) {
	a := func(s string) etf.Atom { return etf.Atom(s) }
	ordered := []etf.Term{int64(-5), 1.5, int64(2), a("a"), a("b"), etf.Ref{Node: "n", Len: 1},
		etf.Export{Module: "m", Function: "f"}, etf.Port{Node: "n"}, etf.Pid{Node: "n"}, etf.Tuple{int64(9)},
		etf.Tuple{int64(1), int64(1)}, etf.Map{}, etf.List{}, etf.List{int64(1)}, etf.String("\x01\x02"),
		etf.ImproperList{Elems: []etf.Term{int64(1), int64(3)}, Tail: a("x")}, []byte{}, etf.BitBinary{Bytes: []byte{0}, Bits: 1}, []byte{0}}
	for i := range ordered {
		for j := range ordered {
			assert.Equal(t, cmpInt(i, j), etf.Compare(ordered[i], ordered[j]), "%v vs %v", ordered[i], ordered[j])
		}
	}
	assert.Equal(t, 0, etf.Compare(int64(1), 1.0))
	assert.False(t, etf.Equal(int64(1), 1.0))
	assert.True(t, etf.Equal(etf.String("ab"), etf.List{int64('a'), 98}))
	assert.True(t, etf.Equal("ab", []byte("ab")))
	assert.True(t, etf.Equal(true, a("true")))
	assert.True(t, etf.Equal(etf.Map{{Key: a("a"), Value: 1}, {Key: a("b"), Value: 2}},
		etf.Map{{Key: a("b"), Value: int64(2)}, {Key: a("a"), Value: int64(1)}}))
	assert.False(t, etf.Equal(0.0, math.Copysign(0, -1)))
	assert.True(t, etf.Equal(nil, etf.List{}))
}

func cmpInt(i, j int) int {
	switch {
	case i < j:
		return -1
	case i > j:
		return 1
	}
	return 0
}

// TestCompareDeep: comparing uses no recursion, so terms as deep as decoding allows compare.
func TestCompareDeep(t *testing.T) {
	deep := func(leaf etf.Term) etf.Term {
		for i := range 300_000 {
			if i%2 == 0 {
				leaf = etf.Tuple{leaf}
			} else {
				leaf = etf.List{etf.Atom("x"), leaf}
			}
		}
		return leaf
	}
	x, y := deep(int64(1)), deep(int64(2))
	assert.True(t, etf.Equal(x, deep(int64(1))))
	assert.Equal(t, -1, etf.Compare(x, y))
	assert.Equal(t, 1, etf.Compare(y, x))
	// A map whose keys must be compared deeply still prints, keys in order.
	s := etf.Format(etf.Map{{Key: y, Value: etf.Atom("two")}, {Key: x, Value: etf.Atom("one")}})
	assert.Less(t, strings.Index(s, "1"), strings.Index(s, "2"))
}
