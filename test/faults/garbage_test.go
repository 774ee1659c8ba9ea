package faults

import (
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
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
	// garbageDeadline is the node's SetupTimeout and the EPMD server's RequestTimeout here.
	// garbageWait bounds how long after the garbage a connection may take to be closed: half the
	// deadline, so a close within it was caused by the garbage, not by a deadline, and long
	// enough for a machine with a load of 10 on 2 cores (a 1 s bound was once missed by 140 ms
	// there; the logged reason, checked too, tells garbage from deadline in any case).
	garbageDeadline = 10 * time.Second
	garbageWait     = garbageDeadline / 2
	garbageLog      = 5 * time.Second
	limitLink       = 1 << 20 // MaxMessageSize of the nodes the link cases talk to
)

// garbageCase is one hostile input.
type garbageCase struct {
	name  string
	at    string
	data  []byte
	eof   bool   // shut our write side after data (a truncated message)
	want  string // substring of the logged reason
	close bool   // the node must close at once; false: the case may end on EOF
	// Link cases only. stays: the frame is skipped, the link stays and answers a ping on the
	// same connection afterwards ("one bad message never costs the link"); otherwise the
	// connection ends (cut off by our EOF). stats: the node's Stats afterwards. noPing: the
	// node is still reading through the (unsent) body of an oversized frame, so nothing sent
	// after it can be answered.
	stays  bool
	stats  node.Stats
	noPing bool
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
			// The first 4 bytes of these seeds are lengths over 1 MiB: counted as too large,
			// then the body is cut off by our EOF, which ends the link.
			garbageCase{name: fmt.Sprintf("random-%d", seed), at: atLink, data: randomPayload(200 + seed), eof: true,
				want: "connection closed by peer", stats: node.Stats{TooLarge: 1}},
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
			garbageCase{name: fmt.Sprintf("random-body-%d", seed), at: atLink, data: frame4(append([]byte{'p', 131}, body...)...),
				stays: true, stats: node.Stats{Malformed: 1}, want: "malformed distribution frame"},
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
		garbageCase{name: "oversized-4GiB", at: atLink, data: []byte{0xFF, 0xFF, 0xFF, 0xFF, 'p'},
			stays: true, noPing: true, stats: node.Stats{TooLarge: 1}, want: "frame of 4294967295 bytes exceeds the 1048576-byte limit"},
		// The whole oversized frame is sent: the node reads it through and answers the ping after it.
		garbageCase{name: "oversized-limit+1", at: atLink, data: append([]byte{0, 0x10, 0, 1, 'p'}, make([]byte, limitLink)...),
			stays: true, stats: node.Stats{TooLarge: 1}, want: "frame of 1048577 bytes exceeds the 1048576-byte limit"},
		garbageCase{name: "oversized-64KiB", at: atEPMD, data: []byte{0xFF, 0xFF, 122}, close: true, want: "invalid request length 65535"},
		garbageCase{name: "oversized-3058", at: atEPMD, data: []byte{0x0B, 0xF2, 122}, close: true, want: "invalid request length 3058"},
		garbageCase{name: "empty-frame", at: atDist, data: []byte{0, 0}, close: true, want: "empty frame"},
		garbageCase{name: "empty-request", at: atEPMD, data: []byte{0, 0}, close: true, want: "invalid request length 0"},
		// Unknown tags.
		garbageCase{name: "unknown-tag", at: atDist, data: []byte{0, 3, 'Z', 0, 0}, close: true, want: "expected name message 'N' or 'n', got tag 90"},
		garbageCase{name: "unknown-version", at: atDist, data: []byte{0, 7, 'n', 0, 9, 0, 0, 0, 0}, close: true, want: "unsupported handshake version 9"},
		garbageCase{name: "unknown-tag", at: atHandshake, data: reply, close: true, want: "expected challenge reply 'r' of 21 bytes"},
		garbageCase{name: "unknown-tag", at: atLink, data: frame4('Z', 1, 2), stays: true, stats: node.Stats{Malformed: 1}, want: "unexpected frame tag 90"},
		garbageCase{name: "unknown-dist-header", at: atLink, data: frame4(131, 99, 0), stays: true, stats: node.Stats{Malformed: 1}, want: "unknown distribution header 99"},
		garbageCase{name: "atom-cache-refs", at: atLink, data: frame4(131, 68, 5, 1, 2), stays: true, stats: node.Stats{Malformed: 1}, want: "5 atom cache references"},
		garbageCase{name: "short-fragment-header", at: atLink, data: frame4(append([]byte{131, 70}, make([]byte, 15)...)...), stays: true, stats: node.Stats{Malformed: 1}, want: "short fragment header"},
		garbageCase{name: "unknown-fragment-seq", at: atLink, data: frame4(131, 70, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 'x'), stays: true, stats: node.Stats{Malformed: 1}, want: "fragment of unknown sequence 7"},
		garbageCase{name: "control-not-tuple", at: atLink, data: frame4('p', 131, 97, 5), stays: true, stats: node.Stats{Malformed: 1}, want: "control message is not a non-empty tuple"},
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
		garbageCase{name: "truncated-term", at: atLink, data: frame4('p', 131, 104, 3, 97, 1), stays: true, stats: node.Stats{Malformed: 1}, want: "control message:"},
		garbageCase{name: "send-to-integer", at: atLink, data: frame4('p', 131, 104, 3, 97, 2, 119, 0, 97, 1), stays: true, stats: node.Stats{Malformed: 1}, want: "SEND: element 3 is not a pid"},
		garbageCase{name: "reg-send-without-message", at: atLink, data: regSendWithoutMessage(), stays: true, stats: node.Stats{Malformed: 1}, want: "missing message term"},
		garbageCase{name: "truncated-length", at: atEPMD, data: []byte{0}, eof: true, want: "reading request length"},
		garbageCase{name: "truncated-request", at: atEPMD, data: []byte{0, 10, 122, 'a'}, eof: true, want: "reading 10-byte request: unexpected EOF"},
	)
	return cs
}

// regSendWithoutMessage is a 'p' frame with a REG_SEND to net_kernel (a process that exists)
// and no message term after it.
func regSendWithoutMessage() []byte {
	from := etf.Pid{Node: "raw@localhost", ID: 1, Creation: 1234}
	b, err := etf.Append([]byte{'p'}, control.RegSend{From: from, To: "net_kernel"}.Tuple())
	if err != nil {
		panic(err)
	}
	return frame4(b...)
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
// and during a handshake, an established link, and our EPMD server. Before and
// during a handshake, and at the EPMD server, each such connection is closed
// with a logged reason. On an established link a whole malformed or oversized
// frame is skipped, counted (Stats) and logged, and the link stays and answers
// a ping on the same connection; a frame cut off by the peer's EOF ends the
// link. The node keeps serving: a link that was up before stays up, and a real
// erl pings pong afterwards.
func TestGarbage(t *testing.T) {
	erltest.RequireErl(t)
	cookie := newCookie("garbage")
	logs := &logBuf{}
	log := debugLogger(logs)
	_, epmdPort := startEPMDServer(t, garbageDeadline, log)
	var ev events
	n := startNode(t, shortName("garbage"), cookie, node.Options{
		EPMD: node.EPMDExternal, EPMDPort: epmdPort, SetupTimeout: garbageDeadline,
		MaxMessageSize: limitLink, Logger: log, OnEvent: ev.add,
	})
	bystander := startNode(t, shortName("bystander"), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: epmdPort})
	require.NoError(t, bystander.Connect(ctxFor(t, 5*time.Second), n.Self()))
	erl := startErl(t, nil, "erl_garbage", cookie, epmdPort, 0)
	cases := garbageCases()
	rw := report.add(t, "garbage: random bytes, oversized lengths, unknown tags, truncated messages on dist port, mid-handshake, link, EPMD",
		len(cases), "")

	distAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port()))
	epmdAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(epmdPort))
	var closedOK, keptOK atomic.Int64
	t.Run("barrage", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.at+"/"+c.name, func(t *testing.T) {
				t.Parallel()
				if c.at == atLink {
					garbageOnLink(t, c, cookie, epmdPort)
					if !t.Failed() {
						if c.stays {
							keptOK.Add(1)
						} else {
							closedOK.Add(1)
						}
					}
					return
				}
				addr := distAddr
				if c.at == atEPMD {
					addr = epmdAddr
				}
				conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
				require.NoError(t, err)
				defer conn.Close()
				local := conn.LocalAddr().String()
				if c.at == atHandshake {
					_, err := conn.Write(nameMessage(shortName("raw")))
					require.NoError(t, err)
					_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
					st, err := readFrame2(conn)
					require.NoError(t, err)
					require.Equal(t, "sok", string(st))
					ch, err := readFrame2(conn)
					require.NoError(t, err)
					require.Equal(t, byte('N'), ch[0], "the challenge")
				}
				writeGarbage(t, conn, c)
				after, closed, err := readUntilClosed(conn, garbageWait+3*time.Second)
				require.True(t, closed, "the node closed the connection (read ended with %v after %v)", err, after)
				assert.Less(t, after, garbageWait, "closed because of the garbage, not a deadline")

				// A log line says why.
				msg := `msg="inbound handshake failed"`
				if c.at == atEPMD {
					msg = `msg="epmd: closing connection without reply"`
				}
				var lines []string
				_, ok := waitFor(garbageLog, func() bool { lines = byRemote(logs, msg)[local]; return len(lines) > 0 })
				if assert.True(t, ok, "a log line for the closed %s connection %s", c.at, local) {
					assert.Len(t, lines, 1)
					assert.Contains(t, lines[0], c.want, "the logged reason")
					t.Logf("%s", lines[0])
				}
				if !t.Failed() {
					closedOK.Add(1)
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
		return e.Peer != bystander.Self() && e.Peer != erl.Node()
	}), "no unexpected link")
	assert.Equal(t, node.Stats{}, n.Stats(), "nothing reached a link of this node")
	report.set(rw, int(closedOK.Load()+keptOK.Load()), fmt.Sprintf(
		"%d connections closed (<%v) with a logged reason; %d bad frames on a link skipped, counted, logged, link kept and pinged after; bystander link kept; erl<->go pong after",
		closedOK.Load(), garbageWait, keptOK.Load()))
}

// writeGarbage writes c's bytes to conn (and shuts our write side for an eof case).
func writeGarbage(t *testing.T, conn net.Conn, c garbageCase) {
	t.Helper()
	_ = conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := conn.Write(c.data)
	if err != nil {
		// The node may close while we are still writing.
		require.True(t, isClosed(err), "write: %v", err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	if c.eof {
		halfClose(conn)
	}
}

// garbageOnLink runs a link case against a node of its own (each node logs one skipped message a
// second, and its Stats must count this case alone): a raw peer does the handshake with package
// handshake, then writes the garbage.
func garbageOnLink(t *testing.T, c garbageCase, cookie string, epmdPort int) {
	logs := &logBuf{}
	var ev events
	n := startNode(t, shortName("garbage_link"), cookie, node.Options{
		EPMD: node.EPMDExternal, EPMDPort: epmdPort, MaxMessageSize: limitLink, Logger: debugLogger(logs), OnEvent: ev.add,
	})
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Port())), 5*time.Second)
	require.NoError(t, err)
	defer conn.Close()
	peer := shortName("raw")
	cfg := handshake.Config{Name: peer, Cookie: cookie, Creation: 1234}
	res, err := handshake.Initiate(ctxFor(t, 5*time.Second), conn, &cfg, n.Self())
	require.NoError(t, err)
	ev.Wait(t, node.EventHandshakeOK, peer, 5*time.Second)
	rp := &rawLinkPeer{conn: conn, name: peer, headers: res.Flags&handshake.FlagFragments != 0}
	if !c.noPing {
		rp.ping(t, 1) // the link answers before the garbage, so the ping after it means something
	}

	writeGarbage(t, conn, c)
	downs := func() []string { return logs.Lines(`msg="link down"`, "peer="+peer) }
	if !c.stays {
		after, closed, err := readUntilClosed(conn, garbageWait+3*time.Second)
		require.True(t, closed, "the node closed the connection (read ended with %v after %v)", err, after)
		assert.Less(t, after, garbageWait, "closed because of our EOF, not a deadline")
		var lines []string
		_, ok := waitFor(garbageLog, func() bool { lines = downs(); return len(lines) > 0 })
		if assert.True(t, ok, "a link down log line for %s", peer) {
			assert.Len(t, lines, 1)
			assert.Contains(t, lines[0], c.want, "the logged reason")
			t.Logf("%s", lines[0])
		}
		assert.Equal(t, c.stats, n.Stats())
		return
	}

	if c.noPing {
		// The node now reads through 4 GiB that never come; it counted the frame as soon as it
		// read the length.
		_, ok := waitFor(garbageLog, func() bool { return n.Stats() == c.stats })
		assert.True(t, ok, "counted: %+v", n.Stats())
	} else {
		rp.ping(t, 2)
		assert.Equal(t, c.stats, n.Stats(), "skipped and counted")
	}
	lines := logs.Lines(`msg="skipped a message from a peer"`, "peer="+peer)
	if assert.Len(t, lines, 1, "one log line about the skipped frame") {
		assert.Contains(t, lines[0], c.want, "the logged reason")
		t.Logf("%s", lines[0])
	}
	assert.Equal(t, []string{peer}, n.Nodes(), "the link is still up")
	assert.Empty(t, downs(), "no link down")
	assert.Zero(t, ev.count(node.EventLinkDown, peer, nil), "no link down event")
}

// rawLinkPeer is the raw side of an established link.
type rawLinkPeer struct {
	conn    net.Conn
	name    string
	headers bool // FRAGMENTS was negotiated: we send header frames
	fr      control.Reader
}

// ping does what net_adm:ping does on an established link: a net_kernel $gen_call
// {is_auth, Node}; the node must answer {Ref, yes} to our pid within 5 s.
func (p *rawLinkPeer) ping(t *testing.T, id uint32) {
	t.Helper()
	pid := etf.Pid{Node: etf.Atom(p.name), ID: 1, Creation: 1234}
	ref := etf.Ref{Node: etf.Atom(p.name), Creation: 1234, Len: 3, ID: [5]uint32{id, 7, 7}}
	f, err := control.AppendFrame(nil, p.headers, control.RegSend{From: pid, To: "net_kernel"},
		etf.Tuple{etf.Atom("$gen_call"), etf.Tuple{pid, ref}, etf.Tuple{etf.Atom("is_auth"), etf.Atom(p.name)}})
	require.NoError(t, err)
	_ = p.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = p.conn.Write(f)
	require.NoError(t, err, "ping %d: write", id)
	_ = p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer p.conn.SetReadDeadline(time.Time{})
	var hdr [4]byte
	for {
		_, err := io.ReadFull(p.conn, hdr[:])
		require.NoError(t, err, "ping %d: waiting for the answer", id)
		body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if len(body) == 0 {
			continue // tick
		}
		_, err = io.ReadFull(p.conn, body)
		require.NoError(t, err, "ping %d: reading a frame", id)
		m, pl, done, err := p.fr.Read(body)
		require.NoError(t, err, "ping %d: a frame from the node", id)
		var to etf.Pid
		switch m := m.(type) {
		case control.Send:
			to = m.To
		case control.SendSender:
			to = m.To
		}
		if done && to == pid {
			msg, err := pl.Decode()
			require.NoError(t, err)
			require.Equal(t, etf.Tuple{ref, etf.Atom("yes")}, msg, "ping %d: the answer", id)
			return
		}
	}
}
