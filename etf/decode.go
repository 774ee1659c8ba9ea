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
// Bytes after the term are left alone. Any nesting depth decodes, as with binary_to_term/1 (use
// DecodeOptions.MaxDepth to bound it). Errors are *DecodeError.
func Decode(b []byte) (t Term, n int, err error) {
	return DecodeOptions{}.Decode(b)
}

// DecodeTerm decodes one term with no version byte; n is the number of bytes consumed.
// Errors are *DecodeError.
func DecodeTerm(b []byte) (t Term, n int, err error) {
	return DecodeOptions{}.DecodeTerm(b)
}

// DecodeOptions configures decoding. The zero value accepts every term binary_to_term/1 accepts.
type DecodeOptions struct {
	// MaxDepth, when positive, is the deepest nesting of tuples, lists (improper tails count, chained
	// list segments do not) and maps accepted; deeper input fails with ErrTooDeep. Zero means no limit:
	// decoding uses no recursion, so depth costs heap memory proportional to the input, never stack.
	MaxDepth int
}

// Decode is Decode with these options.
func (o DecodeOptions) Decode(b []byte) (t Term, n int, err error) {
	if len(b) == 0 {
		return nil, 0, &DecodeError{Offset: 0, Reason: "empty input, expected version byte 131", Err: ErrTruncated}
	}
	if b[0] != VersionTag {
		return nil, 0, &DecodeError{Offset: 0, Reason: "version byte is " + strconv.Itoa(int(b[0])) + ", not 131", Err: ErrInvalid}
	}
	d := decoder{b: b, maxDepth: o.MaxDepth}
	t, n, err = d.term(1, 0)
	if err != nil {
		return nil, 0, err
	}
	return t, n, nil
}

// DecodeTerm is DecodeTerm with these options.
func (o DecodeOptions) DecodeTerm(b []byte) (t Term, n int, err error) {
	d := decoder{b: b, maxDepth: o.MaxDepth}
	t, n, err = d.term(0, 0)
	if err != nil {
		return nil, 0, err
	}
	return t, n, nil
}

type decoder struct {
	b        []byte
	maxDepth int
	// pending counts the slots (tuple and list elements, list tails, map keys and values) that open
	// containers still expect, each of which needs at least one more byte of input. A container is
	// allocated only when its own slots fit in what the input has left after those, so the slots
	// allocated at any time never outnumber the input's bytes.
	pending uint64
}

// recurseDepth is how deep containers are decoded (and encoded) by plain recursion, which is fastest
// for ordinary terms; anything deeper goes to the explicit stack of run (appendDeep), so the goroutine
// stack stays small whatever the depth.
const recurseDepth = 64

// term decodes the term at i; depth counts the containers around it. It returns the offset after it.
func (d *decoder) term(i int, depth int) (Term, int, error) {
	if i >= len(d.b) {
		return nil, i, d.fail(i, ErrTruncated, "missing tag byte")
	}
	switch d.b[i] {
	case tagSmallTuple, tagLargeTuple, tagList, tagMap:
		if depth >= recurseDepth {
			return d.run(i, depth)
		}
		if d.maxDepth > 0 && depth >= d.maxDepth {
			return nil, i, d.fail(i, ErrTooDeep, "nesting deeper than "+strconv.Itoa(d.maxDepth))
		}
		switch d.b[i] {
		case tagList:
			return d.list(i, depth)
		case tagMap:
			return d.mapTerm(i, depth)
		default:
			return d.tuple(i, depth)
		}
	}
	return d.scalar(i)
}

func (d *decoder) tuple(i int, depth int) (Term, int, error) {
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
	if err := d.need(j, d.pending+n, "tuple elements"); err != nil {
		return nil, i, err
	}
	d.pending += n
	t := make(Tuple, n)
	var err error
	for k := range t {
		d.pending--
		if t[k], j, err = d.term(j, depth+1); err != nil {
			return nil, i, err
		}
	}
	return t, j, nil
}

// list decodes LIST_EXT. A tail that is itself a list (LIST_EXT, STRING_EXT or NIL_EXT) is merged, so
// the result is a List exactly when the Erlang list is proper; a list of no elements is its tail.
func (d *decoder) list(i int, depth int) (Term, int, error) {
	if err := d.need(i, 5, "LIST_EXT"); err != nil {
		return nil, i, err
	}
	n := d.u32(i + 1)
	j := i + 5
	// n elements and a tail
	if err := d.need(j, d.pending+n+1, "list elements"); err != nil {
		return nil, i, err
	}
	d.pending += n + 1
	f := decFrame{kind: openList, elems: make([]Term, 0, n), n: uint32(n)}
	for {
		for ; f.i < f.n; f.i++ {
			d.pending--
			e, k, err := d.term(j, depth+1)
			if err != nil {
				return nil, i, err
			}
			f.elems, j = append(f.elems, e), k
		}
		t, done, k, err := d.listTail(&f, j, &d.pending)
		if err != nil {
			return nil, i, err
		}
		if done {
			return t, k, nil
		}
		j = k
		if f.kind == openListTail {
			d.pending--
			tail, end, err := d.term(j, depth+1)
			if err != nil {
				return nil, i, err
			}
			if len(f.elems) == 0 {
				return tail, end, nil
			}
			return ImproperList{Elems: f.elems, Tail: tail}, end, nil
		}
	}
}

func (d *decoder) mapTerm(i int, depth int) (Term, int, error) {
	if err := d.need(i, 5, "MAP_EXT"); err != nil {
		return nil, i, err
	}
	n := d.u32(i + 1)
	j := i + 5
	if err := d.need(j, d.pending+2*n, "map entries"); err != nil {
		return nil, i, err
	}
	d.pending += 2 * n
	m := make(Map, n)
	var err error
	for k := range m {
		d.pending--
		if m[k].Key, j, err = d.term(j, depth+1); err != nil {
			return nil, i, err
		}
		d.pending--
		if m[k].Value, j, err = d.term(j, depth+1); err != nil {
			return nil, i, err
		}
	}
	return m, j, nil
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

// Kinds of open container on the decoder's stack.
const (
	openTuple    = iota // filling elems[i] of a tuple
	openList            // appending the n elements of one LIST_EXT segment
	openListTail        // decoding the tail of a list (not a list itself)
	openMap             // filling m[i/2].Key or .Value
)

// decFrame is an open container: the decoder's explicit stack replaces recursion. A map's entries are
// the last Map on the decoder's map stack (maps close in the order they open).
type decFrame struct {
	elems []Term // tuple elements (full length) or list elements so far
	i, n  uint32 // tuple/map: next slot and slot count; list: elements read in this segment and its count
	kind  uint8
	value bool // map: the next slot is entry i's value
}

// push appends f, doubling the capacity (append grows large slices by only 1.25x, which would make a
// deep term's stack cost several times its final size in garbage).
func push[T any](s []T, f T) []T {
	if len(s) == cap(s) {
		n := make([]T, len(s), 2*cap(s)+16)
		copy(n, s)
		s = n
	}
	return append(s, f)
}

// run decodes the container at i, nested in depth others, without recursion and returns it with the
// offset after it.
func (d *decoder) run(i int, depth int) (Term, int, error) {
	var stack []decFrame
	var maps []Map
	var t Term
items:
	for {
		// Decode the item at i: a value in t, or a container pushed on the stack.
		if len(stack) > 0 {
			d.pending--
		}
		if i >= len(d.b) {
			return nil, i, d.fail(i, ErrTruncated, "missing tag byte")
		}
		switch tag := d.b[i]; tag {
		case tagSmallTuple, tagLargeTuple, tagList, tagMap:
			if d.maxDepth > 0 && depth+len(stack) >= d.maxDepth {
				return nil, i, d.fail(i, ErrTooDeep, "nesting deeper than "+strconv.Itoa(d.maxDepth))
			}
			var n, slots uint64
			var j int
			var what string
			switch tag {
			case tagSmallTuple:
				if err := d.need(i, 2, "SMALL_TUPLE_EXT"); err != nil {
					return nil, i, err
				}
				n, j, slots, what = uint64(d.b[i+1]), i+2, uint64(d.b[i+1]), "tuple elements"
			case tagLargeTuple:
				if err := d.need(i, 5, "LARGE_TUPLE_EXT"); err != nil {
					return nil, i, err
				}
				n, j, what = d.u32(i+1), i+5, "tuple elements"
				slots = n
			case tagList:
				if err := d.need(i, 5, "LIST_EXT"); err != nil {
					return nil, i, err
				}
				// n elements and a tail
				n, j, what = d.u32(i+1), i+5, "list elements"
				slots = n + 1
			default:
				if err := d.need(i, 5, "MAP_EXT"); err != nil {
					return nil, i, err
				}
				n, j, what = d.u32(i+1), i+5, "map entries"
				slots = 2 * n
			}
			if err := d.need(j, d.pending+slots, what); err != nil {
				return nil, i, err
			}
			i = j
			switch tag {
			case tagList:
				d.pending += slots
				stack = push(stack, decFrame{kind: openList, elems: make([]Term, 0, n), n: uint32(n)})
				if n > 0 {
					continue
				}
				// A list of no elements: straight to its tail.
			case tagMap:
				if n == 0 {
					t = Map{}
					break
				}
				d.pending += slots
				maps = push(maps, make(Map, n))
				stack = push(stack, decFrame{kind: openMap, n: uint32(n)})
				continue
			default:
				if n == 0 {
					t = Tuple{}
					break
				}
				d.pending += slots
				stack = push(stack, decFrame{kind: openTuple, elems: make(Tuple, n), n: uint32(n)})
				continue
			}
			if tag == tagList {
				break // the tail is handled below, as after a segment's last element
			}
		default:
			var err error
			if t, i, err = d.scalar(i); err != nil {
				return nil, i, err
			}
		}

		// Hand t to the open containers, closing those it completes.
		for {
			top := len(stack) - 1
			if top < 0 {
				return t, i, nil
			}
			f := &stack[top]
			switch f.kind {
			case openTuple:
				f.elems[f.i] = t
				f.i++
				if f.i < f.n {
					continue items
				}
				t = Tuple(f.elems)
			case openMap:
				m := maps[len(maps)-1]
				if !f.value {
					m[f.i].Key = t
					f.value = true
					continue items
				}
				m[f.i].Value = t
				f.value = false
				f.i++
				if f.i < f.n {
					continue items
				}
				t = m
				maps[len(maps)-1] = nil
				maps = maps[:len(maps)-1]
			case openListTail:
				if len(f.elems) == 0 {
					// A list of no elements is its tail, as binary_to_term/1 reads it.
				} else {
					t = ImproperList{Elems: f.elems, Tail: t}
				}
			case openList:
				if f.i < f.n {
					// t is an element (not the fresh frame of an empty segment).
					f.elems = append(f.elems, t)
					f.i++
					if f.i < f.n {
						continue items
					}
				}
				// The segment is complete: look at its tail. A tail that is itself a list is merged, so
				// the result is a List exactly when the Erlang list is proper.
				var done bool
				var err error
				if t, done, i, err = d.listTail(f, i, &d.pending); err != nil {
					return nil, i, err
				}
				if !done {
					continue items
				}
			}
			stack[top] = decFrame{} // drop references for the GC
			stack = stack[:top]
		}
	}
}

// listTail looks at the tail of the list segment f that ended at i. It returns done with the whole list
// in t when the tail is NIL_EXT or STRING_EXT; when it is another LIST_EXT segment it makes f read that
// one; otherwise it makes f wait for the tail term. pending still counts the tail's slot on entry.
func (d *decoder) listTail(f *decFrame, i int, pending *uint64) (t Term, done bool, j int, err error) {
	for {
		if i >= len(d.b) {
			return nil, false, i, d.fail(i, ErrTruncated, "missing list tail")
		}
		switch d.b[i] {
		case tagNil:
			*pending--
			if len(f.elems) == 0 {
				return emptyList, true, i + 1, nil
			}
			return List(f.elems), true, i + 1, nil
		case tagList:
			if err := d.need(i, 5, "LIST_EXT"); err != nil {
				return nil, false, i, err
			}
			n := d.u32(i + 1)
			// The tail slot becomes n elements and a new tail.
			if err := d.need(i+5, *pending-1+n+1, "list elements"); err != nil {
				return nil, false, i, err
			}
			*pending += n
			f.elems = growTerms(f.elems, int(n))
			f.i, f.n = 0, uint32(n)
			i += 5
			if n > 0 {
				return nil, false, i, nil
			}
		case tagString:
			if err := d.need(i, 3, "STRING_EXT"); err != nil {
				return nil, false, i, err
			}
			m := d.u16(i + 1)
			if err := d.need(i+3, m, "STRING_EXT"); err != nil {
				return nil, false, i, err
			}
			*pending--
			end := i + 3 + int(m)
			if len(f.elems) == 0 {
				if m == 0 {
					return emptyList, true, end, nil
				}
				return String(d.b[i+3 : end]), true, end, nil
			}
			f.elems = growTerms(f.elems, int(m))
			for _, c := range d.b[i+3 : end] {
				f.elems = append(f.elems, int64(c))
			}
			return List(f.elems), true, end, nil
		default:
			// pending keeps the tail's slot: the main loop takes it when it decodes the tail.
			f.kind = openListTail
			return nil, false, i, nil
		}
	}
}

// scalar decodes the term at i, which is not a tuple, list or map.
func (d *decoder) scalar(i int) (Term, int, error) {
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
