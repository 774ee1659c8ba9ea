package epmd

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Bytes seen on the wire between OTP 25.2.3 (erl, epmd) and each other, captured with `epmd -d -d`.
var (
	realAlive2Req   = []byte{0, 0x13, 120, 0xae, 0xfb, 77, 0, 0, 6, 0, 5, 0, 6, 'p', 'r', 'o', 'b', 'e', '1', 0, 0}
	realPort2Req    = []byte{0, 7, 122, 'p', 'r', 'o', 'b', 'e', '1'}
	realNamesReq    = []byte{0, 1, 110}
	realAlive2XOK   = []byte{118, 0, 107, 5, 221, 206}
	realAlive2XDup  = []byte{118, 1, 0, 0, 0, 99}
	realAlive2OK    = []byte{121, 0, 0, 1}
	realAlive2Dup   = []byte{121, 1, 0, 99}
	realPort2OK     = []byte{119, 0, 0xae, 0xfb, 77, 0, 0, 6, 0, 5, 0, 6, 'p', 'r', 'o', 'b', 'e', '1', 0, 0}
	realPort2Extra  = []byte{119, 0, 21, 181, 77, 0, 0, 5, 0, 5, 0, 3, 'b', 'a', 'r', 0, 2, 'x', 'y'}
	realPort2NotReg = []byte{119, 1}
	realNamesReply  = []byte("\x00\x008!name bar at port 5557\nname foo at port 5555\n")
)

func TestEPMDRealReplyBytes(t *testing.T) {
	res, cr, err := readAlive2Reply(bytes.NewReader(realAlive2XOK))
	require.NoError(t, err)
	assert.Equal(t, byte(0), res)
	assert.Equal(t, uint32(0x6b05ddce), cr)
	res, cr, err = readAlive2Reply(bytes.NewReader(realAlive2Dup))
	require.NoError(t, err)
	assert.Equal(t, byte(1), res)
	assert.Equal(t, uint32(99), cr)

	info, err := readPort2Reply(bytes.NewReader(realPort2Extra))
	require.NoError(t, err)
	assert.Equal(t, NodeInfo{Name: "bar", Port: 5557, Type: 77, HighestVersion: 5, LowestVersion: 5, Extra: []byte("xy")}, info)
	_, err = readPort2Reply(bytes.NewReader(realPort2NotReg))
	assert.ErrorIs(t, err, ErrNotRegistered)

	port, list, err := readNamesReply(bytes.NewReader(realNamesReply))
	require.NoError(t, err)
	assert.Equal(t, uint32(14369), port)
	assert.Equal(t, []NameEntry{{"bar", 5557}, {"foo", 5555}}, list)

	// Our encoders produce what OTP produces.
	body, err := readRequest(bytes.NewReader(realAlive2Req))
	require.NoError(t, err)
	req, err := parseAlive2Body(body)
	require.NoError(t, err)
	assert.Equal(t, realAlive2Req, appendRequest(nil, alive2Body(req)))
	assert.Equal(t, realPort2Req, appendRequest(nil, port2Body("probe1")))
	assert.Equal(t, realPort2OK, port2Reply(NodeInfo{Name: "probe1", Port: 0xaefb, Type: 77, HighestVersion: 6, LowestVersion: 5}))
	assert.Equal(t, realAlive2XDup, alive2Reply(6, 1, refusedCreation))
	assert.Equal(t, realAlive2Dup, alive2Reply(5, 1, refusedCreation))
}

// FuzzServerRequest feeds a raw request (length prefix included) to the server's framing and request
// handling, from a local and a non-local peer.
func FuzzServerRequest(f *testing.F) {
	for _, seed := range [][]byte{realAlive2Req, realPort2Req, realNamesReq, {0, 1, 100}, {0, 1, 107},
		{0, 4, 115, 'f', 'o', 'o'}, {0, 0}, {0xff, 0xff}, {0, 5, 122, 'a', 0, 'b', 0}} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &Server{}
		body, err := readRequest(bytes.NewReader(data))
		if err != nil {
			return
		}
		require.LessOrEqual(t, len(body), maxRequestLen)
		for _, local := range []bool{true, false} {
			c := &serverConn{id: 1}
			reply, keep, err := s.handle(c, body, local, DefaultPort)
			if err != nil {
				require.Nil(t, reply)
				require.False(t, keep)
				continue
			}
			switch body[0] {
			case tagAlive2Req:
				require.True(t, local, "ALIVE2 only from local peers")
				require.NotEmpty(t, reply)
				require.Contains(t, []byte{tagAlive2XRes, tagAlive2Res}, reply[0])
				require.Equal(t, keep, reply[1] == 0)
				if keep {
					reg := s.Registered()
					require.Len(t, reg, 1)
					_, cr, err := readAlive2Reply(bytes.NewReader(reply))
					require.NoError(t, err)
					require.NotZero(t, cr)
					// The registered node is found again by name.
					pr, _, err := s.handle(&serverConn{id: 2}, port2Body(reg[0].Name), false, DefaultPort)
					require.NoError(t, err)
					got, err := readPort2Reply(bytes.NewReader(pr))
					require.NoError(t, err)
					require.Equal(t, reg[0].Name, got.Name)
					s.mu.Lock()
					s.unregisterLocked(c)
					s.mu.Unlock()
				}
			case tagPort2Req:
				require.False(t, keep)
				require.Equal(t, []byte{tagPort2Res, 1}, reply, "nothing is registered")
			case tagNamesReq, tagDumpReq:
				require.Equal(t, binary.BigEndian.AppendUint32(nil, DefaultPort), reply)
			case tagKillReq:
				require.Equal(t, []byte("NO"), reply)
			default:
				t.Fatalf("tag %d answered with %q", body[0], reply)
			}
			require.Empty(t, s.Registered())
		}
	})
}

// FuzzClientReply feeds arbitrary reply bytes to the client's reply parsers; whatever they accept must
// re-encode to the bytes they consumed.
func FuzzClientReply(f *testing.F) {
	for _, seed := range [][]byte{realAlive2XOK, realAlive2XDup, realAlive2OK, realAlive2Dup, realPort2OK,
		realPort2Extra, realPort2NotReg, realNamesReply, append(bytes.Clone(realAlive2XOK), "junk"...)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if res, cr, err := readAlive2Reply(bytes.NewReader(data)); err == nil {
			high := uint16(6)
			if data[0] == tagAlive2Res {
				high = 5
			}
			enc := alive2Reply(high, res, cr)
			require.Equal(t, data[:len(enc)], enc)
		}
		if info, err := readPort2Reply(bytes.NewReader(data)); err == nil {
			enc := port2Reply(info)
			require.Equal(t, data[:len(enc)], enc)
		}
		if _, list, err := readNamesReply(bytes.NewReader(data)); err == nil {
			for _, e := range list {
				require.NotEmpty(t, e.Name)
				require.LessOrEqual(t, e.Port, 65535)
				require.Contains(t, string(data), "name "+e.Name+" at port ")
			}
		}
	})
}
