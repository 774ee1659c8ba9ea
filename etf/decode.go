package etf

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/big"
	"strconv"
	"unicode/utf8"
)

// Decode decodes one term that starts with the version byte 131; n is the number of bytes consumed.
// Bytes after the term are left alone. Errors are *DecodeError.
func Decode(b []byte) (t Term, n int, err error) {
	if len(b) == 0 {
		return nil, 0, &DecodeError{Offset: 0, Reason: "empty input, expected version byte 131", Err: ErrTruncated}
	}
	if b[0] != VersionTag {
		return nil, 0, &DecodeError{Offset: 0, Reason: "version byte is " + strconv.Itoa(int(b[0])) + ", not 131", Err: ErrInvalid}
	}
	d := decoder{b: b}
	t, n, err = d.term(1, 0)
	if err != nil {
		return nil, 0, err
	}
	return t, n, nil
}

// DecodeTerm decodes one term with no version byte; n is the number of bytes consumed.
// Errors are *DecodeError.
func DecodeTerm(b []byte) (t Term, n int, err error) {
	d := decoder{b: b}
	t, n, err = d.term(0, 0)
	if err != nil {
		return nil, 0, err
	}
	return t, n, nil
}

type decoder struct {
	b []byte
}

// emptyList is what NIL_EXT decodes to; sharing it avoids an allocation per [].
var emptyList Term = List{}

func (d *decoder) fail(off int, sentinel error, reason string) error {
	return &DecodeError{Offset: off, Reason: reason, Err: sentinel}
}

// need checks that n bytes are available at off, without converting n to int first (it may be 4 GiB).
func (d *decoder) need(off int, n uint64, what string) error {
	if rem := len(d.b) - off; rem < 0 || n > uint64(rem) {
		return d.fail(off, ErrTruncated, what+" needs "+strconv.FormatUint(n, 10)+
			" bytes, "+strconv.Itoa(len(d.b)-off)+" left")
	}
	return nil
}

func (d *decoder) u16(off int) uint64 { return uint64(binary.BigEndian.Uint16(d.b[off:])) }
func (d *decoder) u32(off int) uint64 { return uint64(binary.BigEndian.Uint32(d.b[off:])) }

// term decodes the term at i; depth counts the containers around it. It returns the offset after the term.
func (d *decoder) term(i int, depth int) (Term, int, error) {
	if i >= len(d.b) {
		return nil, i, d.fail(i, ErrTruncated, "missing tag byte")
	}
	switch tag := d.b[i]; tag {
	case tagSmallInteger:
		if err := d.need(i, 2, "SMALL_INTEGER_EXT"); err != nil {
			return nil, i, err
		}
		return int64(d.b[i+1]), i + 2, nil
	case tagInteger:
		if err := d.need(i, 5, "INTEGER_EXT"); err != nil {
			return nil, i, err
		}
		return int64(int32(binary.BigEndian.Uint32(d.b[i+1:]))), i + 5, nil
	case tagNewFloat:
		if err := d.need(i, 9, "NEW_FLOAT_EXT"); err != nil {
			return nil, i, err
		}
		f := math.Float64frombits(binary.BigEndian.Uint64(d.b[i+1:]))
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, i, d.fail(i, ErrInvalid, "float is NaN or infinite")
		}
		return f, i + 9, nil
	case tagFloat:
		return d.oldFloat(i)
	case tagAtom, tagSmallAtom, tagAtomUTF8, tagSmallAtomUTF8:
		_, t, j, err := d.atom(i)
		return t, j, err
	case tagNewPid, tagPid:
		return d.pid(i)
	case tagNewPort, tagPort, tagV4Port:
		return d.port(i)
	case tagNewerReference, tagNewReference, tagReference:
		return d.ref(i)
	case tagSmallTuple, tagLargeTuple:
		return d.tuple(i, depth)
	case tagNil:
		return emptyList, i + 1, nil
	case tagString:
		if err := d.need(i, 3, "STRING_EXT"); err != nil {
			return nil, i, err
		}
		n := d.u16(i + 1)
		if err := d.need(i+3, n, "STRING_EXT"); err != nil {
			return nil, i, err
		}
		j := i + 3 + int(n)
		if n == 0 {
			return emptyList, j, nil // "" is [] in Erlang
		}
		return String(d.b[i+3 : j]), j, nil
	case tagList:
		return d.list(i, depth)
	case tagBinary:
		if err := d.need(i, 5, "BINARY_EXT"); err != nil {
			return nil, i, err
		}
		n := d.u32(i + 1)
		if err := d.need(i+5, n, "BINARY_EXT"); err != nil {
			return nil, i, err
		}
		j := i + 5 + int(n)
		out := make([]byte, n)
		copy(out, d.b[i+5:j])
		return out, j, nil
	case tagBitBinary:
		return d.bitBinary(i)
	case tagSmallBig, tagLargeBig:
		return d.bigInt(i)
	case tagMap:
		return d.mapTerm(i, depth)
	case tagExport:
		mod, _, j, err := d.atom(i + 1)
		if err != nil {
			return nil, i, err
		}
		fun, _, j, err := d.atom(j)
		if err != nil {
			return nil, i, err
		}
		if err := d.need(j, 2, "EXPORT_EXT arity"); err != nil {
			return nil, i, err
		}
		if d.b[j] != tagSmallInteger {
			return nil, i, d.fail(j, ErrInvalid, "EXPORT_EXT arity is not a SMALL_INTEGER_EXT")
		}
		return Export{Module: mod, Function: fun, Arity: d.b[j+1]}, j + 2, nil
	case tagNewFun:
		if err := d.need(i, 5, "NEW_FUN_EXT"); err != nil {
			return nil, i, err
		}
		size := d.u32(i + 1)
		if size < minFunSize {
			return nil, i, d.fail(i, ErrInvalid, "NEW_FUN_EXT size too small")
		}
		if err := d.need(i+1, size, "NEW_FUN_EXT"); err != nil {
			return nil, i, err
		}
		j := i + 1 + int(size)
		raw := make([]byte, j-i)
		copy(raw, d.b[i:j])
		return Fun{Raw: raw}, j, nil
	case tagAtomCacheRef:
		return nil, i, d.fail(i, ErrUnknownTag, "ATOM_CACHE_REF outside a distribution header")
	case tagCompressed:
		return nil, i, d.fail(i, ErrUnknownTag, "compressed terms are not supported")
	default:
		return nil, i, d.fail(i, ErrUnknownTag, "tag "+strconv.Itoa(int(tag)))
	}
}

// oldFloat decodes FLOAT_EXT: 31 bytes of "%.20e" text, NUL padded.
func (d *decoder) oldFloat(i int) (Term, int, error) {
	if err := d.need(i, 32, "FLOAT_EXT"); err != nil {
		return nil, i, err
	}
	s := d.b[i+1 : i+32]
	if k := bytes.IndexByte(s, 0); k >= 0 {
		s = s[:k]
	}
	f, err := strconv.ParseFloat(string(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, i, d.fail(i, ErrInvalid, "FLOAT_EXT text is not a finite float")
	}
	return f, i + 32, nil
}

// atom decodes any of the four atom encodings at i. It returns the atom, the same atom as a Term (shared
// from the intern table, so returning it does not allocate) and the offset after it.
func (d *decoder) atom(i int) (Atom, Term, int, error) {
	if i >= len(d.b) {
		return "", nil, i, d.fail(i, ErrTruncated, "missing atom tag")
	}
	var n uint64
	var start int
	tag := d.b[i]
	switch tag {
	case tagSmallAtomUTF8, tagSmallAtom:
		if err := d.need(i, 2, "atom"); err != nil {
			return "", nil, i, err
		}
		n, start = uint64(d.b[i+1]), i+2
	case tagAtomUTF8, tagAtom:
		if err := d.need(i, 3, "atom"); err != nil {
			return "", nil, i, err
		}
		n, start = d.u16(i+1), i+3
	default:
		return "", nil, i, d.fail(i, ErrInvalid, "expected an atom, found tag "+strconv.Itoa(int(tag)))
	}
	if err := d.need(start, n, "atom"); err != nil {
		return "", nil, i, err
	}
	end := start + int(n)
	name := d.b[start:end]
	if tag == tagAtom || tag == tagSmallAtom {
		// Latin-1: one character per byte.
		if n > maxAtomChars {
			return "", nil, i, d.fail(i, ErrInvalid, "atom longer than 255 characters")
		}
		if !isASCII(name) {
			u := make([]byte, 0, 2*len(name))
			for _, c := range name {
				u = utf8.AppendRune(u, rune(c))
			}
			name = u
		}
	} else {
		if !utf8.Valid(name) {
			return "", nil, i, d.fail(i, ErrInvalid, "atom is not valid UTF-8")
		}
		if n > maxAtomChars && utf8.RuneCount(name) > maxAtomChars {
			return "", nil, i, d.fail(i, ErrInvalid, "atom longer than 255 characters")
		}
	}
	a, t := intern(name)
	return a, t, end, nil
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func (d *decoder) pid(i int) (Term, int, error) {
	node, _, j, err := d.atom(i + 1)
	if err != nil {
		return nil, i, err
	}
	p := Pid{Node: node}
	if d.b[i] == tagNewPid {
		if err := d.need(j, 12, "NEW_PID_EXT"); err != nil {
			return nil, i, err
		}
		p.ID = binary.BigEndian.Uint32(d.b[j:])
		p.Serial = binary.BigEndian.Uint32(d.b[j+4:])
		p.Creation = binary.BigEndian.Uint32(d.b[j+8:])
		return p, j + 12, nil
	}
	if err := d.need(j, 9, "PID_EXT"); err != nil {
		return nil, i, err
	}
	p.ID = binary.BigEndian.Uint32(d.b[j:])
	p.Serial = binary.BigEndian.Uint32(d.b[j+4:])
	p.Creation = uint32(d.b[j+8])
	return p, j + 9, nil
}

func (d *decoder) port(i int) (Term, int, error) {
	node, _, j, err := d.atom(i + 1)
	if err != nil {
		return nil, i, err
	}
	p := Port{Node: node}
	switch d.b[i] {
	case tagV4Port:
		if err := d.need(j, 12, "V4_PORT_EXT"); err != nil {
			return nil, i, err
		}
		p.ID = binary.BigEndian.Uint64(d.b[j:])
		p.Creation = binary.BigEndian.Uint32(d.b[j+8:])
		return p, j + 12, nil
	case tagNewPort:
		if err := d.need(j, 8, "NEW_PORT_EXT"); err != nil {
			return nil, i, err
		}
		p.ID = uint64(binary.BigEndian.Uint32(d.b[j:]))
		p.Creation = binary.BigEndian.Uint32(d.b[j+4:])
		return p, j + 8, nil
	default:
		if err := d.need(j, 5, "PORT_EXT"); err != nil {
			return nil, i, err
		}
		p.ID = uint64(binary.BigEndian.Uint32(d.b[j:]))
		p.Creation = uint32(d.b[j+4])
		return p, j + 5, nil
	}
}

func (d *decoder) ref(i int) (Term, int, error) {
	var r Ref
	if d.b[i] == tagReference {
		node, _, j, err := d.atom(i + 1)
		if err != nil {
			return nil, i, err
		}
		if err := d.need(j, 5, "REFERENCE_EXT"); err != nil {
			return nil, i, err
		}
		r.Node, r.Len = node, 1
		r.ID[0] = binary.BigEndian.Uint32(d.b[j:])
		r.Creation = uint32(d.b[j+4])
		return r, j + 5, nil
	}
	if err := d.need(i, 3, "reference"); err != nil {
		return nil, i, err
	}
	n := d.u16(i + 1)
	if n == 0 || n > maxRefWords {
		return nil, i, d.fail(i, ErrInvalid, "reference has "+strconv.FormatUint(n, 10)+" words, want 1..5")
	}
	node, _, j, err := d.atom(i + 3)
	if err != nil {
		return nil, i, err
	}
	r.Node, r.Len = node, uint8(n)
	if d.b[i] == tagNewerReference {
		if err := d.need(j, 4+4*n, "NEWER_REFERENCE_EXT"); err != nil {
			return nil, i, err
		}
		r.Creation = binary.BigEndian.Uint32(d.b[j:])
		j += 4
	} else {
		if err := d.need(j, 1+4*n, "NEW_REFERENCE_EXT"); err != nil {
			return nil, i, err
		}
		r.Creation = uint32(d.b[j])
		j++
	}
	for k := range int(n) {
		r.ID[k] = binary.BigEndian.Uint32(d.b[j:])
		j += 4
	}
	return r, j, nil
}

func (d *decoder) tuple(i int, depth int) (Term, int, error) {
	if depth >= MaxDepth {
		return nil, i, d.fail(i, ErrTooDeep, "nesting deeper than "+strconv.Itoa(MaxDepth))
	}
	var n uint64
	var j int
	if d.b[i] == tagSmallTuple {
		if err := d.need(i, 2, "SMALL_TUPLE_EXT"); err != nil {
			return nil, i, err
		}
		n, j = uint64(d.b[i+1]), i+2
	} else {
		if err := d.need(i, 5, "LARGE_TUPLE_EXT"); err != nil {
			return nil, i, err
		}
		n, j = d.u32(i+1), i+5
	}
	// Every element takes at least one byte.
	if err := d.need(j, n, "tuple elements"); err != nil {
		return nil, i, err
	}
	t := make(Tuple, n)
	var err error
	for k := range t {
		if t[k], j, err = d.term(j, depth+1); err != nil {
			return nil, i, err
		}
	}
	return t, j, nil
}

// list decodes LIST_EXT. A tail that is itself a list (LIST_EXT, STRING_EXT or NIL_EXT) is merged, so
// the result is a List exactly when the Erlang list is proper; a list of no elements is its tail.
func (d *decoder) list(i int, depth int) (Term, int, error) {
	if depth >= MaxDepth {
		return nil, i, d.fail(i, ErrTooDeep, "nesting deeper than "+strconv.Itoa(MaxDepth))
	}
	var elems []Term
	j := i
	for {
		if err := d.need(j, 5, "LIST_EXT"); err != nil {
			return nil, i, err
		}
		n := d.u32(j + 1)
		j += 5
		// n elements and a tail, each at least one byte.
		if err := d.need(j, n+1, "list elements"); err != nil {
			return nil, i, err
		}
		if elems == nil {
			elems = make([]Term, 0, n)
		} else {
			elems = growTerms(elems, int(n))
		}
		for range n {
			var e Term
			var err error
			if e, j, err = d.term(j, depth+1); err != nil {
				return nil, i, err
			}
			elems = append(elems, e)
		}
		if j >= len(d.b) {
			return nil, i, d.fail(j, ErrTruncated, "missing list tail")
		}
		switch d.b[j] {
		case tagNil:
			if len(elems) == 0 {
				return emptyList, j + 1, nil
			}
			return List(elems), j + 1, nil
		case tagList:
			continue
		case tagString:
			if err := d.need(j, 3, "STRING_EXT"); err != nil {
				return nil, i, err
			}
			m := d.u16(j + 1)
			if err := d.need(j+3, m, "STRING_EXT"); err != nil {
				return nil, i, err
			}
			if len(elems) == 0 {
				end := j + 3 + int(m)
				if m == 0 {
					return emptyList, end, nil
				}
				return String(d.b[j+3 : end]), end, nil
			}
			elems = growTerms(elems, int(m))
			for _, c := range d.b[j+3 : j+3+int(m)] {
				elems = append(elems, int64(c))
			}
			return List(elems), j + 3 + int(m), nil
		}
		tail, end, err := d.term(j, depth+1)
		if err != nil {
			return nil, i, err
		}
		if len(elems) == 0 {
			return tail, end, nil
		}
		return ImproperList{Elems: elems, Tail: tail}, end, nil
	}
}

// growTerms makes room for n more elements, growing geometrically so that a long chain of list tails
// stays linear.
func growTerms(s []Term, n int) []Term {
	if cap(s)-len(s) >= n {
		return s
	}
	out := make([]Term, len(s), max(len(s)+n, 2*cap(s)))
	copy(out, s)
	return out
}

func (d *decoder) mapTerm(i int, depth int) (Term, int, error) {
	if depth >= MaxDepth {
		return nil, i, d.fail(i, ErrTooDeep, "nesting deeper than "+strconv.Itoa(MaxDepth))
	}
	if err := d.need(i, 5, "MAP_EXT"); err != nil {
		return nil, i, err
	}
	n := d.u32(i + 1)
	j := i + 5
	if err := d.need(j, 2*n, "map entries"); err != nil {
		return nil, i, err
	}
	m := make(Map, n)
	var err error
	for k := range m {
		if m[k].Key, j, err = d.term(j, depth+1); err != nil {
			return nil, i, err
		}
		if m[k].Value, j, err = d.term(j, depth+1); err != nil {
			return nil, i, err
		}
	}
	return m, j, nil
}

// bitBinary decodes BIT_BINARY_EXT. A whole number of bytes decodes as []byte, as BEAM sees it.
func (d *decoder) bitBinary(i int) (Term, int, error) {
	if err := d.need(i, 6, "BIT_BINARY_EXT"); err != nil {
		return nil, i, err
	}
	n := d.u32(i + 1)
	nbits := d.b[i+5]
	if (n == 0 && nbits != 0) || (n > 0 && (nbits == 0 || nbits > 8)) {
		return nil, i, d.fail(i, ErrInvalid, "BIT_BINARY_EXT bit count "+strconv.Itoa(int(nbits))+" out of range")
	}
	if err := d.need(i+6, n, "BIT_BINARY_EXT"); err != nil {
		return nil, i, err
	}
	j := i + 6 + int(n)
	out := make([]byte, n)
	copy(out, d.b[i+6:j])
	if n == 0 || nbits == 8 {
		return out, j, nil
	}
	out[n-1] &= byte(0xFF << (8 - nbits))
	return BitBinary{Bytes: out, Bits: nbits}, j, nil
}

// bigInt decodes SMALL_BIG_EXT and LARGE_BIG_EXT: int64 when the value fits, *big.Int otherwise.
func (d *decoder) bigInt(i int) (Term, int, error) {
	var n uint64
	var j int
	if d.b[i] == tagSmallBig {
		if err := d.need(i, 3, "SMALL_BIG_EXT"); err != nil {
			return nil, i, err
		}
		n, j = uint64(d.b[i+1]), i+2
	} else {
		if err := d.need(i, 6, "LARGE_BIG_EXT"); err != nil {
			return nil, i, err
		}
		n, j = d.u32(i+1), i+5
	}
	neg := d.b[j] != 0
	j++
	if err := d.need(j, n, "big integer digits"); err != nil {
		return nil, i, err
	}
	digits := d.b[j : j+int(n)] // little-endian
	end := j + int(n)
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	if len(digits) <= 8 {
		var mag uint64
		for k := len(digits) - 1; k >= 0; k-- {
			mag = mag<<8 | uint64(digits[k])
		}
		if !neg && mag <= math.MaxInt64 {
			return int64(mag), end, nil
		}
		if neg && mag <= 1<<63 {
			return int64(-mag), end, nil
		}
	}
	be := make([]byte, len(digits))
	for k, c := range digits {
		be[len(be)-1-k] = c
	}
	v := new(big.Int).SetBytes(be)
	if neg {
		v.Neg(v)
	}
	return v, end, nil
}
