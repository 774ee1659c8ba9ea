package faults

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
)

// Where a garbage case is thrown.
const (
	atDist      = "dist"      // the distribution port, before any handshake
	atHandshake = "handshake" // the distribution port, after a valid name message
	atLink      = "link"      // an established link, after a handshake done with package handshake
	atEPMD      = "epmd"      // our EPMD server's port
	randomBytes = 512         // size of a random payload
	garbageWait = time.Second // a garbage connection must be closed within this (setup deadline is 2 s)
	garbageLog  = 2 * time.Second
)

// garbageCase is one hostile input.
type garbageCase struct {
	name  string
	at    string
	data  []byte
	eof   bool   // shut our write side after data (a truncated message)
	want  string // substring of the logged reason
	close bool   // the node must close at once; false: the case may end on EOF
}

func randomPayload(seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, randomBytes)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// frame4 is a 4-byte length frame around body.
func frame4(body ...byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

func garbageCases() []garbageCase {
	var cs []garbageCase
	for seed := uint64(1); seed <= 8; seed++ {
		cs = append(cs,
			garbageCase{name: fmt.Sprintf("random-%d", seed), at: atDist, data: randomPayload(seed), eof: true, want: "handshake recv_name"},
			garbageCase{name: fmt.Sprintf("random-%d", seed), at: atHandshake, data: randomPayload(100 + seed), eof: true, want: "handshake recv_challenge_reply"},
			garbageCase{name: fmt.Sprintf("random-%d", seed), at: atLink, data: randomPayload(200 + seed), eof: true, want: ""},
			garbageCase{name: fmt.Sprintf("random-%d", seed), at: atEPMD, data: randomPayload(300 + seed), eof: true, want: ""},
		)
	}
	// Random bodies behind a plausible length, so the parsers behind the
	// length check get random input too.
	for seed := uint64(1); seed <= 4; seed++ {
		body := randomPayload(400 + seed)[:200]
		cs = append(cs,
			garbageCase{name: fmt.Sprintf("random-body-%d", seed), at: atDist, data: append([]byte{0, 200}, body...), eof: true, want: "handshake recv_name"},
			garbageCase{name: fmt.Sprintf("random-body-%d", seed), at: atHandshake, data: append([]byte{0, 200}, body...), eof: true, want: "handshake recv_challenge_reply"},
			garbageCase{name: fmt.Sprintf("random-body-%d", seed), at: atLink, data: frame4(append([]byte{'p', 131}, body...)...), eof: true, want: ""},
			garbageCase{name: fmt.Sprintf("random-body-%d", seed), at: atEPMD, data: append([]byte{0, 200}, body...), eof: true, want: ""},
		)
	}
	reply := append([]byte{0, 21, 'r'}, make([]byte, 20)...)
	reply[2] = 'Z'
	cs = append(cs,
		// Oversized frame lengths.
		garbageCase{name: "oversized-64KiB", at: atDist, data: []byte{0xFF, 0xFF, 'N', 0, 0}, close: true, want: "frame of 65535 bytes exceeds the 2048-byte limit"},
		garbageCase{name: "oversized-2049", at: atDist, data: []byte{0x08, 0x01, 'N'}, close: true, want: "frame of 2049 bytes exceeds the 2048-byte limit"},
		garbageCase{name: "oversized-64KiB", at: atHandshake, data: []byte{0xFF, 0xFF, 'r'}, close: true, want: "frame of 65535 bytes exceeds"},
		garbageCase{name: "oversized-4GiB", at: atLink, data: []byte{0xFF, 0xFF, 0xFF, 0xFF, 'p'}, close: true, want: "frame of 4294967295 bytes exceeds the 1048576-byte limit"},
		garbageCase{name: "oversized-limit+1", at: atLink, data: []byte{0, 0x10, 0, 1, 'p'}, close: true, want: "frame of 1048577 bytes exceeds the 1048576-byte limit"},
		garbageCase{name: "oversized-64KiB", at: atEPMD, data: []byte{0xFF, 0xFF, 122}, close: true, want: "invalid request length 65535"},
		garbageCase{name: "oversized-3058", at: atEPMD, data: []byte{0x0B, 0xF2, 122}, close: true, want: "invalid request length 3058"},
		garbageCase{name: "empty-frame", at: atDist, data: []byte{0, 0}, close: true, want: "empty frame"},
		garbageCase{name: "empty-request", at: atEPMD, data: []byte{0, 0}, close: true, want: "invalid request length 0"},
		// Unknown tags.
		garbageCase{name: "unknown-tag", at: atDist, data: []byte{0, 3, 'Z', 0, 0}, close: true, want: "expected name message 'N' or 'n', got tag 90"},
		garbageCase{name: "unknown-version", at: atDist, data: []byte{0, 7, 'n', 0, 9, 0, 0, 0, 0}, close: true, want: "unsupported handshake version 9"},
		garbageCase{name: "unknown-tag", at: atHandshake, data: reply, close: true, want: "expected challenge reply 'r' of 21 bytes"},
		garbageCase{name: "unknown-tag", at: atLink, data: frame4('Z', 1, 2), close: true, want: "unexpected frame tag 90"},
		garbageCase{name: "unknown-dist-header", at: atLink, data: frame4(131, 99, 0), close: true, want: "unknown distribution header 99"},
		garbageCase{name: "atom-cache-refs", at: atLink, data: frame4(131, 68, 5, 1, 2), close: true, want: "5 atom cache references"},
		garbageCase{name: "short-fragment-header", at: atLink, data: frame4(append([]byte{131, 70}, make([]byte, 15)...)...), close: true, want: "short fragment header"},
		garbageCase{name: "unknown-fragment-seq", at: atLink, data: frame4(131, 70, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 'x'), close: true, want: "fragment of unknown sequence 7"},
		garbageCase{name: "control-not-tuple", at: atLink, data: frame4('p', 131, 97, 5), close: true, want: "control message is not a tuple"},
		garbageCase{name: "unknown-tag", at: atEPMD, data: []byte{0, 1, 'Q'}, close: true, want: "unknown request tag 81"},
		garbageCase{name: "bad-alive2", at: atEPMD, data: []byte{0, 3, 120, 1, 2}, close: true, want: "ALIVE2_REQ too short (3 bytes)"},
		garbageCase{name: "nul-in-name", at: atEPMD, data: []byte{0, 4, 122, 'a', 0, 'b'}, close: true, want: "name contains NUL"},
		// Truncated messages.
		garbageCase{name: "truncated-length", at: atDist, data: []byte{0}, eof: true, want: "handshake recv_name: connection closed"},
		garbageCase{name: "truncated-name", at: atDist, data: nameMessage("trunc@localhost")[:12], eof: true, want: "handshake recv_name: connection closed"},
		garbageCase{name: "name-length-mismatch", at: atDist, data: func() []byte { b := nameMessage("x@localhost"); b[16]++; return b }(), close: true, want: "does not match the frame"},
		garbageCase{name: "truncated-reply", at: atHandshake, data: []byte{0, 21, 'r', 1, 2, 3}, eof: true, want: "recv_challenge_reply: connection closed"},
		garbageCase{name: "short-reply", at: atHandshake, data: []byte{0, 5, 'r', 1, 2, 3, 4}, close: true, want: "expected challenge reply 'r' of 21 bytes"},
		garbageCase{name: "truncated-frame", at: atLink, data: []byte{0, 0, 0, 100, 'p', 131, 104}, eof: true, want: "connection closed by peer: unexpected EOF"},
		garbageCase{name: "truncated-term", at: atLink, data: frame4('p', 131, 104, 3, 97, 1), close: true, want: "control message:"},
		garbageCase{name: "truncated-send", at: atLink, data: frame4('p', 131, 104, 3, 97, 2, 119, 0, 97, 1), close: true, want: "SEND message: missing message term"},
		garbageCase{name: "truncated-length", at: atEPMD, data: []byte{0}, eof: true, want: "reading request length"},
		garbageCase{name: "truncated-request", at: atEPMD, data: []byte{0, 10, 122, 'a'}, eof: true, want: "reading 10-byte request: unexpected EOF"},
	)
	return cs
}

// readFrame2 reads one handshake frame (2-byte length).
func readFrame2(conn net.Conn) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(conn, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	_, err := io.ReadFull(conn, b)
	return b, err
}

// TestGarbage throws random bytes, oversized frame lengths, unknown tags and
// truncated messages at every listening socket: the distribution port before
// and during a handshake, an established link, and our EPMD server. Each such
// connection is closed with a logged reason, and the node keeps serving: a
// link that was up before stays up, and a real erl pings pong afterwards.
func TestGarbage(t *testing.T) {
	erltest.RequireErl(t)
	cookie := newCookie("garbage")
	logs := &logBuf{}
	log := debugLogger(logs)
	_, epmdPort := startEPMDServer(t, 2*time.Second, log)
	var ev events
	n := startNode(t, shortName("garbage"), cookie, node.Options{
		EPMD: node.EPMDExternal, EPMDPort: epmdPort, SetupTimeout: 2 * time.Second,
		MaxMessageSize: 1 << 20, Logger: log, OnEvent: ev.add,
	})
	bystander := startNode(t, shortName("bystander"), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: epmdPort})
	require.NoError(t, bystander.Connect(ctxFor(t, 5*time.Second), n.Self()))
	erl := startErl(t, nil, "erl_garbage", cookie, epmdPort, 0)
	cases := garbageCases()
	rw := report.add(t, "garbage: random bytes, oversized lengths, unknown tags, truncated messages on dist port, mid-handshake, link, EPMD",
		len(cases), "")

	distAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port()))
	epmdAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(epmdPort))
	var closedOK atomic.Int64
	t.Run("barrage", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.at+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				addr := distAddr
				if c.at == atEPMD {
					addr = epmdAddr
				}
				conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
				require.NoError(t, err)
				defer conn.Close()
				local := conn.LocalAddr().String()
				peer := shortName("raw")
				switch c.at {
				case atHandshake:
					_, err := conn.Write(nameMessage(peer))
					require.NoError(t, err)
					_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
					st, err := readFrame2(conn)
					require.NoError(t, err)
					require.Equal(t, "sok", string(st))
					ch, err := readFrame2(conn)
					require.NoError(t, err)
					require.Equal(t, byte('N'), ch[0], "the challenge")
				case atLink:
					cfg := handshake.Config{Name: peer, Cookie: cookie, Creation: 1234}
					_, err := handshake.Initiate(ctxFor(t, 5*time.Second), conn, &cfg, n.Self())
					require.NoError(t, err)
					_, ok := waitFor(2*time.Second, func() bool { return slices.Contains(n.Nodes(), peer) })
					require.True(t, ok, "the raw peer's link is up")
				}
				_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
				_, err = conn.Write(c.data)
				if err != nil {
					// The node may close while we are still writing.
					require.True(t, isClosed(err), "write: %v", err)
				}
				if c.eof {
					halfClose(conn)
				}
				after, closed, err := readUntilClosed(conn, 3*time.Second)
				require.True(t, closed, "the node closed the connection (read ended with %v after %v)", err, after)
				assert.Less(t, after, garbageWait, "closed because of the garbage, not a deadline")
				closedOK.Add(1)

				// A log line says why.
				var match func() []string
				switch c.at {
				case atDist, atHandshake:
					match = func() []string { return byRemote(logs, `msg="inbound handshake failed"`)[local] }
				case atEPMD:
					match = func() []string { return byRemote(logs, `msg="epmd: closing connection without reply"`)[local] }
				case atLink:
					match = func() []string { return logs.Lines(`msg="link down"`, "peer="+peer) }
				}
				var lines []string
				_, ok := waitFor(garbageLog, func() bool { lines = match(); return len(lines) > 0 })
				if assert.True(t, ok, "a log line for the closed %s connection %s (%s)", c.at, local, peer) {
					assert.Len(t, lines, 1)
					assert.Contains(t, lines[0], c.want, "the logged reason")
					t.Logf("%s", lines[0])
				}
			})
		}
	})

	// The node kept serving everyone else.
	assert.Contains(t, n.Nodes(), bystander.Self(), "the link that was up before the barrage is still up")
	assert.Zero(t, ev.count(node.EventLinkDown, bystander.Self(), nil), "the bystander link never went down")
	assert.True(t, bystander.Ping(ctxFor(t, 5*time.Second), n.Self()), "the bystander still pings pong")
	assert.Equal(t, "pong", erlPing(t, erl, n.Self()), "a real erl pings our node pong after the barrage")
	assert.True(t, n.Ping(ctxFor(t, 5*time.Second), erl.Node()), "our node pings erl pong after the barrage")
	assert.True(t, n.EPMDRegistered(), "still registered with the EPMD server")
	assert.ElementsMatch(t, []string{bystander.Self(), erl.Node()}, n.Nodes(), "no raw peer lingers")
	assert.Zero(t, ev.count(node.EventHandshakeOK, "", func(e node.Event) bool {
		return !strings.HasPrefix(e.Peer, "raw_") &&
			e.Peer != bystander.Self() && e.Peer != erl.Node()
	}), "no unexpected link")
	report.set(rw, int(closedOK.Load()), fmt.Sprintf("each connection closed (<%v) with a logged reason; bystander link kept; erl<->go pong after", garbageWait))
}
