// Package epmd speaks the Erlang Port Mapper Daemon protocol: a client that registers, looks up and lists node names, and a pure-Go EPMD server.
//
// Every request travels on its own TCP connection as a 2-byte big-endian length followed by the request body;
// replies carry no length prefix. A registration (ALIVE2) lives exactly as long as the connection that made it.
// The wire format follows OTP's erl_dist_protocol documentation and was checked against the epmd of OTP 25.
package epmd

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"unicode/utf8"
)

// DefaultPort is the well-known EPMD port.
const DefaultPort = 4369

// Request and reply tags.
const (
	tagAlive2Req  = 120 // 'x'
	tagAlive2XRes = 118 // 'v': ALIVE2_X_RESP, 32-bit creation
	tagAlive2Res  = 121 // 'y': ALIVE2_RESP, 16-bit creation
	tagPort2Req   = 122 // 'z'
	tagPort2Res   = 119 // 'w'
	tagNamesReq   = 110 // 'n'
	tagDumpReq    = 100 // 'd'
	tagKillReq    = 107 // 'k'
	tagStopReq    = 115 // 's'
)

// Limits, the same as epmd's (epmd_int.h): names and extra data of at most 1020 bytes, names of at most
// 255 characters, request bodies shorter than 3058 bytes.
const (
	maxNameChars  = 255
	maxNameBytes  = 4 * maxNameChars
	maxExtraBytes = 4 * maxNameChars
	maxRequestLen = 3*maxNameBytes - 3
)

// Node types and protocol numbers used in ALIVE2 and PORT_PLEASE2.
const (
	// TypeNormal marks a normal Erlang node. BEAM sends it even when the node is hidden.
	TypeNormal byte = 77
	// TypeHidden marks a hidden node (C nodes, jinterface).
	TypeHidden byte = 72
	// ProtocolTCP is the only protocol number in use: TCP/IPv4 (also used for IPv6).
	ProtocolTCP byte = 0
)

// Distribution protocol versions announced by OTP 25.
const (
	HighestVersion uint16 = 6
	LowestVersion  uint16 = 5
)

// PortFromEnv returns ERL_EPMD_PORT if set (error if it is not a valid port 1..65535), else DefaultPort.
func PortFromEnv() (int, error) {
	s, ok := os.LookupEnv("ERL_EPMD_PORT")
	if !ok || s == "" {
		return DefaultPort, nil
	}
	p, err := strconv.Atoi(s)
	if err != nil || p < 1 || p > 65535 {
		return 0, fmt.Errorf("epmd: ERL_EPMD_PORT=%q is not a port number 1..65535", s)
	}
	return p, nil
}

// NodeInfo is what a node registers with EPMD and what PORT_PLEASE2 returns.
type NodeInfo struct {
	Name           string // alive part, before '@'
	Port           int    // distribution listen port
	Type           byte   // 77 normal (BEAM sends 77 even when hidden), 72 hidden
	Protocol       byte   // 0 = tcp/ip v4
	HighestVersion uint16 // 6 like OTP 25
	LowestVersion  uint16 // 5 like OTP 25
	Extra          []byte
}

// NameEntry is one line of a NAMES reply.
type NameEntry struct {
	Name string
	Port int
}

var (
	// ErrNameTaken means ALIVE2 was answered with a non-zero result: the name is registered already
	// (or the EPMD refused it for another reason; the protocol does not say which).
	ErrNameTaken = errors.New("epmd: name already registered")
	// ErrNotRegistered means PORT_PLEASE2 was answered with 119 1: no such name on that host.
	ErrNotRegistered = errors.New("epmd: name not registered")
	// ErrInvalidName means a node name cannot be sent to EPMD: empty, longer than 255 characters or
	// 1020 bytes, not UTF-8, or containing NUL or '@'.
	ErrInvalidName = errors.New("epmd: invalid node name")
	// ErrServerClosed is returned by Server.Serve and Server.ListenAndServe after Server.Close.
	ErrServerClosed = errors.New("epmd: server closed")
)

// ProtocolError reports a malformed or unexpected reply from an EPMD.
type ProtocolError struct {
	Op     string // "register", "port_please" or "names"
	Reason string
}

func (e *ProtocolError) Error() string {
	return "epmd: " + e.Op + ": protocol error: " + e.Reason
}

// checkName validates an alive part the way epmd does (1..255 UTF-8 characters, no NUL) and also
// refuses '@', which marks a full node name passed by mistake.
func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case len(name) > maxNameBytes || utf8.RuneCountInString(name) > maxNameChars:
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidName, maxNameChars)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: not UTF-8", ErrInvalidName)
	}
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case 0:
			return fmt.Errorf("%w: contains NUL", ErrInvalidName)
		case '@':
			return fmt.Errorf("%w: %q contains '@' (pass the part before it)", ErrInvalidName, name)
		}
	}
	return nil
}
