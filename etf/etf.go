// Package etf is Erlang's term format for Go: it encodes and decodes the external term format
// (erl_ext_dist) a distribution node exchanges, reads and prints terms as Erlang text, and maps Go
// values to terms.
//
// Go types map to Erlang terms as follows (decoding always produces the types on the left):
//
//	Atom          atom (true and false decode as Atom too)
//	int64         integer that fits in 64 bits (SMALL_INTEGER, INTEGER, SMALL_BIG, LARGE_BIG)
//	*big.Int      integer that does not fit in 64 bits
//	float64       float
//	[]byte        binary (a fresh copy, never aliasing the input)
//	BitBinary     bitstring whose bit length is not a multiple of 8
//	String        STRING_EXT, a list of small integers on the BEAM side
//	List          proper list; [] decodes as an empty, non-nil List
//	ImproperList  list whose tail is not [] (for example the [alias|Ref] call tag)
//	Tuple, Map    tuple, map (map entries keep their wire order)
//	Pid, Port, Ref, Export, Fun
//
// When encoding, the codec also accepts bool, every Go integer type, float32, string (encoded as a
// binary, like an Elixir string: use String for an Erlang charlist) and nil (encoded as []).
//
// Encoding appends to the caller's buffer and does not allocate for atoms, integers, pids, references or
// tuples of them. Decoding is a single pass over the input; it never panics and allocates only what the
// input's remaining bytes could fill (a length prefix alone allocates nothing beyond that). Neither
// direction recurses: any depth binary_to_term/1 accepts decodes, and any decoded term encodes again
// (DecodeOptions.MaxDepth bounds depth for a caller that wants a limit).
//
// Term text: Parse and ParseAll read terms written in Erlang syntax (as erl_parse:parse_term/1 and
// file:consult/1 do), and Format prints a term on one line exactly as io_lib:format("~0tp", [T])
// does, so that Parse(Format(t)) is Equal to t (pids, ports, references and local funs excepted).
// Compare and Equal order and compare terms as Erlang does.
//
// Struct mapping: Marshal and Unmarshal map Go values to terms and back, like encoding/json: structs to
// maps with atom keys (or to tagged tuples, see TupleTag), strings to binaries (or charlists or atoms,
// by struct tag), slices to lists, with errors that name the path of the offending term.
package etf

import (
	"errors"
	"strconv"
)

// VersionTag is the byte that starts a complete external term (the output of term_to_binary/1).
const VersionTag = 131

// Term is any value this package can encode or may decode.
type Term = any

// Atom is an Erlang atom, held as UTF-8. It may have at most 255 characters.
type Atom string

// Pid is an Erlang process identifier (NEW_PID_EXT; the old PID_EXT decodes too).
type Pid struct {
	Node     Atom
	ID       uint32
	Serial   uint32
	Creation uint32
}

// Port is an Erlang port identifier. It encodes as NEW_PORT_EXT when ID fits in 32 bits, as OTP 25 does,
// and as V4_PORT_EXT otherwise; PORT_EXT, NEW_PORT_EXT and V4_PORT_EXT all decode.
type Port struct {
	Node     Atom
	ID       uint64
	Creation uint32
}

// Ref is an Erlang reference (NEWER_REFERENCE_EXT; NEW_REFERENCE_EXT and REFERENCE_EXT decode too).
// Len is the number of valid words in ID (1..5); decoded words past Len are zero, so a decoded Ref is
// comparable with == and usable as a map key.
type Ref struct {
	Node     Atom
	Creation uint32
	Len      uint8
	ID       [5]uint32
}

// Tuple is an Erlang tuple.
type Tuple []Term

// List is a proper Erlang list. An empty List encodes as [] (NIL_EXT).
type List []Term

// ImproperList is a list whose tail is not [], such as [alias|Ref]. With no Elems it encodes as Tail alone.
// Decoding merges a tail that is itself a list into the elements (the wire may split one list into
// chained LIST_EXTs), so a decoded ImproperList never has a list as its Tail.
type ImproperList struct {
	Elems []Term
	Tail  Term
}

// Map is an Erlang map, its entries in wire order. Decoding does not check for duplicate keys.
type Map []MapEntry

// MapEntry is one key/value pair of a Map.
type MapEntry struct {
	Key, Value Term
}

// String is an Erlang list of bytes sent as STRING_EXT (what term_to_binary makes of "abc" or [1,2,3]).
// It encodes as STRING_EXT up to 65535 bytes and as a list of integers beyond that; String("") encodes as
// [] and an empty STRING_EXT decodes as List{}, since "" and [] are the same Erlang term.
type String string

// BitBinary is a bitstring: Bytes holds the bits, and Bits says how many bits of the last byte are used
// (1..8; 0 only when Bytes is empty). Unused bits of the last byte are encoded and decoded as zero.
type BitBinary struct {
	Bytes []byte
	Bits  uint8
}

// Export is an external fun, fun Module:Function/Arity (EXPORT_EXT).
type Export struct {
	Module, Function Atom
	Arity            uint8
}

// Fun is a local fun (NEW_FUN_EXT) kept opaque: Raw is its whole encoding, starting with the tag byte 112.
type Fun struct {
	Raw []byte
}

// Sentinel errors, matched with errors.Is through *DecodeError and *EncodeError.
var (
	// ErrTruncated: the input ends before the term does (or a length prefix exceeds the input).
	ErrTruncated = errors.New("etf: truncated input")
	// ErrUnknownTag: a tag byte this package does not decode.
	ErrUnknownTag = errors.New("etf: unknown tag")
	// ErrTooDeep: tuples, lists and maps are nested deeper than DecodeOptions.MaxDepth allows.
	ErrTooDeep = errors.New("etf: nesting too deep")
	// ErrInvalid: a malformed value (bad version byte, bad atom, bad length, non-finite float, ...).
	ErrInvalid = errors.New("etf: invalid term")
	// ErrUnsupportedType: Append was given a Go value it cannot encode.
	ErrUnsupportedType = errors.New("etf: unsupported type")
)

// DecodeError reports malformed input. Offset is the position in the decoded slice where the problem was
// found; Err is one of ErrTruncated, ErrUnknownTag, ErrTooDeep (only with DecodeOptions.MaxDepth) or
// ErrInvalid.
type DecodeError struct {
	Offset int
	Reason string
	Err    error
}

func (e *DecodeError) Error() string {
	return "etf: decode at offset " + strconv.Itoa(e.Offset) + ": " + e.Reason
}

// Unwrap returns the sentinel error.
func (e *DecodeError) Unwrap() error { return e.Err }

// EncodeError reports a value that cannot be encoded. Type is its Go type; Err is ErrUnsupportedType or
// ErrInvalid (which includes a term that contains itself).
type EncodeError struct {
	Type   string
	Reason string
	Err    error
}

func (e *EncodeError) Error() string {
	return "etf: cannot encode " + e.Type + ": " + e.Reason
}

// Unwrap returns the sentinel error.
func (e *EncodeError) Unwrap() error { return e.Err }

// Tag bytes of the external term format.
const (
	tagNewFloat       = 70
	tagBitBinary      = 77
	tagCompressed     = 80
	tagAtomCacheRef   = 82
	tagNewPid         = 88
	tagNewPort        = 89
	tagNewerReference = 90
	tagSmallInteger   = 97
	tagInteger        = 98
	tagFloat          = 99
	tagAtom           = 100
	tagReference      = 101
	tagPort           = 102
	tagPid            = 103
	tagSmallTuple     = 104
	tagLargeTuple     = 105
	tagNil            = 106
	tagString         = 107
	tagList           = 108
	tagBinary         = 109
	tagSmallBig       = 110
	tagLargeBig       = 111
	tagNewFun         = 112
	tagExport         = 113
	tagNewReference   = 114
	tagSmallAtom      = 115
	tagMap            = 116
	tagAtomUTF8       = 118
	tagSmallAtomUTF8  = 119
	tagV4Port         = 120
)

const (
	maxAtomChars = 255
	maxRefWords  = 5
	// minFunSize is the smallest NEW_FUN_EXT Size field: Size, Arity, Uniq, Index, NumFree.
	minFunSize = 4 + 1 + 16 + 4 + 4
)
