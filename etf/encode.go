package etf

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"unicode/utf8"
)

// Append appends the version byte 131 and the encoding of t to dst.
// On error it returns dst with its original length and an *EncodeError.
func Append(dst []byte, t Term) ([]byte, error) {
	out, err := appendTerm(append(dst, VersionTag), t, 0)
	if err != nil {
		return dst, err
	}
	return out, nil
}

// AppendTerm appends the encoding of t without the version byte.
// On error it returns dst with its original length and an *EncodeError.
func AppendTerm(dst []byte, t Term) ([]byte, error) {
	out, err := appendTerm(dst, t, 0)
	if err != nil {
		return dst, err
	}
	return out, nil
}

func encodeErr(v any, sentinel error, reason string) error {
	return &EncodeError{Type: fmt.Sprintf("%T", v), Reason: reason, Err: sentinel}
}

// encFrame is a container whose children are still being written: the encoder's explicit stack
// replaces recursion, so any depth encodes.
type encFrame struct {
	elems []Term // tuple or list elements
	m     Map
	i     int
	tail  Term // list tail, written after elems (nil writes [])
	list  bool
}

// cycleKey identifies a container value. A term contains itself exactly when the path from the root to
// the container being written holds the same container twice; since which child the writer descends
// into depends only on the container, that path is then eventually periodic, and Brent's method finds
// the repeat by comparing each new frame with one remembered frame, re-remembered at doubling depths.
type cycleKey struct {
	elems *Term
	m     *MapEntry
	n     int
	list  bool
}

// detectCyclesAfter is the stack depth from which the encoder looks for cycles.
const detectCyclesAfter = 1000

// appendTerm encodes t; depth counts the containers around it. Up to recurseDepth it recurses, which
// is fastest for ordinary terms; deeper subterms go to appendDeep.
func appendTerm(dst []byte, t Term, depth int) ([]byte, error) {
	if depth >= recurseDepth {
		return appendDeep(dst, t)
	}
	var err error
	switch v := t.(type) {
	case Tuple:
		if len(v) <= math.MaxUint8 {
			dst = append(dst, tagSmallTuple, byte(len(v)))
		} else if uint64(len(v)) <= math.MaxUint32 {
			dst = append(dst, tagLargeTuple)
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		} else {
			return dst, encodeErr(t, ErrInvalid, "tuple too large")
		}
		for _, e := range v {
			if dst, err = appendTerm(dst, e, depth+1); err != nil {
				return dst, err
			}
		}
		return dst, nil
	case List:
		if len(v) == 0 {
			return append(dst, tagNil), nil
		}
		return appendList(dst, v, nil, depth)
	case ImproperList:
		if len(v.Elems) == 0 {
			// A list of no elements is its tail, as binary_to_term/1 reads it.
			return appendTerm(dst, v.Tail, depth+1)
		}
		return appendList(dst, v.Elems, v.Tail, depth)
	case Map:
		if uint64(len(v)) > math.MaxUint32 {
			return dst, encodeErr(t, ErrInvalid, "map too large")
		}
		dst = append(dst, tagMap)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		for i := range v {
			if dst, err = appendTerm(dst, v[i].Key, depth+1); err != nil {
				return dst, err
			}
			if dst, err = appendTerm(dst, v[i].Value, depth+1); err != nil {
				return dst, err
			}
		}
		return dst, nil
	default:
		return appendScalar(dst, t)
	}
}

// appendList writes LIST_EXT: elems then tail (nil means []).
func appendList(dst []byte, elems []Term, tail Term, depth int) ([]byte, error) {
	if uint64(len(elems)) > math.MaxUint32 {
		return dst, encodeErr(List(elems), ErrInvalid, "list too long")
	}
	dst = append(dst, tagList)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(elems)))
	var err error
	for _, e := range elems {
		if dst, err = appendTerm(dst, e, depth+1); err != nil {
			return dst, err
		}
	}
	return appendTerm(dst, tail, depth+1)
}

// appendDeep encodes t without recursion.
func appendDeep(dst []byte, t Term) ([]byte, error) {
	var stack []encFrame
	var mark cycleKey // the remembered frame, at stack index markAt (0: none)
	markAt := 0
	for {
		var err error
		var f encFrame
		var more bool
		if dst, f, more, err = appendOne(dst, t); err != nil {
			return dst, err
		}
		if more {
			if d := len(stack); d >= detectCyclesAfter {
				k := f.key()
				if k == mark {
					return dst, encodeErr(t, ErrInvalid, "the term contains itself")
				}
				if markAt == 0 || d >= 2*markAt {
					mark, markAt = k, d
				}
			}
			stack = push(stack, f)
		}
		// Find the next child to write, closing the containers that are done.
		for {
			top := len(stack) - 1
			if top < 0 {
				return dst, nil
			}
			c := &stack[top]
			if c.m != nil {
				if c.i < 2*len(c.m) {
					if c.i&1 == 0 {
						t = c.m[c.i>>1].Key
					} else {
						t = c.m[c.i>>1].Value
					}
					c.i++
					break
				}
			} else if c.i < len(c.elems) {
				t = c.elems[c.i]
				c.i++
				break
			} else if c.list && c.i == len(c.elems) {
				t = c.tail
				c.i++
				break
			}
			if top == markAt {
				mark, markAt = cycleKey{}, 0
			}
			stack[top] = encFrame{}
			stack = stack[:top]
		}
	}
}

func (f *encFrame) key() cycleKey {
	if f.m != nil {
		return cycleKey{m: &f.m[0], n: len(f.m)}
	}
	return cycleKey{elems: &f.elems[0], n: len(f.elems), list: f.list}
}

// appendOne writes t, or for a container with children its header, returning the frame (push) whose
// children come next.
func appendOne(dst []byte, t Term) ([]byte, encFrame, bool, error) {
	for {
		switch v := t.(type) {
		case Tuple:
			if len(v) <= math.MaxUint8 {
				dst = append(dst, tagSmallTuple, byte(len(v)))
			} else if uint64(len(v)) <= math.MaxUint32 {
				dst = append(dst, tagLargeTuple)
				dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
			} else {
				return dst, encFrame{}, false, encodeErr(t, ErrInvalid, "tuple too large")
			}
			return dst, encFrame{elems: v}, len(v) > 0, nil
		case List:
			if len(v) == 0 {
				return append(dst, tagNil), encFrame{}, false, nil
			}
			return appendListHead(dst, v, nil)
		case ImproperList:
			if len(v.Elems) == 0 {
				// A list of no elements is its tail, as binary_to_term/1 reads it.
				t = v.Tail
				continue
			}
			return appendListHead(dst, v.Elems, v.Tail)
		case Map:
			if uint64(len(v)) > math.MaxUint32 {
				return dst, encFrame{}, false, encodeErr(t, ErrInvalid, "map too large")
			}
			dst = append(dst, tagMap)
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
			return dst, encFrame{m: v}, len(v) > 0, nil
		default:
			dst, err := appendScalar(dst, t)
			return dst, encFrame{}, false, err
		}
	}
}

// appendListHead writes the LIST_EXT header of elems; the frame writes elems then tail (nil means []).
func appendListHead(dst []byte, elems []Term, tail Term) ([]byte, encFrame, bool, error) {
	if uint64(len(elems)) > math.MaxUint32 {
		return dst, encFrame{}, false, encodeErr(List(elems), ErrInvalid, "list too long")
	}
	dst = append(dst, tagList)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(elems)))
	return dst, encFrame{elems: elems, tail: tail, list: true}, true, nil
}

// appendScalar encodes a term that is not a tuple, list or map.
func appendScalar(dst []byte, t Term) ([]byte, error) {
	switch v := t.(type) {
	case nil:
		return append(dst, tagNil), nil
	case Atom:
		return appendAtom(dst, v)
	case bool:
		if v {
			return append(dst, tagSmallAtomUTF8, 4, 't', 'r', 'u', 'e'), nil
		}
		return append(dst, tagSmallAtomUTF8, 5, 'f', 'a', 'l', 's', 'e'), nil
	case int:
		return appendInt(dst, int64(v)), nil
	case int8:
		return appendInt(dst, int64(v)), nil
	case int16:
		return appendInt(dst, int64(v)), nil
	case int32:
		return appendInt(dst, int64(v)), nil
	case int64:
		return appendInt(dst, v), nil
	case uint:
		return appendUint(dst, uint64(v)), nil
	case uint8:
		return appendInt(dst, int64(v)), nil
	case uint16:
		return appendInt(dst, int64(v)), nil
	case uint32:
		return appendInt(dst, int64(v)), nil
	case uint64:
		return appendUint(dst, v), nil
	case *big.Int:
		if v == nil {
			return dst, encodeErr(t, ErrInvalid, "nil *big.Int")
		}
		return appendBig(dst, v), nil
	case float64:
		return appendFloat(dst, v, t)
	case float32:
		return appendFloat(dst, float64(v), t)
	case Pid:
		dst = append(dst, tagNewPid)
		dst, err := appendAtom(dst, v.Node)
		if err != nil {
			return dst, err
		}
		dst = binary.BigEndian.AppendUint32(dst, v.ID)
		dst = binary.BigEndian.AppendUint32(dst, v.Serial)
		return binary.BigEndian.AppendUint32(dst, v.Creation), nil
	case Ref:
		return appendRef(dst, v)
	case Port:
		return appendPort(dst, v)
	case String:
		if len(v) == 0 {
			return append(dst, tagNil), nil // "" is [], as term_to_binary writes it
		}
		if len(v) <= math.MaxUint16 {
			dst = append(dst, tagString, byte(len(v)>>8), byte(len(v)))
			return append(dst, v...), nil
		}
		if uint64(len(v)) > math.MaxUint32 {
			return dst, encodeErr(t, ErrInvalid, "string too long")
		}
		dst = append(dst, tagList)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		for i := 0; i < len(v); i++ {
			dst = append(dst, tagSmallInteger, v[i])
		}
		return append(dst, tagNil), nil
	case []byte:
		return appendBinary(dst, v, t)
	case string:
		return appendBinary(dst, v, t)
	case BitBinary:
		n := len(v.Bytes)
		if uint64(n) > math.MaxUint32 {
			return dst, encodeErr(t, ErrInvalid, "bitstring too long")
		}
		if (n == 0 && v.Bits != 0) || (n > 0 && (v.Bits == 0 || v.Bits > 8)) {
			return dst, encodeErr(t, ErrInvalid, "Bits must be 1..8 (0 only for no bytes)")
		}
		dst = append(dst, tagBitBinary)
		dst = binary.BigEndian.AppendUint32(dst, uint32(n))
		dst = append(dst, v.Bits)
		dst = append(dst, v.Bytes...)
		if n > 0 {
			dst[len(dst)-1] &= byte(0xFF << (8 - v.Bits))
		}
		return dst, nil
	case Export:
		dst = append(dst, tagExport)
		dst, err := appendAtom(dst, v.Module)
		if err != nil {
			return dst, err
		}
		if dst, err = appendAtom(dst, v.Function); err != nil {
			return dst, err
		}
		return append(dst, tagSmallInteger, v.Arity), nil
	case Fun:
		r := v.Raw
		if len(r) < 5 || r[0] != tagNewFun || uint64(binary.BigEndian.Uint32(r[1:]))+1 != uint64(len(r)) ||
			binary.BigEndian.Uint32(r[1:]) < minFunSize {
			return dst, encodeErr(t, ErrInvalid, "Raw is not one NEW_FUN_EXT encoding")
		}
		return append(dst, r...), nil
	default:
		return dst, encodeErr(t, ErrUnsupportedType, "no Erlang term for this Go type")
	}
}

// appendAtom writes SMALL_ATOM_UTF8_EXT, or ATOM_UTF8_EXT for names over 255 bytes.
func appendAtom(dst []byte, a Atom) ([]byte, error) {
	n := len(a)
	if n <= math.MaxUint8 {
		if !utf8.ValidString(string(a)) {
			return dst, encodeErr(a, ErrInvalid, "atom is not valid UTF-8")
		}
		dst = append(dst, tagSmallAtomUTF8, byte(n))
		return append(dst, a...), nil
	}
	if n > maxAtomChars*utf8.UTFMax || utf8.RuneCountInString(string(a)) > maxAtomChars {
		return dst, encodeErr(a, ErrInvalid, "atom longer than 255 characters")
	}
	if !utf8.ValidString(string(a)) {
		return dst, encodeErr(a, ErrInvalid, "atom is not valid UTF-8")
	}
	dst = append(dst, tagAtomUTF8, byte(n>>8), byte(n))
	return append(dst, a...), nil
}

func appendInt(dst []byte, v int64) []byte {
	switch {
	case v >= 0 && v <= math.MaxUint8:
		return append(dst, tagSmallInteger, byte(v))
	case v >= math.MinInt32 && v <= math.MaxInt32:
		return binary.BigEndian.AppendUint32(append(dst, tagInteger), uint32(v))
	case v < 0:
		return appendSmallBig(dst, 1, -uint64(v)) // -uint64 is exact even for MinInt64
	default:
		return appendSmallBig(dst, 0, uint64(v))
	}
}

func appendUint(dst []byte, v uint64) []byte {
	if v <= math.MaxInt32 {
		return appendInt(dst, int64(v))
	}
	return appendSmallBig(dst, 0, v)
}

// appendSmallBig writes SMALL_BIG_EXT for a magnitude that needs more than 31 bits.
func appendSmallBig(dst []byte, sign byte, mag uint64) []byte {
	n := (bits.Len64(mag) + 7) / 8
	dst = append(dst, tagSmallBig, byte(n), sign)
	for ; n > 0; n-- {
		dst = append(dst, byte(mag))
		mag >>= 8
	}
	return dst
}

func appendBig(dst []byte, v *big.Int) []byte {
	if v.IsInt64() {
		return appendInt(dst, v.Int64())
	}
	n := (v.BitLen() + 7) / 8
	if n <= math.MaxUint8 {
		dst = append(dst, tagSmallBig, byte(n))
	} else {
		dst = binary.BigEndian.AppendUint32(append(dst, tagLargeBig), uint32(n))
	}
	if v.Sign() < 0 {
		dst = append(dst, 1)
	} else {
		dst = append(dst, 0)
	}
	const wordBytes = bits.UintSize / 8
	words := v.Bits() // little-endian words of the magnitude; no copy
	for i := 0; i < n; i++ {
		dst = append(dst, byte(words[i/wordBytes]>>(8*(i%wordBytes))))
	}
	return dst
}

func appendFloat(dst []byte, f float64, orig Term) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dst, encodeErr(orig, ErrInvalid, "Erlang has no NaN or infinite floats")
	}
	return binary.BigEndian.AppendUint64(append(dst, tagNewFloat), math.Float64bits(f)), nil
}

func appendBinary[T []byte | string](dst []byte, b T, orig Term) ([]byte, error) {
	if uint64(len(b)) > math.MaxUint32 {
		return dst, encodeErr(orig, ErrInvalid, "binary longer than 4 GiB")
	}
	dst = binary.BigEndian.AppendUint32(append(dst, tagBinary), uint32(len(b)))
	return append(dst, b...), nil
}

func appendRef(dst []byte, r Ref) ([]byte, error) {
	if r.Len == 0 || r.Len > maxRefWords {
		return dst, encodeErr(r, ErrInvalid, "Ref.Len must be 1..5")
	}
	dst = append(dst, tagNewerReference, 0, r.Len)
	dst, err := appendAtom(dst, r.Node)
	if err != nil {
		return dst, err
	}
	dst = binary.BigEndian.AppendUint32(dst, r.Creation)
	for _, w := range r.ID[:r.Len] {
		dst = binary.BigEndian.AppendUint32(dst, w)
	}
	return dst, nil
}

func appendPort(dst []byte, p Port) ([]byte, error) {
	small := p.ID <= math.MaxUint32
	if small {
		dst = append(dst, tagNewPort)
	} else {
		dst = append(dst, tagV4Port)
	}
	dst, err := appendAtom(dst, p.Node)
	if err != nil {
		return dst, err
	}
	if small {
		dst = binary.BigEndian.AppendUint32(dst, uint32(p.ID))
	} else {
		dst = binary.BigEndian.AppendUint64(dst, p.ID)
	}
	return binary.BigEndian.AppendUint32(dst, p.Creation), nil
}
