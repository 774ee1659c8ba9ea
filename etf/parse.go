package etf

import (
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// SyntaxError is a term text that Parse or ParseAll cannot read. Line and Column (both from 1; a
// column counts characters, not bytes) point at the offending character or token.
type SyntaxError struct {
	Line, Column int
	Msg          string
}

func (e *SyntaxError) Error() string {
	return "etf: syntax error at line " + strconv.Itoa(e.Line) + ", column " + strconv.Itoa(e.Column) + ": " + e.Msg
}

// maxParsedBinary bounds a binary that Parse builds (plus the text's length), so that a short text
// such as <<0:1000000000>> cannot make a huge term.
const maxParsedBinary = 64 << 10

// MaxParseDepth is the deepest nesting of tuples, lists, maps and binaries that Parse accepts (erl_parse
// has no limit, but term text is typed by people; a deeper text fails with a *SyntaxError).
const MaxParseDepth = 10000

// Parse reads one term written in Erlang syntax, what erl_scan:string/1 followed by
// erl_parse:parse_term/1 accepts: atoms (bare or quoted, with escapes), integers (16#ff, 1_000, $a, $\n,
// negative, big), floats (2.5, -1.0e10), strings (adjacent ones join), binaries with segments
// (<<"abc">>, <<1,2,3>>, <<"é"/utf8>>, <<1:3>>, <<X:Size/Type>> with integer, float, binary, bitstring
// and utf8/16/32 types, signed/unsigned, big/little/native and unit:N), tuples, lists and improper lists,
// maps (#{k => v}; a repeated key keeps its last value), external funs (fun m:f/1, as Export), OTP 27's
// sigils ~"...", ~b, ~B (binaries), ~s, ~S (strings) with any of their delimiters, and triple-quoted
// strings, whitespace, % comments and an optional final '.'.
//
// The result uses the Go types Decode produces for term_to_binary of the same term: a string or list
// whose elements are all integers 0..255 (and at most 65535 of them) is a String, other lists are List
// (or ImproperList), "" and [] are List{}, integers are int64 or *big.Int, binaries are []byte (or
// BitBinary when the bit count is not a multiple of 8), and map entries are in map-key order (see
// Compare), as BEAM stores maps of up to 32 keys.
//
// The keywords of OTP 27's maybe expression (maybe, else) read as atoms, as OTP 25 reads them.
func Parse(src string) (Term, error) {
	p, err := newParser(src)
	if err != nil {
		return nil, err
	}
	t, err := p.term(0)
	if err != nil {
		return nil, err
	}
	if p.peek().kind == tkDot {
		p.pos++
	}
	if tok := p.peek(); tok.kind != tkEOF {
		return nil, p.errAt(tok, "syntax error before: "+tok.text)
	}
	return t, nil
}

// ParseAll reads a sequence of terms, each ending with '.', as file:consult/1 reads a file.
func ParseAll(src string) ([]Term, error) {
	p, err := newParser(src)
	if err != nil {
		return nil, err
	}
	var out []Term
	for p.peek().kind != tkEOF {
		t, err := p.term(0)
		if err != nil {
			return nil, err
		}
		if tok := p.peek(); tok.kind != tkDot {
			return nil, p.errAt(tok, "syntax error before: "+tok.text)
		}
		p.pos++
		out = append(out, t)
	}
	return out, nil
}

type tokKind uint8

const (
	tkEOF tokKind = iota
	tkAtom
	tkVar
	tkInt
	tkFloat
	tkChar
	tkString
	tkPunct // text holds it: { } [ ] ( ) | , << >> # => := : / - + ...
	tkDot
	tkKeyword // a reserved word
	tkBinary  // a binary sigil (~"...", ~b"...", ~B"..."): runes hold its characters
)

type token struct {
	kind      tokKind
	text      string // source text, for messages (punct: the punctuation)
	atom      string // atom name
	runes     []rune // string contents
	i         *big.Int
	f         float64
	line, col int
}

type parser struct {
	toks    []token
	pos     int
	maxBits int // the most bits one binary may have
}

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tkEOF {
		p.pos++
	}
	return t
}

func (p *parser) errAt(t token, msg string) *SyntaxError {
	return &SyntaxError{Line: t.line, Column: t.col, Msg: msg}
}

func (p *parser) expect(punct string) error {
	t := p.next()
	if t.kind != tkPunct || t.text != punct {
		return p.errAt(t, "syntax error before: "+t.text+" (expected "+punct+")")
	}
	return nil
}

func isPunct(t token, s string) bool { return t.kind == tkPunct && t.text == s }

// term parses one term; depth counts the containers around it.
func (p *parser) term(depth int) (Term, error) {
	if depth > MaxParseDepth {
		return nil, p.errAt(p.peek(), "nesting deeper than "+strconv.Itoa(MaxParseDepth))
	}
	t := p.next()
	switch t.kind {
	case tkAtom:
		return Atom(t.atom), nil
	case tkInt, tkChar:
		return intTerm(t.i), nil
	case tkFloat:
		return t.f, nil
	case tkString:
		r := t.runes
		if p.peek().kind == tkString {
			r = append([]rune(nil), r...)
			for p.peek().kind == tkString {
				r = append(r, p.next().runes...)
			}
		}
		return listOfRunes(r), nil
	case tkBinary:
		return []byte(string(t.runes)), nil
	case tkVar:
		return nil, p.errAt(t, "variable "+t.text+" is not a term")
	case tkKeyword:
		if t.atom == "fun" {
			return p.funExport(t)
		}
		return nil, p.errAt(t, "syntax error before: "+t.text)
	case tkPunct:
		switch t.text {
		case "-", "+":
			// Unary minus or plus applies to a number or character only, possibly in parentheses.
			opens := 0
			for isPunct(p.peek(), "(") {
				p.pos++
				opens++
			}
			n := p.next()
			if n.kind != tkInt && n.kind != tkChar && n.kind != tkFloat {
				return nil, p.errAt(t, "bad term: unary "+t.text+" applies to numbers only")
			}
			for range opens {
				if err := p.expect(")"); err != nil {
					return nil, err
				}
			}
			switch {
			case n.kind == tkFloat && t.text == "-":
				return -n.f, nil
			case n.kind == tkFloat:
				return n.f, nil
			case t.text == "-":
				return intTerm(new(big.Int).Neg(n.i)), nil
			default:
				return intTerm(n.i), nil
			}
		case "(":
			v, err := p.term(depth + 1)
			if err != nil {
				return nil, err
			}
			if err := p.expect(")"); err != nil {
				return nil, err
			}
			return v, nil
		case "{":
			var elems Tuple = Tuple{}
			if isPunct(p.peek(), "}") {
				p.pos++
				return elems, nil
			}
			for {
				e, err := p.term(depth + 1)
				if err != nil {
					return nil, err
				}
				elems = append(elems, e)
				if isPunct(p.peek(), ",") {
					p.pos++
					continue
				}
				if err := p.expect("}"); err != nil {
					return nil, err
				}
				return elems, nil
			}
		case "[":
			return p.list(depth)
		case "#":
			return p.mapTerm(depth)
		case "<<":
			return p.binary(depth)
		}
	}
	if t.kind == tkEOF {
		return nil, p.errAt(t, "syntax error before: end of input (a term is missing)")
	}
	return nil, p.errAt(t, "syntax error before: "+t.text)
}

func (p *parser) funExport(start token) (Term, error) {
	// Reserved words are accepted as atoms here, since BEAM prints fun lists:and/0 so.
	m := p.next()
	if m.kind != tkAtom && m.kind != tkKeyword {
		return nil, p.errAt(m, "bad term: only fun Module:Function/Arity is a term")
	}
	if err := p.expect(":"); err != nil {
		return nil, err
	}
	f := p.next()
	if f.kind != tkAtom && f.kind != tkKeyword {
		return nil, p.errAt(f, "syntax error before: "+f.text)
	}
	if err := p.expect("/"); err != nil {
		return nil, err
	}
	a := p.next()
	if a.kind != tkInt || !a.i.IsInt64() || a.i.Int64() > math.MaxUint8 {
		return nil, p.errAt(a, "bad term: fun arity must be an integer 0..255")
	}
	return Export{Module: Atom(m.atom), Function: Atom(f.atom), Arity: uint8(a.i.Int64())}, nil
}

func (p *parser) list(depth int) (Term, error) {
	var elems []Term
	if isPunct(p.peek(), "]") {
		p.pos++
		return emptyList, nil
	}
	for {
		e, err := p.term(depth + 1)
		if err != nil {
			return nil, err
		}
		elems = append(elems, e)
		switch t := p.next(); {
		case isPunct(t, ","):
			continue
		case isPunct(t, "]"):
			return canonList(elems, nil), nil
		case isPunct(t, "|"):
			tail, err := p.term(depth + 1)
			if err != nil {
				return nil, err
			}
			if err := p.expect("]"); err != nil {
				return nil, err
			}
			return canonList(elems, tail), nil
		default:
			return nil, p.errAt(t, "syntax error before: "+t.text)
		}
	}
}

func (p *parser) mapTerm(depth int) (Term, error) {
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	m := Map{}
	if isPunct(p.peek(), "}") {
		p.pos++
		return m, nil
	}
	for {
		k, err := p.term(depth + 1)
		if err != nil {
			return nil, err
		}
		if t := p.next(); !isPunct(t, "=>") {
			return nil, p.errAt(t, "bad term: map entries are Key => Value")
		}
		v, err := p.term(depth + 1)
		if err != nil {
			return nil, err
		}
		m = append(m, MapEntry{Key: k, Value: v})
		if isPunct(p.peek(), ",") {
			p.pos++
			continue
		}
		if err := p.expect("}"); err != nil {
			return nil, err
		}
		return canonMap(m), nil
	}
}

// canonMap sorts entries into map-key order and keeps the last of equal keys, as maps:from_list/1 does.
func canonMap(m Map) Map {
	// Stable insertion sort keeps the source order of equal keys, so the last one wins below.
	sorted := make(Map, 0, len(m))
	for _, e := range m {
		k := len(sorted)
		for k > 0 && compareTerms(sorted[k-1].Key, e.Key, true) > 0 {
			k--
		}
		if k > 0 && compareTerms(sorted[k-1].Key, e.Key, true) == 0 {
			sorted[k-1].Value = e.Value
			continue
		}
		sorted = append(sorted, MapEntry{})
		copy(sorted[k+1:], sorted[k:])
		sorted[k] = e
	}
	return sorted
}

// intTerm returns v as int64 when it fits, else v.
func intTerm(v *big.Int) Term {
	if v.IsInt64() {
		return v.Int64()
	}
	return v
}

// listOfRunes is the list term of a string's code points.
func listOfRunes(r []rune) Term {
	if len(r) == 0 {
		return emptyList
	}
	small := len(r) <= math.MaxUint16
	for _, c := range r {
		if c > 255 {
			small = false
			break
		}
	}
	if small {
		b := make([]byte, len(r))
		for i, c := range r {
			b[i] = byte(c)
		}
		return String(b)
	}
	l := make(List, len(r))
	for i, c := range r {
		l[i] = int64(c)
	}
	return l
}

// canonList builds [elems | tail] (tail nil means []) in the form Decode gives the same list.
func canonList(elems []Term, tail Term) Term {
	switch tl := tail.(type) {
	case nil:
	case List:
		elems = append(elems, tl...)
		tail = nil
	case String:
		for i := 0; i < len(tl); i++ {
			elems = append(elems, int64(tl[i]))
		}
		tail = nil
	case ImproperList:
		elems = append(elems, tl.Elems...)
		tail = tl.Tail
	}
	if len(elems) == 0 {
		if tail == nil {
			return emptyList
		}
		return tail
	}
	if tail != nil {
		return ImproperList{Elems: elems, Tail: tail}
	}
	if len(elems) <= math.MaxUint16 {
		b := make([]byte, len(elems))
		ok := true
		for i, e := range elems {
			v, isInt := e.(int64)
			if !isInt || v < 0 || v > 255 {
				ok = false
				break
			}
			b[i] = byte(v)
		}
		if ok {
			return String(b)
		}
	}
	return List(elems)
}

// binary parses the segments of <<...>> (the "<<" is read) and builds the bitstring.
func (p *parser) binary(depth int) (Term, error) {
	var w bitWriter
	if isPunct(p.peek(), ">>") {
		p.pos++
		return []byte{}, nil
	}
	for {
		if err := p.segment(&w, depth); err != nil {
			return nil, err
		}
		t := p.next()
		if w.bits > p.maxBits {
			return nil, p.errAt(t, "bad term: binary larger than "+strconv.Itoa(p.maxBits/8)+" bytes")
		}
		if isPunct(t, ",") {
			continue
		}
		if !isPunct(t, ">>") {
			return nil, p.errAt(t, "syntax error before: "+t.text)
		}
		return w.term(), nil
	}
}

type segSpec struct {
	typ      string // integer, float, binary, bitstring, utf8, utf16, utf32
	little   bool
	unit     int // 0: default
	size     *big.Int
	sizeTok  token
	hasSize  bool
	valueTok token
}

func (p *parser) segment(w *bitWriter, depth int) error {
	vt := p.peek()
	var value Term
	var str []rune
	isStr := false
	if vt.kind == tkString {
		isStr = true
		for p.peek().kind == tkString {
			str = append(str, p.next().runes...)
		}
	} else {
		// The value is a literal (possibly signed or in parentheses) or a nested binary.
		var err error
		if value, err = p.term(depth + 1); err != nil {
			return err
		}
	}
	spec := segSpec{typ: "integer", valueTok: vt}
	if isPunct(p.peek(), ":") {
		p.pos++
		st := p.peek()
		sz, err := p.term(depth + 1)
		if err != nil {
			return err
		}
		var n *big.Int
		switch v := sz.(type) {
		case int64:
			n = big.NewInt(v)
		case *big.Int:
			n = v
		default:
			return p.errAt(st, "bad term: a segment size must be an integer")
		}
		if n.Sign() < 0 {
			return p.errAt(st, "bad term: negative segment size")
		}
		if !n.IsInt64() || n.Int64() > int64(p.maxBits) {
			return p.errAt(st, "bad term: segment size too large")
		}
		spec.size, spec.hasSize, spec.sizeTok = n, true, st
	}
	if isPunct(p.peek(), "/") {
		p.pos++
		for {
			t := p.next()
			if t.kind != tkAtom {
				return p.errAt(t, "syntax error before: "+t.text)
			}
			switch t.atom {
			case "integer", "float", "binary", "bitstring", "utf8", "utf16", "utf32":
				spec.typ = t.atom
			case "bytes":
				spec.typ = "binary"
			case "bits":
				spec.typ = "bitstring"
			case "signed", "unsigned", "big":
				spec.little = spec.little && t.atom != "big"
			case "little", "native":
				spec.little = true
			case "unit":
				if err := p.expect(":"); err != nil {
					return err
				}
				u := p.next()
				if u.kind != tkInt || !u.i.IsInt64() || u.i.Int64() < 1 || u.i.Int64() > 256 {
					return p.errAt(u, "bad term: unit must be 1..256")
				}
				spec.unit = int(u.i.Int64())
			default:
				return p.errAt(t, "bad term: unknown segment type "+t.atom)
			}
			if !isPunct(p.peek(), "-") {
				break
			}
			p.pos++
		}
	}
	if isStr {
		if spec.typ == "binary" || spec.typ == "bitstring" {
			return p.errAt(vt, "bad term: a string segment cannot have type "+spec.typ)
		}
		for _, c := range str {
			if err := p.put(w, spec, int64(c)); err != nil {
				return err
			}
		}
		return nil
	}
	return p.put(w, spec, value)
}

// put writes one segment value.
func (p *parser) put(w *bitWriter, s segSpec, v Term) error {
	bad := func(msg string) error { return p.errAt(s.valueTok, "bad term: "+msg) }
	unit := s.unit
	switch s.typ {
	case "utf8", "utf16", "utf32":
		if s.hasSize || s.unit != 0 {
			return p.errAt(s.sizeTok, "bad term: utf segments take no size or unit")
		}
		c, ok := v.(int64)
		if !ok || c < 0 || c > utf8.MaxRune || (c >= 0xD800 && c <= 0xDFFF) {
			return bad("not a code point")
		}
		var b []byte
		switch s.typ {
		case "utf8":
			b = utf8.AppendRune(nil, rune(c))
		case "utf16":
			if c < 0x10000 {
				b = []byte{byte(c >> 8), byte(c)}
			} else {
				c -= 0x10000
				hi, lo := 0xD800+(c>>10), 0xDC00+(c&0x3FF)
				b = []byte{byte(hi >> 8), byte(hi), byte(lo >> 8), byte(lo)}
			}
			if s.little {
				for i := 0; i+1 < len(b); i += 2 {
					b[i], b[i+1] = b[i+1], b[i]
				}
			}
		default:
			b = []byte{byte(c >> 24), byte(c >> 16), byte(c >> 8), byte(c)}
			if s.little {
				b[0], b[1], b[2], b[3] = b[3], b[2], b[1], b[0]
			}
		}
		w.writeBytes(b, 8*len(b))
		return nil
	case "integer":
		if unit == 0 {
			unit = 1
		}
		bits := int64(8)
		if s.hasSize {
			if !s.size.IsInt64() || s.size.Int64()*int64(unit) > int64(p.maxBits) {
				return p.errAt(s.sizeTok, "bad term: segment too large")
			}
			bits = s.size.Int64() * int64(unit)
		}
		var n *big.Int
		switch x := v.(type) {
		case int64:
			n = big.NewInt(x)
		case *big.Int:
			n = x
		default:
			return bad("an integer segment needs an integer")
		}
		w.writeInt(n, int(bits), s.little)
		return nil
	case "float":
		if unit == 0 {
			unit = 1
		}
		bits := int64(64)
		if s.hasSize {
			bits = -1
			if s.size.IsInt64() {
				bits = s.size.Int64() * int64(unit)
			}
		}
		var f float64
		switch x := v.(type) {
		case float64:
			f = x
		case int64:
			f = float64(x)
		case *big.Int:
			f, _ = new(big.Float).SetInt(x).Float64()
		default:
			return bad("a float segment needs a number")
		}
		var b []byte
		switch bits {
		case 64:
			b = binaryBE64(math.Float64bits(f))
		case 32:
			if math.Abs(f) > math.MaxFloat32 {
				return bad("float does not fit in 32 bits")
			}
			u := math.Float32bits(float32(f))
			b = []byte{byte(u >> 24), byte(u >> 16), byte(u >> 8), byte(u)}
		case 16:
			h, ok := float16Bits(f)
			if !ok {
				return bad("float does not fit in 16 bits")
			}
			b = []byte{byte(h >> 8), byte(h)}
		default:
			return p.errAt(s.sizeTok, "bad term: float segments are 16, 32 or 64 bits")
		}
		if s.little {
			for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
				b[i], b[j] = b[j], b[i]
			}
		}
		w.writeBytes(b, 8*len(b))
		return nil
	default: // binary, bitstring
		if unit == 0 {
			unit = 8
			if s.typ == "bitstring" {
				unit = 1
			}
		}
		var data []byte
		var nbits int
		switch x := v.(type) {
		case []byte:
			data, nbits = x, 8*len(x)
		case BitBinary:
			data, nbits = x.Bytes, 8*(len(x.Bytes)-1)+int(x.Bits)
		default:
			return bad("a " + s.typ + " segment needs a binary")
		}
		if s.hasSize {
			if !s.size.IsInt64() || s.size.Int64()*int64(unit) > int64(nbits) {
				return bad("the binary is shorter than the segment size")
			}
			nbits = int(s.size.Int64()) * unit
		} else if nbits%unit != 0 {
			return bad("the binary's size is not a multiple of the unit")
		}
		w.writeBytes(data, nbits)
		return nil
	}
}

func binaryBE64(u uint64) []byte {
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = byte(u)
		u >>= 8
	}
	return b
}

// float16Bits converts f to IEEE 754 half precision, rounding to nearest even.
func float16Bits(f float64) (uint16, bool) {
	u := math.Float32bits(float32(f))
	sign := uint16(u>>16) & 0x8000
	exp := int(u>>23&0xFF) - 127 + 15
	mant := u & 0x7FFFFF
	switch {
	case exp >= 31:
		return 0, f == 0
	case exp <= 0:
		if exp < -10 {
			return sign, true
		}
		mant |= 0x800000
		shift := uint(14 - exp)
		h := mant >> shift
		rem := mant & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h), true
	}
	h := uint32(exp)<<10 | mant>>13
	rem := mant & 0x1FFF
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++
	}
	if h >= 0x7C00 {
		return 0, false
	}
	return sign | uint16(h), true
}

// bitWriter accumulates a bitstring.
type bitWriter struct {
	b    []byte
	bits int // total bits written
}

func (w *bitWriter) writeBit(bit byte) {
	if w.bits%8 == 0 {
		w.b = append(w.b, 0)
	}
	if bit != 0 {
		w.b[len(w.b)-1] |= 0x80 >> (w.bits % 8)
	}
	w.bits++
}

// writeBytes writes the first nbits bits of data.
func (w *bitWriter) writeBytes(data []byte, nbits int) {
	if w.bits%8 == 0 {
		w.b = append(w.b, data[:nbits/8]...)
		w.bits += nbits / 8 * 8
	} else {
		off := uint(w.bits % 8)
		for _, c := range data[:nbits/8] {
			w.b[len(w.b)-1] |= c >> off
			w.b = append(w.b, c<<(8-off))
		}
		w.bits += nbits / 8 * 8
	}
	for i := nbits / 8 * 8; i < nbits; i++ {
		w.writeBit(data[i/8] >> (7 - i%8) & 1)
	}
}

// writeInt writes the low bits bits of n (two's complement), big- or little-endian.
func (w *bitWriter) writeInt(n *big.Int, bits int, little bool) {
	if bits == 0 {
		return
	}
	// Two's complement modulo 2^bits.
	m := new(big.Int).Lsh(big.NewInt(1), uint(bits))
	v := new(big.Int).Mod(n, m)
	nbytes := (bits + 7) / 8
	be := v.FillBytes(make([]byte, nbytes)) // big-endian, value in the low bits
	if !little {
		pad := nbytes*8 - bits
		if pad == 0 {
			w.writeBytes(be, bits)
			return
		}
		// Shift the value left by pad bits so that its top bit starts the first byte.
		shifted := new(big.Int).Lsh(v, uint(pad)).FillBytes(make([]byte, nbytes))
		w.writeBytes(shifted, bits)
		return
	}
	// Little-endian: whole bytes from the least significant, then the remaining high bits
	// (as BEAM does for sizes that are not a multiple of 8).
	rest := bits
	for k := nbytes - 1; k >= 0 && rest > 0; k-- {
		if rest >= 8 {
			w.writeBytes([]byte{be[k]}, 8)
			rest -= 8
			continue
		}
		w.writeBytes([]byte{be[k] << (8 - rest)}, rest)
		rest = 0
	}
}

func (w *bitWriter) term() Term {
	if w.bits%8 == 0 {
		if w.b == nil {
			return []byte{}
		}
		return w.b
	}
	return BitBinary{Bytes: w.b, Bits: uint8(w.bits % 8)}
}

// --- scanner ---

var reservedWords = map[string]bool{
	"after": true, "begin": true, "case": true, "try": true, "cond": true, "catch": true, "andalso": true,
	"orelse": true, "end": true, "fun": true, "if": true, "let": true, "of": true, "receive": true,
	"when": true, "bnot": true, "not": true, "div": true, "rem": true, "band": true, "and": true, "bor": true,
	"bxor": true, "bsl": true, "bsr": true, "or": true, "xor": true,
}

func isWhite(c rune) bool { return c >= 0 && c <= ' ' || c >= 0x80 && c <= 0xA0 }

func isAtomStart(c rune) bool { return c >= 'a' && c <= 'z' || c >= 0xDF && c <= 0xFF && c != 0xF7 }

func isVarStart(c rune) bool {
	return c >= 'A' && c <= 'Z' || c == '_' || c >= 0xC0 && c <= 0xDE && c != 0xD7
}

func isNameChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '@' ||
		c >= 0xC0 && c <= 0xFF && c != 0xD7 && c != 0xF7
}

type scanner struct {
	src       []rune
	i         int
	line, col int
}

func (s *scanner) errHere(msg string) *SyntaxError {
	return &SyntaxError{Line: s.line, Column: s.col, Msg: msg}
}

func (s *scanner) at(k int) rune {
	if s.i+k < len(s.src) {
		return s.src[s.i+k]
	}
	return -1
}

func (s *scanner) advance() rune {
	c := s.src[s.i]
	s.i++
	if c == '\n' {
		s.line++
		s.col = 1
	} else {
		s.col++
	}
	return c
}

func newParser(src string) (*parser, error) {
	if !utf8.ValidString(src) {
		return nil, &SyntaxError{Line: 1, Column: 1, Msg: "the text is not valid UTF-8"}
	}
	s := &scanner{src: []rune(src), line: 1, col: 1}
	var toks []token
	for {
		t, err := s.token()
		if err != nil {
			return nil, err
		}
		toks = append(toks, t)
		if t.kind == tkEOF {
			return &parser{toks: toks, maxBits: 8 * (maxParsedBinary + len(src))}, nil
		}
	}
}

func (s *scanner) token() (token, error) {
	for s.i < len(s.src) {
		c := s.src[s.i]
		if isWhite(c) {
			s.advance()
			continue
		}
		if c == '%' {
			for s.i < len(s.src) && s.src[s.i] != '\n' {
				s.advance()
			}
			continue
		}
		break
	}
	t := token{line: s.line, col: s.col}
	if s.i >= len(s.src) {
		t.text = "end of input"
		return t, nil
	}
	start := s.i
	c := s.src[s.i]
	switch {
	case isAtomStart(c):
		for s.i < len(s.src) && isNameChar(s.src[s.i]) {
			s.advance()
		}
		if s.i-start > maxAtomChars {
			return t, &SyntaxError{Line: t.line, Column: t.col, Msg: "atom too long (more than 255 characters)"}
		}
		t.atom = string(s.src[start:s.i])
		t.text = t.atom
		t.kind = tkAtom
		if reservedWords[t.atom] {
			t.kind = tkKeyword
		}
		return t, nil
	case isVarStart(c):
		for s.i < len(s.src) && isNameChar(s.src[s.i]) {
			s.advance()
		}
		t.text, t.kind = string(s.src[start:s.i]), tkVar
		return t, nil
	case c >= '0' && c <= '9':
		return s.number(t)
	case c == '\'':
		s.advance()
		r, err := s.quoted('\'', t)
		if err != nil {
			return t, err
		}
		if len(r) > maxAtomChars {
			return t, &SyntaxError{Line: t.line, Column: t.col, Msg: "atom too long (more than 255 characters)"}
		}
		t.kind, t.atom, t.text = tkAtom, string(r), string(s.src[start:s.i])
		return t, nil
	case c == '"' && s.at(1) == '"' && s.at(2) == '"':
		r, err := s.tripleQuoted(t)
		if err != nil {
			return t, err
		}
		t.kind, t.runes, t.text = tkString, r, string(s.src[start:s.i])
		return t, nil
	case c == '~':
		return s.sigil(t)
	case c == '"':
		s.advance()
		r, err := s.quoted('"', t)
		if err != nil {
			return t, err
		}
		t.kind, t.runes, t.text = tkString, r, string(s.src[start:s.i])
		return t, nil
	case c == '$':
		s.advance()
		if s.i >= len(s.src) {
			return t, s.errHere("unterminated character")
		}
		var ch rune
		if s.src[s.i] == '\\' {
			s.advance()
			var err error
			if ch, err = s.escape(); err != nil {
				return t, err
			}
		} else {
			ch = s.advance()
		}
		t.kind, t.i, t.text = tkChar, big.NewInt(int64(ch)), string(s.src[start:s.i])
		return t, nil
	case c == '.':
		n := s.at(1)
		if n == -1 || isWhite(n) || n == '%' {
			s.advance()
			t.kind, t.text = tkDot, "'.'"
			return t, nil
		}
	}
	for _, p := range []string{"<<", ">>", "=>", ":=", "...", "..", "::", "->", "=<", ">=", "<=", "=:=", "=/=", "==", "/=", "++", "--", "||"} {
		if strings.HasPrefix(string(s.src[s.i:min(s.i+3, len(s.src))]), p) {
			for range p {
				s.advance()
			}
			t.kind, t.text = tkPunct, p
			return t, nil
		}
	}
	if c < 128 && strings.ContainsRune("{}[]()|,#:/-+=<>!?;*^`~&.", c) {
		s.advance()
		t.kind, t.text = tkPunct, string(c)
		return t, nil
	}
	return t, s.errHere("illegal character " + strconv.QuoteRune(c))
}

// sigilClose maps a sigil's opening delimiter to its closing one (OTP 27 sigils).
var sigilClose = map[rune]rune{'"': '"', '(': ')', '[': ']', '{': '}', '<': '>', '/': '/', '|': '|', '\'': '\'', '`': '`', '#': '#'}

// sigil scans ~"...", ~b"...", ~B"...", ~s"..." or ~S"..." (OTP 27): b and the empty prefix make a
// UTF-8 binary, s a string; the uppercase forms take their text verbatim, the others process escapes.
func (s *scanner) sigil(t token) (token, error) {
	start := s.i
	s.advance() // ~
	var prefix []rune
	for s.i < len(s.src) && isNameChar(s.src[s.i]) {
		prefix = append(prefix, s.advance())
	}
	p := string(prefix)
	if p != "" && p != "b" && p != "B" && p != "s" && p != "S" {
		return t, &SyntaxError{Line: t.line, Column: t.col, Msg: "sigil ~" + p + " is not a term"}
	}
	open := s.at(0)
	closeCh, ok := sigilClose[open]
	if !ok {
		return t, s.errHere("a sigil needs a delimiter")
	}
	if open == '"' && s.at(1) == '"' && s.at(2) == '"' {
		return t, s.errHere("triple-quoted sigils are not supported")
	}
	s.advance()
	var r []rune
	for {
		if s.i >= len(s.src) {
			return t, &SyntaxError{Line: t.line, Column: t.col, Msg: "unterminated sigil"}
		}
		c := s.advance()
		if c == closeCh {
			break
		}
		if c == '\\' && p != "B" && p != "S" {
			e, err := s.escape()
			if err != nil {
				return t, err
			}
			r = append(r, e)
			continue
		}
		r = append(r, c)
	}
	if s.i < len(s.src) && isNameChar(s.src[s.i]) {
		return t, s.errHere("sigil suffixes are not supported")
	}
	t.text, t.runes = string(s.src[start:s.i]), r
	if p == "s" || p == "S" {
		t.kind = tkString
	} else {
		t.kind = tkBinary
	}
	return t, nil
}

// tripleQuoted scans a triple-quoted string (OTP 27): the text between a line ending in """ and a line
// holding only """, verbatim, with the closing line's indentation removed from every line.
func (s *scanner) tripleQuoted(t token) ([]rune, error) {
	for range 3 {
		s.advance()
	}
	for s.i < len(s.src) && s.src[s.i] != '\n' {
		if c := s.advance(); c != ' ' && c != '\t' {
			return nil, &SyntaxError{Line: t.line, Column: t.col, Msg: "text after the opening \"\"\" of a triple-quoted string"}
		}
	}
	var lines [][]rune
	for {
		if s.i >= len(s.src) {
			return nil, &SyntaxError{Line: t.line, Column: t.col, Msg: "unterminated triple-quoted string"}
		}
		s.advance() // the newline
		lineStart := s.i
		for s.i < len(s.src) && s.src[s.i] != '\n' {
			s.advance()
		}
		line := s.src[lineStart:s.i]
		trimmed := strings.TrimLeft(string(line), " \t")
		if strings.HasPrefix(trimmed, `"""`) {
			indent := line[:len(line)-len([]rune(trimmed))]
			// Put the scanner just after the closing quotes.
			back := len([]rune(trimmed)) - 3
			for range back {
				s.i--
				s.col--
			}
			out := []rune{}
			for k, l := range lines {
				if k > 0 {
					out = append(out, '\n')
				}
				if len(strings.TrimSpace(string(l))) == 0 {
					continue
				}
				if !strings.HasPrefix(string(l), string(indent)) {
					return nil, &SyntaxError{Line: t.line + 1 + k, Column: 1, Msg: "line not indented like the closing \"\"\""}
				}
				out = append(out, l[len(indent):]...)
			}
			return out, nil
		}
		lines = append(lines, line)
	}
}

// number scans an integer, based integer or float.
func (s *scanner) number(t token) (token, error) {
	start := s.i
	digits := func(ok func(rune) bool) (string, error) {
		var b strings.Builder
		for {
			c := s.at(0)
			if ok(c) {
				b.WriteRune(s.advance())
				continue
			}
			if c == '_' && ok(s.at(1)) && b.Len() > 0 {
				s.advance()
				continue
			}
			return b.String(), nil
		}
	}
	dec := func(c rune) bool { return c >= '0' && c <= '9' }
	intPart, _ := digits(dec)
	if s.at(0) == '#' {
		base, err := strconv.Atoi(intPart)
		if err != nil || base < 2 || base > 36 {
			return t, &SyntaxError{Line: t.line, Column: t.col, Msg: "illegal base '" + intPart + "'"}
		}
		s.advance()
		ds, _ := digits(func(c rune) bool {
			var v int
			switch {
			case c >= '0' && c <= '9':
				v = int(c - '0')
			case c >= 'a' && c <= 'z':
				v = int(c-'a') + 10
			case c >= 'A' && c <= 'Z':
				v = int(c-'A') + 10
			default:
				return false
			}
			return v < base
		})
		if ds == "" {
			return t, &SyntaxError{Line: t.line, Column: t.col, Msg: "illegal integer"}
		}
		v, ok := new(big.Int).SetString(ds, base)
		if !ok {
			return t, &SyntaxError{Line: t.line, Column: t.col, Msg: "illegal integer"}
		}
		t.kind, t.i, t.text = tkInt, v, string(s.src[start:s.i])
		return t, nil
	}
	if s.at(0) == '.' && dec(s.at(1)) {
		s.advance()
		frac, _ := digits(dec)
		text := intPart + "." + frac
		if c := s.at(0); c == 'e' || c == 'E' {
			save := *s
			s.advance()
			sign := ""
			if c := s.at(0); c == '+' || c == '-' {
				sign = string(s.advance())
			}
			exp, _ := digits(dec)
			if exp == "" {
				*s = save // "1.0e" is 1.0 followed by the atom e
			} else {
				text += "e" + sign + exp
			}
		}
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return t, &SyntaxError{Line: t.line, Column: t.col, Msg: "illegal float"}
		}
		t.kind, t.f, t.text = tkFloat, f, string(s.src[start:s.i])
		return t, nil
	}
	v, _ := new(big.Int).SetString(intPart, 10)
	t.kind, t.i, t.text = tkInt, v, string(s.src[start:s.i])
	return t, nil
}

// quoted scans the rest of a quoted atom or string up to the closing quote q.
func (s *scanner) quoted(q rune, t token) ([]rune, error) {
	var out []rune
	for {
		if s.i >= len(s.src) {
			what := "string"
			if q == '\'' {
				what = "atom"
			}
			return nil, &SyntaxError{Line: t.line, Column: t.col, Msg: "unterminated " + what}
		}
		c := s.advance()
		switch c {
		case q:
			return out, nil
		case '\\':
			e, err := s.escape()
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		default:
			out = append(out, c)
		}
	}
}

// escape scans an escape sequence after its backslash.
func (s *scanner) escape() (rune, error) {
	if s.i >= len(s.src) {
		return 0, s.errHere("unterminated escape sequence")
	}
	isOct := func(c rune) bool { return c >= '0' && c <= '7' }
	hexVal := func(c rune) int {
		switch {
		case c >= '0' && c <= '9':
			return int(c - '0')
		case c >= 'a' && c <= 'f':
			return int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			return int(c-'A') + 10
		}
		return -1
	}
	c := s.src[s.i]
	switch {
	case isOct(c):
		v := 0
		for k := 0; k < 3 && isOct(s.at(0)); k++ {
			v = v*8 + int(s.advance()-'0')
		}
		return rune(v), nil
	case c == 'x':
		s.advance()
		if s.at(0) == '{' {
			s.advance()
			v := 0
			n := 0
			for hexVal(s.at(0)) >= 0 {
				v = v*16 + hexVal(s.advance())
				n++
				if v > utf8.MaxRune {
					return 0, s.errHere("illegal character in \\x{...}")
				}
			}
			if s.at(0) != '}' || n == 0 {
				return 0, s.errHere("illegal \\x{...} escape")
			}
			s.advance()
			if v >= 0xD800 && v <= 0xDFFF {
				return 0, s.errHere("illegal character (a surrogate)")
			}
			return rune(v), nil
		}
		if hexVal(s.at(0)) >= 0 && hexVal(s.at(1)) >= 0 {
			v := hexVal(s.advance()) * 16
			v += hexVal(s.advance())
			return rune(v), nil
		}
		return 0, s.errHere("illegal \\x escape")
	case c == '^':
		s.advance()
		if s.i >= len(s.src) {
			return 0, s.errHere("unterminated escape sequence")
		}
		return s.advance() & 31, nil
	}
	s.advance()
	switch c {
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'v':
		return '\v', nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'e':
		return 27, nil
	case 's':
		return ' ', nil
	case 'd':
		return 127, nil
	}
	return c, nil
}
