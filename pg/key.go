package pg

import (
	"bytes"
	"math"
	"math/big"
	"slices"

	"github.com/distribute-go/distribute/etf"
)

// groupKey returns a string that is the same for two groups exactly when they are the same
// Erlang term (=:=), whatever Go forms they come in: etf.String("ab") and etf.List{97, 98},
// []byte and string, bool and the atoms true and false, any Go integer type, map entries in any
// order. It fails when the term cannot be encoded.
func groupKey(g etf.Term) (string, error) {
	b, err := etf.Append(nil, canonical(g))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// canonical returns g in the one Go form the encoder writes the same bytes for.
func canonical(g etf.Term) etf.Term {
	switch v := g.(type) {
	case nil:
		return etf.List{}
	case bool:
		if v {
			return etf.Atom("true")
		}
		return etf.Atom("false")
	case string:
		return []byte(v)
	case etf.String:
		l := make(etf.List, len(v))
		for i := range len(v) {
			l[i] = int64(v[i])
		}
		return l
	case int:
		return int64(v)
	case int8:
		return int64(v)
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case uint:
		return canonicalUint(uint64(v))
	case uint8:
		return int64(v)
	case uint16:
		return int64(v)
	case uint32:
		return int64(v)
	case uint64:
		return canonicalUint(v)
	case *big.Int:
		if v != nil && v.IsInt64() {
			return v.Int64()
		}
		return v
	case float32:
		return float64(v)
	case etf.List:
		l := make(etf.List, len(v))
		for i, e := range v {
			l[i] = canonical(e)
		}
		return l
	case []etf.Term:
		return canonical(etf.List(v))
	case etf.ImproperList:
		elems := make([]etf.Term, len(v.Elems))
		for i, e := range v.Elems {
			elems[i] = canonical(e)
		}
		tail := canonical(v.Tail)
		if l, ok := tail.(etf.List); ok { // the tail is a proper list: one proper list
			return append(etf.List(elems), l...)
		}
		if il, ok := tail.(etf.ImproperList); ok {
			return etf.ImproperList{Elems: append(elems, il.Elems...), Tail: il.Tail}
		}
		if len(elems) == 0 {
			return tail
		}
		return etf.ImproperList{Elems: elems, Tail: tail}
	case etf.Tuple:
		t := make(etf.Tuple, len(v))
		for i, e := range v {
			t[i] = canonical(e)
		}
		return t
	case etf.Map:
		type entry struct {
			key []byte
			e   etf.MapEntry
		}
		es := make([]entry, len(v))
		for i, e := range v {
			k := canonical(e.Key)
			kb, _ := etf.Append(nil, k) // an unencodable key fails the whole term later
			es[i] = entry{kb, etf.MapEntry{Key: k, Value: canonical(e.Value)}}
		}
		slices.SortFunc(es, func(a, b entry) int { return bytes.Compare(a.key, b.key) })
		m := make(etf.Map, len(es))
		for i, e := range es {
			m[i] = e.e
		}
		return m
	}
	return g
}

func canonicalUint(v uint64) etf.Term {
	if v <= math.MaxInt64 {
		return int64(v)
	}
	return new(big.Int).SetUint64(v)
}
