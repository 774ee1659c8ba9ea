package etf

import (
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// TupleTag, as the type of a struct field, makes Marshal and Unmarshal map the struct to a tuple
// instead of a map: {Tag, F1, F2, ...} with the fields in declaration order, where Tag is the atom
// named by the field's erl tag (a struct tag erl:"" or no tag at all gives a tuple of the fields
// alone). The field itself holds nothing; name it _:
//
//	type Point struct {
//		_    etf.TupleTag `erl:"point"`
//		X, Y int
//	}
//
// maps Point{X: 1, Y: 2} to {point, 1, 2}.
type TupleTag struct{}

// Marshaler is a type that makes its own term for Marshal.
type Marshaler interface {
	MarshalTerm() (Term, error)
}

// Unmarshaler is a type that reads itself from a term for Unmarshal.
type Unmarshaler interface {
	UnmarshalTerm(Term) error
}

// MarshalError reports a Go value Marshal cannot map to a term. Path locates it (".Items[3].name").
type MarshalError struct {
	Path   string
	Reason string
}

func (e *MarshalError) Error() string { return "etf: marshal " + pathOrRoot(e.Path) + ": " + e.Reason }

// UnmarshalError reports a term that does not fit the Go value. Path locates it in the term (Erlang
// map keys of struct fields, [i] for list and tuple elements, [key] for Go map entries); Want is what
// the Go side needs and Got the kind of term found ("atom", "integer", ...), or Reason says more.
type UnmarshalError struct {
	Path      string
	Want, Got string
	Reason    string
}

func (e *UnmarshalError) Error() string {
	s := "etf: unmarshal " + pathOrRoot(e.Path) + ": "
	if e.Reason != "" {
		return s + e.Reason
	}
	return s + "want " + e.Want + ", got " + e.Got
}

func pathOrRoot(p string) string {
	if p == "" {
		return "(root)"
	}
	return p
}

// Marshal returns the term for v, mapping Go values as encoding/json maps them to JSON:
//
//   - bool: the atoms true and false; integers: int64 (*big.Int beyond int64); floats: float64.
//   - string: a binary (as Elixir strings are); with the field option charlist, a list of code points
//     (String when every one is a byte); with atom, an atom.
//   - []byte and [N]byte: a binary. Other slices and arrays: lists (a nil slice is []).
//   - Go maps: maps (keys marshal like values, so string keys are binaries), sorted in map-key order.
//   - Structs: maps with atom keys, one per exported field, named by the field's erl tag or else by
//     its name in snake_case (UserID: user_id); or tuples, see TupleTag. Fields of embedded structs
//     are promoted, as in encoding/json.
//   - Pointers: the value pointed to; a nil pointer or interface is the atom undefined.
//   - Terms (Atom, Tuple, Pid, ... and *big.Int), in fields of type Term (any) or anywhere else,
//     pass through unchanged; a Marshaler makes its own term.
//
// Struct tags have the form erl:"name,opt,opt": name replaces the key; opts are omitempty (leave the
// field out of the map when it is its type's zero value or an empty slice or map; tuples keep every
// field), charlist and atom (for strings), and a tag of "-" skips the field.
func Marshal(v any) (Term, error) {
	return marshalValue(reflect.ValueOf(v), "", fieldOpts{})
}

// Unmarshal stores in the value v points to what the term t holds, the inverse of Marshal. It is
// lenient where the meaning is clear: a string accepts a binary, a charlist or an atom; a float accepts
// an integer; a struct mapped to a map accepts atom or binary keys and ignores keys it has no field for
// (fields without a key keep their value); a pointer gets nil from the atoms undefined and nil. Integers
// are checked for overflow. Errors are *UnmarshalError, naming the path of the offending term.
func Unmarshal(t Term, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return &UnmarshalError{Reason: "Unmarshal needs a non-nil pointer, got " + rv.Kind().String()}
	}
	return unmarshalValue(t, rv.Elem(), "", fieldOpts{})
}

type fieldOpts struct {
	omitempty, charlist, atom bool
}

type structField struct {
	index []int
	key   Atom
	opts  fieldOpts
}

type structInfo struct {
	fields []structField
	tuple  bool // mapped to a tuple (a TupleTag field)
	tag    Atom // the tuple's first element, when hasTag
	hasTag bool
}

var structCache sync.Map // reflect.Type -> *structInfo

var (
	tupleTagType    = reflect.TypeFor[TupleTag]()
	termType        = reflect.TypeFor[Term]()
	marshalerType   = reflect.TypeFor[Marshaler]()
	unmarshalerType = reflect.TypeFor[Unmarshaler]()
	bigIntType      = reflect.TypeFor[*big.Int]()
)

func structInfoOf(t reflect.Type) *structInfo {
	if si, ok := structCache.Load(t); ok {
		return si.(*structInfo)
	}
	si := &structInfo{}
	collectFields(t, nil, si)
	structCache.Store(t, si)
	return si
}

func collectFields(t reflect.Type, index []int, si *structInfo) {
	for i := range t.NumField() {
		f := t.Field(i)
		idx := append(slices.Clone(index), i)
		tag, hasTag := f.Tag.Lookup("erl")
		if f.Type == tupleTagType {
			si.tuple = true
			if name, _, _ := strings.Cut(tag, ","); hasTag && name != "" {
				si.tag, si.hasTag = Atom(name), true
			}
			continue
		}
		if tag == "-" {
			continue
		}
		name, optText, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != tupleTagType {
				collectFields(ft, idx, si)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		var opts fieldOpts
		for _, o := range strings.Split(optText, ",") {
			switch o {
			case "omitempty":
				opts.omitempty = true
			case "charlist":
				opts.charlist = true
			case "atom":
				opts.atom = true
			}
		}
		if name == "" {
			name = snakeCase(f.Name)
		}
		si.fields = append(si.fields, structField{index: idx, key: Atom(name), opts: opts})
	}
}

// snakeCase turns a Go field name into an Erlang-style key: UserID -> user_id, HTTPServer -> http_server.
func snakeCase(s string) string {
	r := []rune(s)
	var sb strings.Builder
	for i, c := range r {
		if unicode.IsUpper(c) {
			if i > 0 && (unicode.IsLower(r[i-1]) || unicode.IsDigit(r[i-1]) ||
				unicode.IsUpper(r[i-1]) && i+1 < len(r) && unicode.IsLower(r[i+1])) {
				sb.WriteByte('_')
			}
			sb.WriteRune(unicode.ToLower(c))
			continue
		}
		sb.WriteRune(c)
	}
	return sb.String()
}

// fieldByIndex returns the field, or false when it sits behind a nil embedded pointer.
func fieldByIndex(v reflect.Value, index []int) (reflect.Value, bool) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				return reflect.Value{}, false
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, true
}

// isTermType reports whether values of t are terms already (they pass through Marshal).
func isTermType(t reflect.Type) bool {
	switch t {
	case reflect.TypeFor[Atom](), reflect.TypeFor[Tuple](), reflect.TypeFor[List](), reflect.TypeFor[ImproperList](),
		reflect.TypeFor[Map](), reflect.TypeFor[String](), reflect.TypeFor[BitBinary](), reflect.TypeFor[Pid](),
		reflect.TypeFor[Port](), reflect.TypeFor[Ref](), reflect.TypeFor[Export](), reflect.TypeFor[Fun](), bigIntType:
		return true
	}
	return false
}

func marshalValue(v reflect.Value, path string, opts fieldOpts) (Term, error) {
	if !v.IsValid() {
		return Atom("undefined"), nil
	}
	t := v.Type()
	if t.Implements(marshalerType) && (v.Kind() != reflect.Pointer || !v.IsNil()) {
		return v.Interface().(Marshaler).MarshalTerm()
	}
	if isTermType(t) {
		if t == bigIntType && v.IsNil() {
			return Atom("undefined"), nil
		}
		return v.Interface(), nil
	}
	switch v.Kind() {
	case reflect.Bool:
		if v.Bool() {
			return Atom("true"), nil
		}
		return Atom("false"), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := v.Uint()
		if u > math.MaxInt64 {
			return new(big.Int).SetUint64(u), nil
		}
		return int64(u), nil
	case reflect.Float32, reflect.Float64:
		f := v.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, &MarshalError{Path: path, Reason: "Erlang has no NaN or infinite floats"}
		}
		return f, nil
	case reflect.String:
		s := v.String()
		switch {
		case opts.atom:
			if utf8.RuneCountInString(s) > maxAtomChars || !utf8.ValidString(s) {
				return nil, &MarshalError{Path: path, Reason: "not a valid atom (UTF-8, at most 255 characters)"}
			}
			return Atom(s), nil
		case opts.charlist:
			return listOfRunes([]rune(s)), nil
		}
		return []byte(s), nil
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return Atom("undefined"), nil
		}
		return marshalValue(v.Elem(), path, opts)
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 && !t.Elem().Implements(marshalerType) {
			if v.Kind() == reflect.Slice {
				return append([]byte{}, v.Bytes()...), nil
			}
			b := make([]byte, v.Len())
			reflect.Copy(reflect.ValueOf(b), v)
			return b, nil
		}
		elems := make([]Term, v.Len())
		for i := range elems {
			e, err := marshalValue(v.Index(i), path+"["+strconv.Itoa(i)+"]", opts)
			if err != nil {
				return nil, err
			}
			elems[i] = e
		}
		return canonList(elems, nil), nil
	case reflect.Map:
		m := make(Map, 0, v.Len())
		it := v.MapRange()
		for it.Next() {
			k, err := marshalValue(it.Key(), path, fieldOpts{})
			if err != nil {
				return nil, err
			}
			val, err := marshalValue(it.Value(), path+"["+Format(k)+"]", opts)
			if err != nil {
				return nil, err
			}
			m = append(m, MapEntry{Key: k, Value: val})
		}
		return sortedMap(m), nil
	case reflect.Struct:
		return marshalStruct(v, path)
	}
	return nil, &MarshalError{Path: path, Reason: "no Erlang term for Go type " + t.String()}
}

func marshalStruct(v reflect.Value, path string) (Term, error) {
	si := structInfoOf(v.Type())
	if si.tuple {
		tup := make(Tuple, 0, len(si.fields)+1)
		if si.hasTag {
			tup = append(tup, si.tag)
		}
		for _, f := range si.fields {
			fv, ok := fieldByIndex(v, f.index)
			var e Term = Atom("undefined")
			if ok {
				var err error
				if e, err = marshalValue(fv, path+"."+string(f.key), f.opts); err != nil {
					return nil, err
				}
			}
			tup = append(tup, e)
		}
		return tup, nil
	}
	m := make(Map, 0, len(si.fields))
	for _, f := range si.fields {
		fv, ok := fieldByIndex(v, f.index)
		if !ok || f.opts.omitempty && isEmpty(fv) {
			continue
		}
		e, err := marshalValue(fv, path+"."+string(f.key), f.opts)
		if err != nil {
			return nil, err
		}
		m = append(m, MapEntry{Key: f.key, Value: e})
	}
	return sortedMap(m), nil
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map, reflect.String, reflect.Array:
		return v.Len() == 0
	}
	return v.IsZero()
}

// termKind names the kind of a term for error messages.
func termKind(t Term) string {
	switch classOf(t) {
	case classNumber:
		if _, isInt := numberKinds(t); isInt {
			return "integer"
		}
		return "float"
	case classAtom:
		return "atom"
	case classRef:
		return "reference"
	case classFun:
		return "fun"
	case classPort:
		return "port"
	case classPid:
		return "pid"
	case classTuple:
		return "tuple"
	case classMap:
		return "map"
	case classNil:
		return "[]"
	case classList:
		if _, ok := t.(ImproperList); ok {
			return "improper list"
		}
		return "list"
	case classBits:
		if b, ok := t.(BitBinary); ok && len(b.Bytes) > 0 && b.Bits != 8 {
			return "bitstring"
		}
		return "binary"
	}
	return "Go " + reflect.TypeOf(t).String()
}

func mismatch(path, want string, t Term) error {
	return &UnmarshalError{Path: path, Want: want, Got: termKind(t)}
}

func unmarshalValue(t Term, v reflect.Value, path string, opts fieldOpts) error {
	if v.CanAddr() && v.Addr().Type().Implements(unmarshalerType) {
		return v.Addr().Interface().(Unmarshaler).UnmarshalTerm(t)
	}
	vt := v.Type()
	if vt == termType || vt.Kind() == reflect.Interface && vt.NumMethod() == 0 {
		if t == nil {
			v.SetZero()
			return nil
		}
		v.Set(reflect.ValueOf(t))
		return nil
	}
	if isTermType(vt) && vt != bigIntType {
		tv := reflect.ValueOf(t)
		if t != nil && tv.Type() == vt {
			v.Set(tv)
			return nil
		}
		if vt == reflect.TypeFor[List]() || vt == reflect.TypeFor[String]() {
			if elems, ok := listElems(t); ok {
				if vt == reflect.TypeFor[List]() {
					v.Set(reflect.ValueOf(List(elems)))
					return nil
				}
				if s, ok := canonList(elems, nil).(String); ok {
					v.Set(reflect.ValueOf(s))
					return nil
				}
			}
		}
		if vt == reflect.TypeFor[Atom]() {
			if b, ok := t.(bool); ok {
				v.SetString(atomText(b))
				return nil
			}
		}
		return mismatch(path, termKind(reflect.Zero(vt).Interface()), t)
	}
	switch v.Kind() {
	case reflect.Pointer:
		if a, ok := t.(Atom); ok && (a == "undefined" || a == "nil") {
			v.SetZero()
			return nil
		}
		if vt == bigIntType {
			n := toNumber(t)
			if _, isInt := numberKinds(t); !isInt {
				return mismatch(path, "integer", t)
			}
			v.Set(reflect.ValueOf(new(big.Int).Set(n.bigInt())))
			return nil
		}
		if v.IsNil() {
			v.Set(reflect.New(vt.Elem()))
		}
		return unmarshalValue(t, v.Elem(), path, opts)
	case reflect.Bool:
		switch atomText(t) {
		case "true":
			v.SetBool(true)
			return nil
		case "false":
			v.SetBool(false)
			return nil
		}
		return mismatch(path, "true or false", t)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if _, isInt := numberKinds(t); !isInt {
			return mismatch(path, "integer", t)
		}
		n := toNumber(t)
		if n.isBig || v.OverflowInt(n.small) {
			return &UnmarshalError{Path: path, Reason: "integer " + n.bigInt().String() + " overflows " + vt.String()}
		}
		v.SetInt(n.small)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if _, isInt := numberKinds(t); !isInt {
			return mismatch(path, "integer", t)
		}
		b := toNumber(t).bigInt()
		if b.Sign() < 0 || !b.IsUint64() || v.OverflowUint(b.Uint64()) {
			return &UnmarshalError{Path: path, Reason: "integer " + b.String() + " overflows " + vt.String()}
		}
		v.SetUint(b.Uint64())
		return nil
	case reflect.Float32, reflect.Float64:
		isNum, _ := numberKinds(t)
		if !isNum {
			return mismatch(path, "float", t)
		}
		n := toNumber(t)
		f := n.f
		if !n.isFloat {
			f, _ = new(big.Float).SetInt(n.bigInt()).Float64()
		}
		if v.OverflowFloat(f) {
			return &UnmarshalError{Path: path, Reason: "float " + FormatFloat(f) + " overflows " + vt.String()}
		}
		v.SetFloat(f)
		return nil
	case reflect.String:
		switch x := t.(type) {
		case []byte:
			v.SetString(string(x))
			return nil
		case string:
			v.SetString(x)
			return nil
		case Atom:
			v.SetString(string(x))
			return nil
		case bool:
			v.SetString(atomText(x))
			return nil
		}
		if elems, ok := listElems(t); ok {
			var sb strings.Builder
			for i, e := range elems {
				n := toNumber(e)
				if _, isInt := numberKinds(e); !isInt || n.isBig || n.small < 0 || n.small > utf8.MaxRune {
					return mismatch(path+"["+strconv.Itoa(i)+"]", "character code", e)
				}
				sb.WriteRune(rune(n.small))
			}
			v.SetString(sb.String())
			return nil
		}
		return mismatch(path, "binary, charlist or atom", t)
	case reflect.Slice:
		if vt.Elem().Kind() == reflect.Uint8 && !reflect.PointerTo(vt.Elem()).Implements(unmarshalerType) {
			b, ok := binaryBytes(t)
			if !ok {
				return mismatch(path, "binary", t)
			}
			v.SetBytes(append([]byte{}, b...))
			return nil
		}
		elems, ok := listElems(t)
		if !ok {
			return mismatch(path, "list", t)
		}
		s := reflect.MakeSlice(vt, len(elems), len(elems))
		for i, e := range elems {
			if err := unmarshalValue(e, s.Index(i), path+"["+strconv.Itoa(i)+"]", opts); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Array:
		if vt.Elem().Kind() == reflect.Uint8 {
			b, ok := binaryBytes(t)
			if !ok {
				return mismatch(path, "binary", t)
			}
			if len(b) != v.Len() {
				return &UnmarshalError{Path: path, Reason: "binary of " + strconv.Itoa(len(b)) + " bytes for " + vt.String()}
			}
			reflect.Copy(v, reflect.ValueOf(b))
			return nil
		}
		elems, ok := listElems(t)
		if !ok {
			return mismatch(path, "list", t)
		}
		if len(elems) != v.Len() {
			return &UnmarshalError{Path: path, Reason: "list of " + strconv.Itoa(len(elems)) + " elements for " + vt.String()}
		}
		for i, e := range elems {
			if err := unmarshalValue(e, v.Index(i), path+"["+strconv.Itoa(i)+"]", opts); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		m, ok := t.(Map)
		if !ok {
			return mismatch(path, "map", t)
		}
		out := reflect.MakeMapWithSize(vt, len(m))
		for _, e := range m {
			k := reflect.New(vt.Key()).Elem()
			if err := unmarshalValue(e.Key, k, path+"["+Format(e.Key)+"]", fieldOpts{}); err != nil {
				return err
			}
			val := reflect.New(vt.Elem()).Elem()
			if err := unmarshalValue(e.Value, val, path+"["+Format(e.Key)+"]", opts); err != nil {
				return err
			}
			out.SetMapIndex(k, val)
		}
		v.Set(out)
		return nil
	case reflect.Struct:
		return unmarshalStruct(t, v, path)
	}
	return &UnmarshalError{Path: path, Reason: "cannot unmarshal into Go type " + vt.String()}
}

// listElems returns the elements of a proper list term.
func listElems(t Term) ([]Term, bool) {
	switch classOf(t) {
	case classNil:
		return nil, true
	case classList:
	default:
		return nil, false
	}
	it := newListIter(t)
	var elems []Term
	for {
		e, ok := it.next()
		if !ok {
			break
		}
		elems = append(elems, e)
	}
	if it.tail != nil {
		return nil, false
	}
	return elems, true
}

func binaryBytes(t Term) ([]byte, bool) {
	switch x := t.(type) {
	case []byte:
		return x, true
	case string:
		return []byte(x), true
	case BitBinary:
		if len(x.Bytes) == 0 || x.Bits == 8 {
			return x.Bytes, true
		}
	}
	return nil, false
}

func unmarshalStruct(t Term, v reflect.Value, path string) error {
	si := structInfoOf(v.Type())
	if si.tuple {
		tup, ok := t.(Tuple)
		if !ok {
			return mismatch(path, "tuple", t)
		}
		want := len(si.fields)
		elems := []Term(tup)
		if si.hasTag {
			want++
			if len(tup) > 0 && !Equal(tup[0], si.tag) {
				return &UnmarshalError{Path: path + "[0]", Reason: "want tag " + Format(si.tag) + ", got " + Format(tup[0])}
			}
		}
		if len(tup) != want {
			return &UnmarshalError{Path: path, Reason: "want a tuple of " + strconv.Itoa(want) + " elements, got " + strconv.Itoa(len(tup))}
		}
		if si.hasTag {
			elems = elems[1:]
		}
		for i, f := range si.fields {
			fv, err := settableField(v, f.index)
			if err != nil {
				return err
			}
			if err := unmarshalValue(elems[i], fv, path+"."+string(f.key), f.opts); err != nil {
				return err
			}
		}
		return nil
	}
	m, ok := t.(Map)
	if !ok {
		return mismatch(path, "map", t)
	}
	for _, e := range m {
		var key string
		switch k := e.Key.(type) {
		case Atom:
			key = string(k)
		case []byte:
			key = string(k)
		case string:
			key = k
		default:
			continue
		}
		for _, f := range si.fields {
			if string(f.key) != key {
				continue
			}
			fv, err := settableField(v, f.index)
			if err != nil {
				return err
			}
			if err := unmarshalValue(e.Value, fv, path+"."+key, f.opts); err != nil {
				return err
			}
			break
		}
	}
	return nil
}

// settableField returns the field at index, allocating nil embedded pointers on the way.
func settableField(v reflect.Value, index []int) (reflect.Value, error) {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				if !v.CanSet() {
					return reflect.Value{}, &UnmarshalError{Reason: "cannot set an embedded pointer to an unexported struct type " + v.Type().String()}
				}
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v, nil
}
