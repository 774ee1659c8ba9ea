package etf_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
)

// FuzzDecode: decoding never panics and fails only with a *DecodeError; whatever decodes re-encodes
// and decodes again to an equal term, and the re-encoding is stable.
func FuzzDecode(f *testing.F) {
	for _, v := range loadVectors(f) { // OTP 25 captures: is_auth $gen_call, {Ref, yes}, [alias|Ref], ...
		f.Add(v.Canon)
		for _, alt := range v.Alts {
			f.Add(alt)
		}
	}
	f.Add([]byte{131, 108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 107, 0, 1, 3})
	f.Add([]byte{131, 108, 0, 0, 0, 0, 119, 1, 'x'})
	f.Add([]byte{131, 77, 0, 0, 0, 1, 3, 0xFF})
	f.Add([]byte{131, 99, '1', '.', '5', 0})
	f.Add(nested([]byte{104, 1}, nil, 300, []byte{97, 1}))                  // deeper than recursion goes
	f.Add(nested([]byte{108, 0, 0, 0, 1}, []byte{106}, 300, []byte{106}))   // [[[...]]]
	f.Add(nested([]byte{116, 0, 0, 0, 1}, []byte{97, 0}, 100, []byte{106})) // nested map keys
	f.Add(nested([]byte{108, 0, 0, 0, 1, 97, 7, 104, 1}, nil, 100, []byte{97, 1}))
	f.Add([]byte{131, 105, 0, 0, 0, 9, 105, 0, 0, 0, 5, 106, 106, 106, 106, 106, 106})
	limited := etf.DecodeOptions{MaxDepth: 70}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkDecode(t, b, etf.Decode, etf.Append)
		checkDecode(t, b, etf.DecodeTerm, etf.AppendTerm)
		checkDecode(t, b, limited.Decode, etf.Append)
		// Without a limit, ErrTooDeep never happens.
		if _, _, err := etf.Decode(b); err != nil {
			require.NotErrorIs(t, err, etf.ErrTooDeep)
		}
	})
}

func checkDecode(t *testing.T, b []byte,
	decode func([]byte) (etf.Term, int, error), encode func([]byte, etf.Term) ([]byte, error)) {
	term, n, err := decode(b)
	if err != nil {
		var de *etf.DecodeError
		require.ErrorAs(t, err, &de)
		require.True(t, errors.Is(err, etf.ErrTruncated) || errors.Is(err, etf.ErrInvalid) ||
			errors.Is(err, etf.ErrUnknownTag) || errors.Is(err, etf.ErrTooDeep), "sentinel: %v", err)
		require.GreaterOrEqual(t, de.Offset, 0)
		require.LessOrEqual(t, de.Offset, len(b))
		return
	}
	require.Positive(t, n)
	require.LessOrEqual(t, n, len(b))
	enc, err := encode(nil, term)
	require.NoError(t, err, "re-encoding %#v", term)
	again, n2, err := decode(enc)
	require.NoError(t, err)
	require.Equal(t, len(enc), n2)
	require.Equal(t, term, again)
	enc2, err := encode(nil, again)
	require.NoError(t, err)
	require.Equal(t, enc, enc2)
}

// FuzzParse: Parse never panics and fails only with a *SyntaxError; what it accepts prints (Format) to
// a text that Parse reads back to an equal term, and that text is stable.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{hello, <<"x">>, [1,2,3], #{k => v}}`, `'a\x{1F600}b'`, `16#ff`, `$\n`, `-1.5e-10`, `"日本"`,
		`<<"é"/utf8, 1:3, 2.5/float, (-1):12/little>>`, `[a|b]`, `#{1 => a, 1.0 => b}`, `fun m:f/2`,
		`%% c\n{a}.`, `~b"x\n"`, `~S(a\b)`, "\"\"\"\n  a\n  \"\"\"", `1_000`, `[$a|"bc"]`, `<<<<"abc">>:2/binary>>`, `'maybe'`, `- (3)`, `36#Zz`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		term, err := etf.Parse(src)
		if err != nil {
			var se *etf.SyntaxError
			require.ErrorAs(t, err, &se)
			require.Positive(t, se.Line)
			require.Positive(t, se.Column)
			return
		}
		text := etf.Format(term)
		back, err := etf.Parse(text)
		require.NoError(t, err, "Parse(Format(Parse(%q))) = Parse(%q)", src, text)
		require.True(t, etf.Equal(term, back), "%q printed as %q reads back differently", src, text)
		require.Equal(t, text, etf.Format(back))
		_, err = etf.Append(nil, term)
		require.NoError(t, err, "what Parse returns encodes")
	})
}
