package etf

import (
	"cmp"
	"math"
	"math/big"
	"slices"
)

// Compare orders two terms as Erlang does (the order of <, == and lists:sort/1): numbers < atoms <
// references < funs < ports < pids < tuples < maps < [] < lists < bitstrings. Numbers compare by value
// (1 == 1.0); tuples by size, then elements; maps by size, then keys in map-key order, then values;
// lists and bitstrings element by element. Go forms of one term compare equal: String("ab"),
// List{97, 98} and [97, 98]; []byte and string; bool and the atoms true and false; any integer type.
// Pids, ports and references compare by node name and then their numbers, which is close to but not
// always BEAM's order between nodes. Compare returns -1, 0 or +1.
func Compare(a, b Term) int { return compareTerms(a, b, false) }

// Equal reports whether a and b are the same Erlang term (=:=): like Compare == 0, except that an
// integer and a float are never equal, and map entries may be in any order.
func Equal(a, b Term) bool { return compareTerms(a, b, true) == 0 }

// Classes in term order.
const (
	classNumber = iota
	classAtom
	classRef
	classFun
	classPort
	classPid
	classTuple
	classMap
	classNil
	classList
	classBits
	classOther // not a term; orders last, by nothing
)

func classOf(t Term) int {
	switch v := t.(type) {
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64, *big.Int, float64, float32:
		return classNumber
	case Atom, bool:
		return classAtom
	case Ref:
		return classRef
	case Export, Fun:
		return classFun
	case Port:
		return classPort
	case Pid:
		return classPid
	case Tuple:
		return classTuple
	case Map:
		return classMap
	case nil:
		return classNil
	case List:
		if len(v) == 0 {
			return classNil
		}
		return classList
	case String:
		if len(v) == 0 {
			return classNil
		}
		return classList
	case ImproperList:
		if len(v.Elems) == 0 {
			return classOf(v.Tail)
		}
		return classList
	case []byte, string, BitBinary:
		return classBits
	}
	return classOther
}

// cmpPair is two terms still to compare; exact is map-key order (integers before floats, =:=).
type cmpPair struct {
	a, b  Term
	exact bool
}

// compareTerms orders a and b; exact is map-key order (integers before floats, =:= equality). Term
// order is lexicographic over the terms' structure, so it walks pairs of subterms with an explicit
// stack (no recursion, whatever the depth) and stops at the first pair that differs.
func compareTerms(a, b Term, exact bool) int {
	var buf [8]cmpPair
	stack := append(buf[:0], cmpPair{a, b, exact})
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		a, b, exact := p.a, p.b, p.exact
		for {
			if ia, ok := a.(ImproperList); ok && len(ia.Elems) == 0 {
				a = ia.Tail
				continue
			}
			if ib, ok := b.(ImproperList); ok && len(ib.Elems) == 0 {
				b = ib.Tail
				continue
			}
			break
		}
		ca, cb := classOf(a), classOf(b)
		if ca != cb {
			return cmp.Compare(ca, cb)
		}
		c := 0
		switch ca {
		case classNumber:
			c = compareNumbers(a, b, exact)
		case classAtom:
			c = cmp.Compare(atomText(a), atomText(b))
		case classRef:
			c = compareRefs(a.(Ref), b.(Ref))
		case classFun:
			c = compareFuns(a, b)
		case classPort:
			x, y := a.(Port), b.(Port)
			c = cmp.Or(cmp.Compare(x.Node, y.Node), cmp.Compare(x.ID, y.ID), cmp.Compare(x.Creation, y.Creation))
		case classPid:
			x, y := a.(Pid), b.(Pid)
			c = cmp.Or(cmp.Compare(x.Node, y.Node), cmp.Compare(x.Serial, y.Serial), cmp.Compare(x.ID, y.ID),
				cmp.Compare(x.Creation, y.Creation))
		case classTuple:
			x, y := a.(Tuple), b.(Tuple)
			if c = cmp.Compare(len(x), len(y)); c == 0 {
				for i := len(x) - 1; i >= 0; i-- {
					stack = append(stack, cmpPair{x[i], y[i], exact})
				}
			}
		case classMap:
			x, y := sortedMap(a.(Map)), sortedMap(b.(Map))
			if c = cmp.Compare(len(x), len(y)); c == 0 {
				// All keys (in map-key order) come before the values.
				for i := len(x) - 1; i >= 0; i-- {
					stack = append(stack, cmpPair{x[i].Value, y[i].Value, exact})
				}
				for i := len(x) - 1; i >= 0; i-- {
					stack = append(stack, cmpPair{x[i].Key, y[i].Key, true})
				}
			}
		case classList:
			stack = pushListPairs(stack, a, b, exact)
		case classBits:
			c = compareBits(a, b)
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// pushListPairs pushes the pairs that decide the order of two non-empty lists: their elements side by
// side and then what is left: the two tails, or a tail against the rest of the longer list.
func pushListPairs(stack []cmpPair, a, b Term, exact bool) []cmpPair {
	x, y := newListIter(a), newListIter(b)
	var pairs []cmpPair
	var rest cmpPair
	for {
		ex, okx := x.next()
		ey, oky := y.next()
		if okx && oky {
			pairs = append(pairs, cmpPair{ex, ey, exact})
			continue
		}
		switch {
		case !okx && !oky:
			rest = cmpPair{x.tail, y.tail, exact}
		case !okx:
			rest = cmpPair{x.tail, ImproperList{Elems: append([]Term{ey}, y.elems...), Tail: y.rest()}, exact}
		default:
			rest = cmpPair{ImproperList{Elems: append([]Term{ex}, x.elems...), Tail: x.rest()}, y.tail, exact}
		}
		break
	}
	stack = append(stack, rest)
	for i := len(pairs) - 1; i >= 0; i-- {
		stack = append(stack, pairs[i])
	}
	return stack
}

func compareRefs(x, y Ref) int {
	if c := cmp.Compare(x.Node, y.Node); c != 0 {
		return c
	}
	if c := cmp.Compare(x.Len, y.Len); c != 0 {
		return c
	}
	for i := min(int(x.Len), len(x.ID)) - 1; i >= 0; i-- {
		if c := cmp.Compare(x.ID[i], y.ID[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(x.Creation, y.Creation)
}

func atomText(t Term) string {
	switch v := t.(type) {
	case Atom:
		return string(v)
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return ""
}

// sortedMap returns m's entries in map-key order (a copy when m is not sorted already).
func sortedMap(m Map) Map {
	if slices.IsSortedFunc(m, func(x, y MapEntry) int { return compareTerms(x.Key, y.Key, true) }) {
		return m
	}
	s := slices.Clone(m)
	slices.SortStableFunc(s, func(x, y MapEntry) int { return compareTerms(x.Key, y.Key, true) })
	return s
}

// number is an integer (i) or a float (f, isFloat).
type number struct {
	i       *big.Int
	small   int64
	isBig   bool
	f       float64
	isFloat bool
}

func toNumber(t Term) number {
	switch v := t.(type) {
	case int:
		return number{small: int64(v)}
	case int8:
		return number{small: int64(v)}
	case int16:
		return number{small: int64(v)}
	case int32:
		return number{small: int64(v)}
	case int64:
		return number{small: v}
	case uint:
		return toNumber(uint64(v))
	case uint8:
		return number{small: int64(v)}
	case uint16:
		return number{small: int64(v)}
	case uint32:
		return number{small: int64(v)}
	case uint64:
		if v > math.MaxInt64 {
			return number{i: new(big.Int).SetUint64(v), isBig: true}
		}
		return number{small: int64(v)}
	case *big.Int:
		if v.IsInt64() {
			return number{small: v.Int64()}
		}
		return number{i: v, isBig: true}
	case float64:
		return number{f: v, isFloat: true}
	case float32:
		return number{f: float64(v), isFloat: true}
	}
	return number{}
}

func (n number) bigInt() *big.Int {
	if n.isBig {
		return n.i
	}
	return big.NewInt(n.small)
}

func compareNumbers(a, b Term, exact bool) int {
	x, y := toNumber(a), toNumber(b)
	if exact && x.isFloat != y.isFloat {
		if x.isFloat {
			return 1 // map-key order: integers before floats
		}
		return -1
	}
	switch {
	case x.isFloat && y.isFloat:
		if exact && x.f == 0 && y.f == 0 {
			// =:= tells -0.0 from 0.0 (OTP 27 and later keep them as two map keys, -0.0 first).
			return -cmp.Compare(boolInt(math.Signbit(x.f)), boolInt(math.Signbit(y.f)))
		}
		return cmp.Compare(x.f, y.f)
	case !x.isFloat && !y.isFloat:
		if !x.isBig && !y.isBig {
			return cmp.Compare(x.small, y.small)
		}
		return x.bigInt().Cmp(y.bigInt())
	case x.isFloat:
		return -compareIntFloat(y, x.f)
	default:
		return compareIntFloat(x, y.f)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// compareIntFloat compares an integer with a float exactly.
func compareIntFloat(n number, f float64) int {
	bf := new(big.Float).SetInt(n.bigInt())
	return bf.Cmp(big.NewFloat(f))
}

func compareFuns(a, b Term) int {
	x, xok := a.(Export)
	y, yok := b.(Export)
	switch {
	case xok && yok:
		if c := cmp.Compare(x.Module, y.Module); c != 0 {
			return c
		}
		if c := cmp.Compare(x.Function, y.Function); c != 0 {
			return c
		}
		return cmp.Compare(x.Arity, y.Arity)
	case xok:
		return 1 // a local fun orders before an external one, as in BEAM
	case yok:
		return -1
	}
	return cmp.Compare(string(a.(Fun).Raw), string(b.(Fun).Raw))
}

// listIter walks the cells of a list term, whatever its Go form.
type listIter struct {
	elems []Term
	str   String
	tail  Term // what follows elems/str; nil means []
}

func newListIter(t Term) listIter {
	switch v := t.(type) {
	case List:
		return listIter{elems: v}
	case String:
		return listIter{str: v}
	case ImproperList:
		return listIter{elems: v.Elems, tail: v.Tail}
	}
	return listIter{}
}

// next returns the next element; ok is false at the end, where tail is the list's tail (nil for []).
func (it *listIter) next() (Term, bool) {
	for {
		if len(it.elems) > 0 {
			e := it.elems[0]
			it.elems = it.elems[1:]
			return e, true
		}
		if len(it.str) > 0 {
			e := int64(it.str[0])
			it.str = it.str[1:]
			return e, true
		}
		switch it.tail.(type) {
		case List, String, ImproperList:
			*it = newListIter(it.tail)
			continue
		}
		return nil, false
	}
}

// rest is what follows it.elems: the string part and the tail, as a term.
func (it *listIter) rest() Term {
	if len(it.str) > 0 {
		if it.tail == nil {
			return it.str
		}
		elems := make([]Term, len(it.str))
		for i := range elems {
			elems[i] = int64(it.str[i])
		}
		return ImproperList{Elems: elems, Tail: it.tail}
	}
	return it.tail
}

// bitsOf returns a bitstring's bytes and its length in bits.
func bitsOf(t Term) ([]byte, int) {
	switch v := t.(type) {
	case []byte:
		return v, 8 * len(v)
	case string:
		return []byte(v), 8 * len(v)
	case BitBinary:
		if len(v.Bytes) == 0 {
			return nil, 0
		}
		return v.Bytes, 8*(len(v.Bytes)-1) + int(v.Bits)
	}
	return nil, 0
}

func compareBits(a, b Term) int {
	x, nx := bitsOf(a)
	y, ny := bitsOf(b)
	n := min(nx, ny)
	full := n / 8
	for i := 0; i < full; i++ {
		if c := cmp.Compare(x[i], y[i]); c != 0 {
			return c
		}
	}
	if r := n % 8; r != 0 {
		mask := byte(0xFF << (8 - r))
		if c := cmp.Compare(x[full]&mask, y[full]&mask); c != 0 {
			return c
		}
	}
	return cmp.Compare(nx, ny)
}
