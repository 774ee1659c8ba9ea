package etf

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Format prints t on one line as io_lib:format("~0tp", [T]) prints it in a default erl (printable
// range latin1) of the newest OTP releases, so that Parse reads the text back to an equal term (pids,
// ports, references and local funs excepted). See FormatOptions.Format for the rules.
func Format(t Term) string { return FormatOptions{}.Format(t) }

// FormatOptions selects the OTP release whose ~0tp output Format matches.
type FormatOptions struct {
	// Release is the OTP major release (25, 26, 27, ...); 0 means the newest. It matters for the atoms
	// maybe and else only: OTP 27 made them reserved words (the maybe expression), so from 27 on they
	// print quoted, and before it bare.
	Release int
}

// Format prints t as io_lib:format("~0tp", [T]) does on the chosen release:
//
//   - Integers in decimal; floats in the shortest form that reads back exactly, as float_to_list(F,
//     [short]) writes it (1.0, 0.1, 1.0e10, 1.0e-10, 123456.0, 1.2e-4, 9.007199254740992e15).
//   - Atoms bare when they start with a lowercase letter (a-z, ß-ÿ but ÷) and hold only letters
//     (Latin-1 ones too), digits, _ and @, and are not reserved words; otherwise in single quotes,
//     escaping ' and \ and writing control characters as \n, \t, ..., \d or octal \NNN. Characters from
//     U+00A0 up print as themselves.
//   - A proper list of integers that are all printable Latin-1 characters (32..126, 160..255, \n \r \t
//     \v \b \f \e) prints as a string "..." with the same escapes; any other list as [A,B,C] or [A,B|T]
//     (no spaces). "" and [] print as [].
//   - A binary prints as <<"...">> when it is valid UTF-8 made only of ASCII printable characters, as
//     <<"..."/utf8>> when it is valid UTF-8 whose characters are printable Latin-1 ones (é), as
//     <<"...">> of Latin-1 characters when it is not UTF-8 but every byte is printable Latin-1, and as
//     <<1,2,3>> otherwise. A bitstring prints its whole bytes as numbers and then the rest as V:Bits
//     (<<97,98,1:3>>).
//   - Tuples {A,B}; maps #{K => V,K2 => V2}. Map entries print in map-key order (Compare, integers
//     before floats), which is how BEAM prints maps of up to 32 keys on OTP 25, and what ~0tkp prints
//     on OTP 26 and later; plain ~p on OTP 26+ follows the map's internal order, which for atom keys
//     depends on the atom table and cannot be reproduced.
//   - External funs print as fun m:f/1, which Parse reads back, with BEAM's own quoting of its atoms
//     (fun lists:and/0; see funAtom). Pids, ports, references and local funs print
//     in BEAM's shape with the node name in place of BEAM's node index: <node@host.ID.Serial>,
//     #Port<node@host.ID>, #Ref<node@host.W2.W1.W0> (words from the last), #Fun<Module.Index.Uniq>;
//     these do not read back.
//   - A Go value that is not a term prints as #Go<type>.
//
// Format uses no recursion for nesting, so any depth prints.
func (o FormatOptions) Format(t Term) string {
	var sb strings.Builder
	f := formatter{sb: &sb, newAtoms: o.Release == 0 || o.Release >= 27}
	f.run(t)
	return sb.String()
}

type fmtItem struct {
	t   Term
	lit string
	raw bool // lit is text to write
}

type formatter struct {
	sb       *strings.Builder
	newAtoms bool
	stack    []fmtItem
}

func (f *formatter) lit(s string) { f.stack = append(f.stack, fmtItem{lit: s, raw: true}) }
func (f *formatter) term(t Term)  { f.stack = append(f.stack, fmtItem{t: t}) }

func (f *formatter) run(t Term) {
	f.term(t)
	for len(f.stack) > 0 {
		it := f.stack[len(f.stack)-1]
		f.stack = f.stack[:len(f.stack)-1]
		if it.raw {
			f.sb.WriteString(it.lit)
			continue
		}
		f.one(it.t)
	}
}

// one writes a scalar, or the opening of a container with its rest pushed (in reverse) on the stack.
func (f *formatter) one(t Term) {
	sb := f.sb
	switch v := t.(type) {
	case nil:
		sb.WriteString("[]")
	case Atom:
		f.atom(string(v))
	case bool:
		if v {
			sb.WriteString("true")
		} else {
			sb.WriteString("false")
		}
	case int:
		sb.WriteString(strconv.FormatInt(int64(v), 10))
	case int8:
		sb.WriteString(strconv.FormatInt(int64(v), 10))
	case int16:
		sb.WriteString(strconv.FormatInt(int64(v), 10))
	case int32:
		sb.WriteString(strconv.FormatInt(int64(v), 10))
	case int64:
		sb.WriteString(strconv.FormatInt(v, 10))
	case uint:
		sb.WriteString(strconv.FormatUint(uint64(v), 10))
	case uint8:
		sb.WriteString(strconv.FormatUint(uint64(v), 10))
	case uint16:
		sb.WriteString(strconv.FormatUint(uint64(v), 10))
	case uint32:
		sb.WriteString(strconv.FormatUint(uint64(v), 10))
	case uint64:
		sb.WriteString(strconv.FormatUint(v, 10))
	case *big.Int:
		if v == nil {
			sb.WriteString("#Go<nil *big.Int>")
			return
		}
		sb.WriteString(v.String())
	case float64:
		sb.WriteString(FormatFloat(v))
	case float32:
		sb.WriteString(FormatFloat(float64(v)))
	case Tuple:
		sb.WriteByte('{')
		f.lit("}")
		f.seq(v)
	case Map:
		if len(v) == 0 {
			sb.WriteString("#{}")
			return
		}
		sb.WriteString("#{")
		m := sortedMap(v)
		f.lit("}")
		for i := len(m) - 1; i >= 0; i-- {
			f.term(m[i].Value)
			f.lit(" => ")
			f.term(m[i].Key)
			if i > 0 {
				f.lit(",")
			}
		}
	case List, String, ImproperList:
		f.list(t)
	case []byte:
		f.binary(v)
	case string:
		f.binary([]byte(v))
	case BitBinary:
		if len(v.Bytes) == 0 || v.Bits == 8 || v.Bits == 0 {
			f.binary(v.Bytes)
			return
		}
		sb.WriteString("<<")
		for _, c := range v.Bytes[:len(v.Bytes)-1] {
			sb.WriteString(strconv.Itoa(int(c)))
			sb.WriteByte(',')
		}
		last := v.Bytes[len(v.Bytes)-1] >> (8 - v.Bits)
		sb.WriteString(strconv.Itoa(int(last)) + ":" + strconv.Itoa(int(v.Bits)) + ">>")
	case Pid:
		sb.WriteByte('<')
		sb.WriteString(string(v.Node))
		fmt.Fprintf(sb, ".%d.%d>", v.ID, v.Serial)
	case Port:
		sb.WriteString("#Port<")
		sb.WriteString(string(v.Node))
		fmt.Fprintf(sb, ".%d>", v.ID)
	case Ref:
		sb.WriteString("#Ref<")
		sb.WriteString(string(v.Node))
		n := min(int(v.Len), len(v.ID))
		for i := n - 1; i >= 0; i-- {
			fmt.Fprintf(sb, ".%d", v.ID[i])
		}
		sb.WriteByte('>')
	case Export:
		sb.WriteString("fun ")
		f.funAtom(string(v.Module))
		sb.WriteByte(':')
		f.funAtom(string(v.Function))
		sb.WriteString("/" + strconv.Itoa(int(v.Arity)))
	case Fun:
		sb.WriteString("#Fun<" + funName(v.Raw) + ">")
	default:
		fmt.Fprintf(sb, "#Go<%T>", t)
	}
}

// seq pushes elems separated by commas.
func (f *formatter) seq(elems []Term) {
	for i := len(elems) - 1; i >= 0; i-- {
		f.term(elems[i])
		if i > 0 {
			f.lit(",")
		}
	}
}

func (f *formatter) list(t Term) {
	it := newListIter(t)
	var elems []Term
	for {
		e, ok := it.next()
		if !ok {
			break
		}
		elems = append(elems, e)
	}
	tail := it.tail
	if len(elems) == 0 {
		if tail == nil {
			f.sb.WriteString("[]")
			return
		}
		f.term(tail) // an ImproperList of no elements is its tail
		return
	}
	if tail == nil {
		if r, ok := printableList(elems); ok {
			writeString(f.sb, r, '"')
			return
		}
	}
	f.sb.WriteByte('[')
	f.lit("]")
	if tail != nil {
		f.term(tail)
		f.lit("|")
	}
	f.seq(elems)
}

// printableList returns the characters of a list io_lib:printable_latin1_list/1 accepts.
func printableList(elems []Term) ([]rune, bool) {
	r := make([]rune, len(elems))
	for i, e := range elems {
		n := toNumber(e)
		if _, isInt := numberKinds(e); !isInt || n.isBig || !printableLatin1(n.small) {
			return nil, false
		}
		r[i] = rune(n.small)
	}
	return r, true
}

// numberKinds reports whether e is a number and whether it is an integer.
func numberKinds(e Term) (isNum, isInt bool) {
	switch e.(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, *big.Int:
		return true, true
	case float64, float32:
		return true, false
	}
	return false, false
}

func printableLatin1(c int64) bool {
	switch {
	case c >= 32 && c <= 126, c >= 160 && c <= 255:
		return true
	case c == '\n', c == '\r', c == '\t', c == '\v', c == '\b', c == '\f', c == 27:
		return true
	}
	return false
}

func (f *formatter) binary(b []byte) {
	sb := f.sb
	if len(b) == 0 {
		sb.WriteString("<<>>")
		return
	}
	if utf8.Valid(b) {
		r := []rune(string(b))
		ok := true
		for _, c := range r {
			if !printableLatin1(int64(c)) {
				ok = false
				break
			}
		}
		if ok {
			sb.WriteString("<<")
			writeString(sb, r, '"')
			if len(r) != len(b) {
				sb.WriteString("/utf8")
			}
			sb.WriteString(">>")
			return
		}
	} else {
		ok := true
		for _, c := range b {
			if !printableLatin1(int64(c)) {
				ok = false
				break
			}
		}
		if ok {
			r := make([]rune, len(b))
			for i, c := range b {
				r[i] = rune(c)
			}
			sb.WriteString("<<")
			writeString(sb, r, '"')
			sb.WriteString(">>")
			return
		}
	}
	sb.WriteString("<<")
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(int(c)))
	}
	sb.WriteString(">>")
}

// writeString writes r in quotes q with io_lib:write_string/2's escapes.
func writeString(sb *strings.Builder, r []rune, q rune) {
	sb.WriteRune(q)
	for _, c := range r {
		switch {
		case c == q:
			sb.WriteByte('\\')
			sb.WriteRune(q)
		case c == '\\':
			sb.WriteString(`\\`)
		case c >= ' ' && c <= '~', c >= 0xA0:
			sb.WriteRune(c)
		case c == '\n':
			sb.WriteString(`\n`)
		case c == '\r':
			sb.WriteString(`\r`)
		case c == '\t':
			sb.WriteString(`\t`)
		case c == '\v':
			sb.WriteString(`\v`)
		case c == '\b':
			sb.WriteString(`\b`)
		case c == '\f':
			sb.WriteString(`\f`)
		case c == 27:
			sb.WriteString(`\e`)
		case c == 127:
			sb.WriteString(`\d`)
		default:
			sb.WriteByte('\\')
			sb.WriteByte(byte('0' + c>>6))
			sb.WriteByte(byte('0' + c>>3&7))
			sb.WriteByte(byte('0' + c&7))
		}
	}
	sb.WriteRune(q)
}

func (f *formatter) atom(a string) {
	if atomNeedsQuotes(a, f.newAtoms) {
		writeString(f.sb, []rune(a), '\'')
		return
	}
	f.sb.WriteString(a)
}

// funAtom writes an atom of an external fun as BEAM's own printer does (erlang:fun_to_list/1): ASCII
// atoms bare when they match [a-z][a-zA-Z0-9_]*, reserved words included, and quoted otherwise. BEAM
// prints the UTF-8 bytes of other atoms as Latin-1 characters; those get io_lib's rules here instead.
func (f *formatter) funAtom(a string) {
	ascii, bare := true, a != ""
	for i := 0; i < len(a); i++ {
		c := a[i]
		switch {
		case c >= utf8.RuneSelf:
			ascii = false
		case c >= 'a' && c <= 'z':
		case i > 0 && (c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'):
		default:
			bare = false
		}
	}
	if !ascii {
		f.atom(a)
		return
	}
	if bare {
		f.sb.WriteString(a)
		return
	}
	writeString(f.sb, []rune(a), '\'')
}

func isNameRune(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 0xDF && c <= 0xFF && c != 0xF7 || c >= 'A' && c <= 'Z' ||
		c >= 0xC0 && c <= 0xDE && c != 0xD7 || c >= '0' && c <= '9' || c == '_' || c == '@'
}

// atomNeedsQuotes is io_lib:quote_atom/2; newAtoms adds OTP 27's maybe and else to the reserved words.
func atomNeedsQuotes(a string, newAtoms bool) bool {
	if reservedWords[a] || newAtoms && (a == "maybe" || a == "else") {
		return true
	}
	first := true
	for _, c := range a {
		if first {
			if !(c >= 'a' && c <= 'z' || c >= 0xDF && c <= 0xFF && c != 0xF7) {
				return true
			}
			first = false
			continue
		}
		if !isNameRune(c) {
			return true
		}
	}
	return first // the empty atom is ''
}

// FormatFloat writes f as erlang:float_to_list(F, [short]) does: the shortest digits that read back
// exactly, in plain notation when the decimal exponent is small enough (100.0, 0.0001, 12340.0) and
// with an exponent otherwise (1.0e3, 1.2e-4, 9.007199254740992e15).
func FormatFloat(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	neg := math.Signbit(f)
	if neg {
		f = -f
	}
	var digits string
	var exp int // the value is digits × 10^exp
	if f == 0 {
		digits, exp = "0", 0
	} else {
		e := strconv.FormatFloat(f, 'e', -1, 64) // d.ddddde±XX
		mant, ex, _ := strings.Cut(e, "e")
		digits = strings.Replace(mant, ".", "", 1)
		x, _ := strconv.Atoi(ex)
		exp = x - (len(digits) - 1)
	}
	n := len(digits)
	sciExp := exp + n - 1
	lower, upper := -(n + 2), 1
	switch {
	case n == 1:
		lower, upper = -4, 2
	case sciExp >= 10:
		upper = 2
	}
	fixed := lower <= exp && exp <= upper
	if fixed {
		// Integers beyond 2^53 print with an exponent: their last digits carry no precision.
		m, _ := strconv.ParseUint(digits, 10, 64)
		if m >= 1<<53 && exp == 0 || m > (1<<52)/5 && exp == 1 || m > (1<<51)/25 && exp == 2 {
			fixed = false
		}
	}
	var sb strings.Builder
	if neg {
		sb.WriteByte('-')
	}
	switch {
	case fixed && exp >= 0:
		sb.WriteString(digits)
		sb.WriteString(strings.Repeat("0", exp))
		sb.WriteString(".0")
	case fixed && n+exp > 0:
		sb.WriteString(digits[:n+exp])
		sb.WriteByte('.')
		sb.WriteString(digits[n+exp:])
	case fixed:
		sb.WriteString("0.")
		sb.WriteString(strings.Repeat("0", -(n + exp)))
		sb.WriteString(digits)
	default:
		sb.WriteByte(digits[0])
		sb.WriteByte('.')
		if n == 1 {
			sb.WriteByte('0')
		} else {
			sb.WriteString(digits[1:])
		}
		sb.WriteByte('e')
		sb.WriteString(strconv.Itoa(sciExp))
	}
	return sb.String()
}

// funName is Module.OldIndex.OldUniq of a NEW_FUN_EXT, as BEAM prints a local fun, or "?".
func funName(raw []byte) string {
	// Tag, Size, Arity, Uniq[16], Index, NumFree, then Module, OldIndex, OldUniq as terms.
	const fixed = 1 + 4 + 1 + 16 + 4 + 4
	if len(raw) < fixed {
		return "?"
	}
	rest := raw[fixed:]
	mod, n, err := DecodeTerm(rest)
	if err != nil {
		return "?"
	}
	rest = rest[n:]
	idx, n, err := DecodeTerm(rest)
	if err != nil {
		return "?"
	}
	uniq, _, err := DecodeTerm(rest[n:])
	if err != nil {
		return "?"
	}
	a, ok := mod.(Atom)
	if !ok {
		return "?"
	}
	var sb strings.Builder
	f := formatter{sb: &sb, newAtoms: true}
	f.atom(string(a))
	u, _ := uniq.(int64)
	i, _ := idx.(int64)
	fmt.Fprintf(&sb, ".%d.%d", i, uint32(u))
	return sb.String()
}
