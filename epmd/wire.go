package epmd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Wire encoding and decoding shared by Client and Server. Requests are built with their 2-byte length
// prefix; replies are read from an io.Reader because they carry no length.

// maxNamesReply bounds how much of a NAMES reply the client reads (about 4000 names of 1020 bytes).
const maxNamesReply = 4 << 20

// appendRequest appends the length prefix and body.
func appendRequest(dst, body []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(body)))
	return append(dst, body...)
}

// alive2Body encodes ALIVE2_REQ without the length prefix.
func alive2Body(info NodeInfo) []byte {
	b := make([]byte, 0, 13+len(info.Name)+len(info.Extra))
	b = append(b, tagAlive2Req)
	b = binary.BigEndian.AppendUint16(b, uint16(info.Port))
	b = append(b, info.Type, info.Protocol)
	b = binary.BigEndian.AppendUint16(b, info.HighestVersion)
	b = binary.BigEndian.AppendUint16(b, info.LowestVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(info.Name)))
	b = append(b, info.Name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(info.Extra)))
	return append(b, info.Extra...)
}

// parseAlive2Body decodes ALIVE2_REQ the way epmd does: the body must hold the fixed part, a non-empty
// name without NUL and the extra data it announces; bytes after the extra data are ignored. Names that
// are too long or not UTF-8 are not rejected here (epmd answers those with a refusal, not a close).
func parseAlive2Body(body []byte) (NodeInfo, error) {
	if len(body) <= 13 || body[0] != tagAlive2Req {
		return NodeInfo{}, fmt.Errorf("ALIVE2_REQ too short (%d bytes)", len(body))
	}
	nlen := int(binary.BigEndian.Uint16(body[9:]))
	if 13+nlen > len(body) {
		return NodeInfo{}, fmt.Errorf("ALIVE2_REQ name length %d exceeds the request", nlen)
	}
	name := body[11 : 11+nlen]
	elen := int(binary.BigEndian.Uint16(body[11+nlen:]))
	if 13+nlen+elen > len(body) {
		return NodeInfo{}, fmt.Errorf("ALIVE2_REQ extra length %d exceeds the request", elen)
	}
	if bytes.IndexByte(name, 0) >= 0 {
		return NodeInfo{}, errors.New("ALIVE2_REQ name contains NUL")
	}
	var extra []byte
	if elen > 0 {
		extra = bytes.Clone(body[13+nlen : 13+nlen+elen])
	}
	return NodeInfo{
		Port:           int(binary.BigEndian.Uint16(body[1:])),
		Type:           body[3],
		Protocol:       body[4],
		HighestVersion: binary.BigEndian.Uint16(body[5:]),
		LowestVersion:  binary.BigEndian.Uint16(body[7:]),
		Name:           string(name),
		Extra:          extra,
	}, nil
}

// alive2Reply encodes the answer to ALIVE2_REQ: ALIVE2_X_RESP for clients announcing version 6 or
// later, else the old ALIVE2_RESP with a 16-bit creation.
func alive2Reply(high uint16, result byte, creation uint32) []byte {
	if high >= 6 {
		return binary.BigEndian.AppendUint32([]byte{tagAlive2XRes, result}, creation)
	}
	return binary.BigEndian.AppendUint16([]byte{tagAlive2Res, result}, uint16(creation))
}

// readAlive2Reply reads ALIVE2_X_RESP or ALIVE2_RESP. Bytes after the reply are left unread.
func readAlive2Reply(r io.Reader) (result byte, creation uint32, err error) {
	const op = "register"
	var b [6]byte
	if err := readFull(r, op, b[:2]); err != nil {
		return 0, 0, err
	}
	switch b[0] {
	case tagAlive2XRes:
		if err := readFull(r, op, b[2:6]); err != nil {
			return 0, 0, err
		}
		return b[1], binary.BigEndian.Uint32(b[2:]), nil
	case tagAlive2Res:
		if err := readFull(r, op, b[2:4]); err != nil {
			return 0, 0, err
		}
		return b[1], uint32(binary.BigEndian.Uint16(b[2:])), nil
	default:
		return 0, 0, &ProtocolError{Op: op, Reason: fmt.Sprintf("unexpected reply tag %d", b[0])}
	}
}

// port2Body encodes PORT_PLEASE2_REQ without the length prefix.
func port2Body(name string) []byte {
	return append([]byte{tagPort2Req}, name...)
}

// port2Reply encodes a successful PORT2_RESP.
func port2Reply(info NodeInfo) []byte {
	b := make([]byte, 0, 14+len(info.Name)+len(info.Extra))
	b = append(b, tagPort2Res, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(info.Port))
	b = append(b, info.Type, info.Protocol)
	b = binary.BigEndian.AppendUint16(b, info.HighestVersion)
	b = binary.BigEndian.AppendUint16(b, info.LowestVersion)
	b = binary.BigEndian.AppendUint16(b, uint16(len(info.Name)))
	b = append(b, info.Name...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(info.Extra)))
	return append(b, info.Extra...)
}

// readPort2Reply reads PORT2_RESP. A non-zero result is ErrNotRegistered.
func readPort2Reply(r io.Reader) (NodeInfo, error) {
	const op = "port_please"
	var b [12]byte
	if err := readFull(r, op, b[:2]); err != nil {
		return NodeInfo{}, err
	}
	if b[0] != tagPort2Res {
		return NodeInfo{}, &ProtocolError{Op: op, Reason: fmt.Sprintf("unexpected reply tag %d", b[0])}
	}
	if b[1] != 0 {
		return NodeInfo{}, ErrNotRegistered
	}
	if err := readFull(r, op, b[2:12]); err != nil {
		return NodeInfo{}, err
	}
	info := NodeInfo{
		Port:           int(binary.BigEndian.Uint16(b[2:])),
		Type:           b[4],
		Protocol:       b[5],
		HighestVersion: binary.BigEndian.Uint16(b[6:]),
		LowestVersion:  binary.BigEndian.Uint16(b[8:]),
	}
	name := make([]byte, binary.BigEndian.Uint16(b[10:]))
	if err := readFull(r, op, name); err != nil {
		return NodeInfo{}, err
	}
	info.Name = string(name)
	if err := readFull(r, op, b[:2]); err != nil {
		return NodeInfo{}, err
	}
	if n := binary.BigEndian.Uint16(b[:2]); n > 0 {
		info.Extra = make([]byte, n)
		if err := readFull(r, op, info.Extra); err != nil {
			return NodeInfo{}, err
		}
	}
	return info, nil
}

// namesLine formats one line of a NAMES reply.
func namesLine(dst []byte, name string, port int) []byte {
	dst = append(dst, "name "...)
	dst = append(dst, name...)
	dst = append(dst, " at port "...)
	dst = strconv.AppendInt(dst, int64(port), 10)
	return append(dst, '\n')
}

// readNamesReply reads a NAMES reply up to EOF: the EPMD's port as 4 bytes, then lines
// "name NAME at port PORT\n". Like erl_epmd, lines that do not have that form (and an unterminated last
// line) are skipped. A name may itself contain spaces: the last " at port " ends it.
func readNamesReply(r io.Reader) (epmdPort uint32, names []NameEntry, err error) {
	const op = "names"
	var b [4]byte
	if err := readFull(r, op, b[:]); err != nil {
		return 0, nil, err
	}
	br := bufio.NewReader(io.LimitReader(r, maxNamesReply+1))
	total := 0
	for {
		line, rerr := br.ReadBytes('\n')
		total += len(line)
		if total > maxNamesReply {
			return 0, nil, &ProtocolError{Op: op, Reason: fmt.Sprintf("reply longer than %d bytes", maxNamesReply)}
		}
		if rerr == nil {
			if e, ok := parseNamesLine(line[:len(line)-1]); ok {
				names = append(names, e)
			}
			continue
		}
		if errors.Is(rerr, io.EOF) {
			return binary.BigEndian.Uint32(b[:]), names, nil
		}
		return 0, nil, rerr
	}
}

func parseNamesLine(line []byte) (NameEntry, bool) {
	rest, ok := bytes.CutPrefix(line, []byte("name "))
	if !ok {
		return NameEntry{}, false
	}
	i := bytes.LastIndex(rest, []byte(" at port "))
	if i < 1 {
		return NameEntry{}, false
	}
	digits := rest[i+len(" at port "):]
	if len(digits) == 0 || len(digits) > 5 {
		return NameEntry{}, false
	}
	port := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return NameEntry{}, false
		}
		port = port*10 + int(c-'0')
	}
	if port > 65535 {
		return NameEntry{}, false
	}
	return NameEntry{Name: string(rest[:i]), Port: port}, true
}

// readFull reads exactly len(b) bytes. A connection closed early is a *ProtocolError (the EPMD broke
// the reply off); other failures are returned as they are, for the caller to wrap.
func readFull(r io.Reader, op string, b []byte) error {
	n, err := io.ReadFull(r, b)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &ProtocolError{Op: op, Reason: fmt.Sprintf("connection closed with the reply incomplete (%d of %d more bytes)", n, len(b))}
	}
	return err
}
