package etf_test

import (
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
)

// erlBatch evaluates Erlang expressions in one erl, in order, and returns each value as ~0tp prints it.
// It is the runtime parameter of the zoo check (erltest.ForEachRuntime can supply one per runtime).
type erlBatch func(t *testing.T, exprs []string) []string

// runtimeErl is an erlBatch on one erl of runtime rt started with erltest (Control), reused for
// the whole zoo.
func runtimeErl(t *testing.T, rt *erltest.Runtime) erlBatch {
	node := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, Control: true})
	return func(t *testing.T, exprs []string) []string {
		out := make([]string, len(exprs))
		for i, e := range exprs {
			v, err := node.Eval(e, 60*time.Second)
			require.NoError(t, err, "evaluating %.200s", e)
			out[i] = v
		}
		return out
	}
}

type zooEntry struct {
	expr             string
	noFormat, noRead bool
}

func loadZoo(t *testing.T) []zooEntry {
	data, err := os.ReadFile("testdata/zoo.txt")
	require.NoError(t, err)
	var zoo []zooEntry
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "%") {
			continue
		}
		e := zooEntry{expr: line}
		switch line[0] {
		case '!':
			e.expr, e.noFormat = line[1:], true
		case '?':
			e.expr, e.noFormat, e.noRead = line[1:], true, true
		}
		zoo = append(zoo, e)
	}
	require.GreaterOrEqual(t, len(zoo), 150)
	return zoo
}

func hexArg(b []byte) string { return `<<"` + strings.ToUpper(hex.EncodeToString(b)) + `">>` }

func unhexResult(t *testing.T, v string) []byte {
	s, ok := strings.CutPrefix(v, `<<"`)
	require.True(t, ok, "result %.200s", v)
	s, ok = strings.CutSuffix(s, `">>`)
	require.True(t, ok, "result %.200s", v)
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

// checkZoo evaluates every zoo term in erl, decodes its term_to_binary, and checks that Format prints
// exactly what io_lib:format("~0tp", [T]) prints there (or "~0tkp" where the two differ, that is where
// OTP 26+ prints a map in its internal order), and that Parse reads Format's text back to an equal term.
func checkZoo(t *testing.T, run erlBatch) {
	zoo := loadZoo(t)
	rel := run(t, []string{`list_to_integer(erlang:system_info(otp_release))`})
	release, err := strconv.Atoi(rel[0])
	require.NoError(t, err)
	exprs := make([]string, len(zoo))
	for i, z := range zoo {
		exprs[i] = `binary:encode_hex(term_to_binary(begin ` + z.expr + ` end))`
	}
	encoded := run(t, exprs)
	terms := make([]etf.Term, len(zoo))
	var compare []string
	var compared []int
	opts := etf.FormatOptions{Release: release}
	for i, z := range zoo {
		b := unhexResult(t, encoded[i])
		term, n, err := etf.Decode(b)
		require.NoError(t, err, z.expr)
		require.Equal(t, len(b), n)
		terms[i] = term
		if z.noFormat {
			continue
		}
		ours := opts.Format(term)
		format := `"~0tp"`
		ordered := "nomatch"
		if release >= 26 {
			ordered = `case P("~0tkp") of Ours -> ordered; _ -> nomatch end`
		}
		compare = append(compare, `T = binary_to_term(binary:decode_hex(`+hexArg(b)+`)), Ours = binary:decode_hex(`+
			hexArg([]byte(ours))+`), P = fun(F) -> unicode:characters_to_binary(io_lib:format(F, [T])) end, `+
			`case P(`+format+`) of Ours -> same; Plain -> case `+ordered+` of ordered -> ordered; _ -> {differ, Plain} end end`)
		compared = append(compared, i)
	}
	verdicts := run(t, compare)
	orderedCount := 0
	for k, i := range compared {
		switch v := verdicts[k]; v {
		case "same":
		case "ordered":
			orderedCount++
		default:
			assert.Fail(t, "Format differs from ~0tp", "OTP %d, %s:\n erl: %.500s\n ours: %.500s", release, zoo[i].expr, v, opts.Format(terms[i]))
		}
	}
	t.Logf("OTP %d: %d terms, %d compared with ~0tp, %d of them matched ~0tkp only (maps in internal order)",
		release, len(zoo), len(compared), orderedCount)
	for i, z := range zoo {
		if z.noRead {
			continue
		}
		text := etf.Format(terms[i])
		back, err := etf.Parse(text)
		if assert.NoError(t, err, "%s: Parse(%.300q)", z.expr, text) {
			assert.True(t, etf.Equal(terms[i], back), "%s: Parse(Format(t)) != t\n text: %.300s", z.expr, text)
		}
	}
}

// TestFormatMatchesErl is the zoo cross-check on every runtime (OTP 25, 27 and the newest).
func TestFormatMatchesErl(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) { checkZoo(t, runtimeErl(t, rt)) })
}

func TestFormat(t *testing.T) {
	node := etf.Atom("a@b")
	cases := []struct {
		in   etf.Term
		want string
	}{
		{nil, "[]"},
		{true, "true"},
		{int8(-3), "-3"},
		{uint64(1 << 63), "9223372036854775808"},
		{float32(0.5), "0.5"},
		{"héllo", `<<"héllo"/utf8>>`},
		{[]byte("a\"b\\c"), `<<"a\"b\\c">>`},
		{etf.String("\x01\x02"), "[1,2]"},
		{etf.String("say \"hi\"\n"), `"say \"hi\"\n"`},
		{etf.List{int64(104), int64(105)}, `"hi"`},
		{etf.List{104, 105}, `"hi"`},
		{etf.ImproperList{Tail: etf.Atom("x")}, "x"},
		{etf.ImproperList{Elems: []etf.Term{int64(1)}, Tail: etf.String("ab")}, `[1,97,98]`},
		{etf.BitBinary{Bytes: []byte{0xFF, 0xE0}, Bits: 3}, "<<255,7:3>>"},
		{etf.BitBinary{Bytes: []byte{'a'}, Bits: 8}, `<<"a">>`},
		{etf.Map{{Key: etf.Atom("b"), Value: 1}, {Key: etf.Atom("a"), Value: 2}}, "#{a => 2,b => 1}"},
		{etf.Pid{Node: node, ID: 80, Serial: 1}, "<a@b.80.1>"},
		{etf.Port{Node: node, ID: 7}, "#Port<a@b.7>"},
		{etf.Ref{Node: node, Len: 3, ID: [5]uint32{1, 2, 3}}, "#Ref<a@b.3.2.1>"},
		{etf.Export{Module: "lists", Function: "and", Arity: 0}, "fun lists:and/0"},
		{etf.Export{Module: "a b", Function: "F", Arity: 1}, "fun 'a b':'F'/1"},
		{etf.Fun{Raw: vectorByName(t, "fun_local")[1:]}, "#Fun<gen_vectors_escript__escript__1795__546841__465841__3.0.131287969>"},
		{struct{}{}, "#Go<struct {}>"},
		{etf.Atom("maybe"), "'maybe'"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, etf.Format(c.in), "%#v", c.in)
	}
	assert.Equal(t, "maybe", etf.FormatOptions{Release: 25}.Format(etf.Atom("maybe")))
	assert.Equal(t, "else", etf.FormatOptions{Release: 26}.Format(etf.Atom("else")))
	assert.Equal(t, "'else'", etf.FormatOptions{Release: 27}.Format(etf.Atom("else")))

	// Any depth prints, without recursion.
	var deep etf.Term = etf.Atom("x")
	for range 1_000_000 {
		deep = etf.Tuple{deep}
	}
	s := etf.Format(deep)
	assert.Equal(t, 2_000_001, len(s))
	assert.Equal(t, strings.Repeat("{", 1_000_000)+"x"+strings.Repeat("}", 1_000_000), s)
}

func TestFormatFloat(t *testing.T) {
	for f, want := range map[float64]string{
		0: "0.0", 1: "1.0", 100: "100.0", 1000: "1.0e3", 1234: "1234.0", 12340: "12340.0", 0.0001: "0.0001",
		0.00012: "1.2e-4", 1e15: "1.0e15", 9007199254740992: "9.007199254740992e15",
		1234567890123456: "1234567890123456.0", 5e-324: "5.0e-324", -2.5: "-2.5", 0.30000000000000004: "0.30000000000000004",
	} {
		assert.Equal(t, want, etf.FormatFloat(f), "%v", f)
		back, err := etf.Parse(want)
		require.NoError(t, err)
		assert.Equal(t, f, back)
	}
}
