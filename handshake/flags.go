package handshake

import (
	"strconv"
	"strings"
)

// Flags is the 64-bit set of distribution capability flags exchanged in the
// handshake (erl_dist_protocol, "Distribution Flags").
type Flags uint64

// Distribution flags. Values are the ones on the wire; note that
// FlagMandatory25Digest is 0x4000000, not the 1<<36 printed in some docs.
const (
	FlagPublished          Flags = 0x1
	FlagAtomCache          Flags = 0x2
	FlagExtendedReferences Flags = 0x4
	FlagDistMonitor        Flags = 0x8
	FlagFunTags            Flags = 0x10
	FlagDistMonitorName    Flags = 0x20
	FlagHiddenAtomCache    Flags = 0x40
	FlagNewFunTags         Flags = 0x80
	FlagExtendedPidsPorts  Flags = 0x100
	FlagExportPtrTag       Flags = 0x200
	FlagBitBinaries        Flags = 0x400
	FlagNewFloats          Flags = 0x800
	FlagUnicodeIO          Flags = 0x1000
	FlagDistHdrAtomCache   Flags = 0x2000
	FlagSmallAtomTags      Flags = 0x4000
	FlagUTF8Atoms          Flags = 0x10000
	FlagMapTag             Flags = 0x20000
	FlagBigCreation        Flags = 0x40000
	FlagSendSender         Flags = 0x80000
	FlagBigSeqTraceLabels  Flags = 0x100000
	FlagExitPayload        Flags = 0x400000
	FlagFragments          Flags = 0x800000
	FlagHandshake23        Flags = 0x1000000
	FlagUnlinkID           Flags = 0x2000000
	FlagMandatory25Digest  Flags = 0x4000000
	FlagSpawn              Flags = 1 << 32
	FlagNameMe             Flags = 1 << 33
	FlagV4NC               Flags = 1 << 34
	FlagAlias              Flags = 1 << 35
)

// Mandatory25 is the set OTP 25 requires of every peer; the digest bit
// FlagMandatory25Digest stands for it.
const Mandatory25 Flags = FlagExtendedReferences | FlagFunTags | FlagNewFunTags |
	FlagExtendedPidsPorts | FlagExportPtrTag | FlagBitBinaries | FlagNewFloats |
	FlagUTF8Atoms | FlagMapTag | FlagBigCreation | FlagHandshake23

// Mandatory26 is the set OTP 26, 27 and 28 require of every peer
// (0x4_0307_0F94): Mandatory25 plus UNLINK_ID and V4_NC.
const Mandatory26 Flags = Mandatory25 | FlagUnlinkID | FlagV4NC

// DefaultFlags is what a node built on this package advertises: every flag
// OTP 26+ requires, the digest bit, and only the optional capabilities the
// node package really implements (monitors of its processes and registered
// names, small atom tags, SEND_SENDER, aliases, and fragments: it reads
// distribution header frames 131 68/69/70 and reassembles fragmented
// messages). It is hidden: no FlagPublished. No atom cache: headers carry
// no atom cache references.
const DefaultFlags Flags = Mandatory26 | FlagMandatory25Digest |
	FlagDistMonitor | FlagDistMonitorName | FlagSmallAtomTags |
	FlagSendSender | FlagAlias | FlagFragments | FlagExitPayload

// RequiredFlags is what this package demands of a peer by default: the
// encodings the node package writes without fallbacks (extended pids and
// references with 32-bit creation, UTF-8 atoms, new floats). A peer lacking
// one is answered with "not_allowed".
const RequiredFlags Flags = FlagExtendedReferences | FlagExtendedPidsPorts |
	FlagNewFloats | FlagUTF8Atoms | FlagBigCreation

// expand returns f with the digest bit FlagMandatory25Digest expanded into
// the individual flags it stands for.
func (f Flags) expand() Flags {
	if f&FlagMandatory25Digest != 0 {
		f |= Mandatory25
	}
	return f
}

// Has reports whether every flag in x is set in f.
func (f Flags) Has(x Flags) bool { return f&x == x }

var flagNames = []struct {
	f    Flags
	name string
}{
	{FlagPublished, "PUBLISHED"}, {FlagAtomCache, "ATOM_CACHE"},
	{FlagExtendedReferences, "EXTENDED_REFERENCES"}, {FlagDistMonitor, "DIST_MONITOR"},
	{FlagFunTags, "FUN_TAGS"}, {FlagDistMonitorName, "DIST_MONITOR_NAME"},
	{FlagHiddenAtomCache, "HIDDEN_ATOM_CACHE"}, {FlagNewFunTags, "NEW_FUN_TAGS"},
	{FlagExtendedPidsPorts, "EXTENDED_PIDS_PORTS"}, {FlagExportPtrTag, "EXPORT_PTR_TAG"},
	{FlagBitBinaries, "BIT_BINARIES"}, {FlagNewFloats, "NEW_FLOATS"},
	{FlagUnicodeIO, "UNICODE_IO"}, {FlagDistHdrAtomCache, "DIST_HDR_ATOM_CACHE"},
	{FlagSmallAtomTags, "SMALL_ATOM_TAGS"}, {FlagUTF8Atoms, "UTF8_ATOMS"},
	{FlagMapTag, "MAP_TAG"}, {FlagBigCreation, "BIG_CREATION"},
	{FlagSendSender, "SEND_SENDER"}, {FlagBigSeqTraceLabels, "BIG_SEQTRACE_LABELS"},
	{FlagExitPayload, "EXIT_PAYLOAD"}, {FlagFragments, "FRAGMENTS"},
	{FlagHandshake23, "HANDSHAKE_23"}, {FlagUnlinkID, "UNLINK_ID"},
	{FlagMandatory25Digest, "MANDATORY_25_DIGEST"}, {FlagSpawn, "SPAWN"},
	{FlagNameMe, "NAME_ME"}, {FlagV4NC, "V4_NC"}, {FlagAlias, "ALIAS"},
}

// String lists the set flags by their protocol names, e.g.
// "EXTENDED_REFERENCES|UTF8_ATOMS"; unknown bits are printed in hex.
func (f Flags) String() string {
	var parts []string
	rest := f
	for _, n := range flagNames {
		if f&n.f != 0 {
			parts = append(parts, n.name)
			rest &^= n.f
		}
	}
	if rest != 0 {
		parts = append(parts, "0x"+strconv.FormatUint(uint64(rest), 16))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}
