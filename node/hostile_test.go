package node

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
)

// hostileNode starts a node and returns it with a raw peer connected to it.
func hostileNode(t *testing.T, opts Options) (*Node, *rawPeer) {
	t.Helper()
	if opts.EPMDPort == 0 {
		opts.EPMDPort = freePort(t)
	}
	n := startNode(t, shortName("n"), testCookie, opts)
	p := dialRaw(t, n, shortName("raw"))
	waitCount(t, n, 1, 2*time.Second)
	require.Equal(t, []string{p.name}, n.Nodes())
	return n, p
}

// assertStillServes checks that n still accepts and answers other peers.
func assertStillServes(t *testing.T, n *Node) {
	t.Helper()
	other := startNode(t, shortName("other"), testCookie, Options{EPMDPort: n.EPMDPort()})
	assert.True(t, ping(other, testCtx(t, 5*time.Second), n.Self()), "the node still serves others")
}

// TestHostileOversizedFrame: a frame over the size limit is read through without being held,
// counted and logged; the link stays and answers the next frame.
func TestHostileOversizedFrame(t *testing.T) {
	t.Parallel()
	t.Run("one byte over a set limit", func(t *testing.T) {
		t.Parallel()
		logger, logs := debugLogger(t)
		n, p := hostileNode(t, Options{MaxMessageSize: 1024, Logger: logger})
		body := make([]byte, 1025)
		body[0] = 'p'
		p.frame(body)
		assertUnlinkAck(t, p)
		assert.Equal(t, Stats{TooLarge: 1}, n.Stats())
		assert.Equal(t, []string{p.name}, n.Nodes())
		assert.Contains(t, logs.String(), "skipped a message")
	})
	t.Run("4 GiB frame, default limit", func(t *testing.T) {
		t.Parallel()
		var ev events
		n, p := hostileNode(t, Options{OnEvent: ev.add})
		var hdr [5]byte
		binary.BigEndian.PutUint32(hdr[:], 0xFFFFFFFF)
		hdr[4] = 'p'
		p.writeRaw(hdr[:])
		p.writeRaw(make([]byte, 64<<10))
		// Counted as soon as its length is read; the node reads on (the
		// frame never ends here) and keeps the link.
		require.Eventually(t, func() bool { return n.Stats().TooLarge == 1 }, 2*time.Second, 5*time.Millisecond)
		assert.Equal(t, []string{p.name}, n.Nodes())
		assert.Zero(t, ev.count(EventLinkDown))
		assertStillServes(t, n)
	})
}

// TestHostileCutLengthPrefix: a connection that ends inside a frame's length prefix ends the
// link (EOF): there is no frame to skip.
func TestHostileCutLengthPrefix(t *testing.T) {
	t.Parallel()
	var ev events
	n, p := hostileNode(t, Options{OnEvent: ev.add})
	p.writeRaw([]byte{0, 0})
	require.NoError(t, p.conn.(*net.TCPConn).CloseWrite())
	p.expectClosed(2 * time.Second)
	waitCount(t, n, 0, 2*time.Second)
	require.Eventually(t, func() bool { return ev.count(EventLinkDown) == 1 }, 2*time.Second, 5*time.Millisecond)
	var down Event
	for _, e := range ev.list() {
		if e.Kind == EventLinkDown {
			down = e
		}
	}
	assert.ErrorIs(t, down.Err, io.ErrUnexpectedEOF)
	assert.Equal(t, Stats{}, n.Stats())
	assertStillServes(t, n)
}

func TestHostileAtLimitFrameAccepted(t *testing.T) {
	t.Parallel()
	n, p := hostileNode(t, Options{MaxMessageSize: 1024})
	// A SEND to a pid we do not have, padded with a binary to exactly 1024
	// bytes: within the limit, dropped unread, the link stays.
	b := []byte{0, 0, 0, 0, 'p'}
	b, err := etf.Append(b, etf.Tuple{int64(control.OpSend), atomEmpty, etf.Pid{Node: etf.Atom(n.Self()), ID: 999, Creation: n.Creation()}})
	require.NoError(t, err)
	pad := 1024 - (len(b) - 4) - 1 - 5 // 131, 109, Len:32
	b, err = etf.Append(b, make([]byte, pad))
	require.NoError(t, err)
	require.Equal(t, 1024, len(b)-4)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	p.writeRaw(b)
	assertUnlinkAck(t, p)
	assert.Equal(t, []string{p.name}, n.Nodes())
}

// TestHostileGarbageFrames: a malformed frame on an established link is skipped, counted and
// logged; the link stays and answers the next frame in order.
func TestHostileGarbageFrames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		what  string
		frame []byte
	}{
		{"p then garbage", []byte{'p', 0xde, 0xad, 0xbe, 0xef}},
		{"p alone", []byte{'p'}},
		{"control not a tuple", append([]byte{'p'}, 131, 119, 2, 'h', 'i')},
		{"empty tuple", append([]byte{'p'}, 131, 104, 0)},
		{"op not an integer", append([]byte{'p'}, 131, 104, 1, 119, 1, 'x')},
		{"unknown frame tag", []byte{'x', 1, 2, 3}},
		{"atom cache header without negotiation", []byte{131, 68, 0}},
		{"SEND without message", append([]byte{'p'}, 131, 104, 3, 97, 2, 119, 0, 119, 1, 'x')},
		{"short LINK", append([]byte{'p'}, 131, 104, 2, 97, 1, 119, 0)},
	} {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			logger, logs := debugLogger(t)
			var ev events
			n, p := hostileNode(t, Options{Logger: logger, OnEvent: ev.add})
			p.frame(tc.frame)
			assertUnlinkAck(t, p)
			assert.Equal(t, Stats{Malformed: 1}, n.Stats())
			assert.Equal(t, []string{p.name}, n.Nodes())
			assert.Zero(t, ev.count(EventLinkDown))
			assert.Contains(t, logs.String(), "skipped a message")
		})
	}
}

// assertUnlinkAck sends UNLINK_ID and expects its ack as the very next
// frame: the link is up and answers in order.
func assertUnlinkAck(t *testing.T, p *rawPeer) {
	t.Helper()
	to := etf.Pid{Node: "n@x", ID: 5, Creation: 1}
	p.send(etf.Tuple{int64(control.OpUnlinkID), int64(424242), p.pid, to}, nil)
	ctrl, msg := p.recv(2 * time.Second)
	assert.Equal(t, etf.Tuple{int64(control.OpUnlinkIDAck), int64(424242), to, p.pid}, ctrl)
	assert.Nil(t, msg)
}

func TestHostileUnknownControlIgnored(t *testing.T) {
	t.Parallel()
	n, p := hostileNode(t, Options{})
	p.send(etf.Tuple{int64(99), etf.Atom("whatever")}, nil)
	p.send(etf.Tuple{int64(1000), p.pid, p.pid, p.pid, p.pid}, etf.Atom("payload"))
	// Messages to a registered name or a pid we do not have are dropped.
	p.send(etf.Tuple{int64(control.OpRegSend), p.pid, atomEmpty, etf.Atom("rex")}, etf.Tuple{p.pid, etf.Atom("features_request")})
	p.send(etf.Tuple{int64(control.OpSend), atomEmpty, etf.Pid{Node: etf.Atom(n.Self()), ID: 9}}, etf.Atom("hello"))
	// Signals for processes we do not have need no answer.
	p.send(etf.Tuple{int64(control.OpDemonitorP), p.pid, etf.Atom("net_kernel"), etf.Ref{Node: etf.Atom(n.Self()), Creation: n.Creation(), Len: 3, ID: [5]uint32{1, 2, 3}}}, nil)
	p.send(etf.Tuple{int64(control.OpExit), p.pid, etf.Pid{Node: etf.Atom(n.Self()), ID: 9}, etf.Atom("normal")}, nil)
	assertUnlinkAck(t, p)
	assert.Equal(t, []string{p.name}, n.Nodes())
}

func TestHostileMonitorLinkUnlink(t *testing.T) {
	t.Parallel()
	n, p := hostileNode(t, Options{})
	target := etf.Pid{Node: etf.Atom(n.Self()), ID: 12345, Serial: 0, Creation: n.Creation()}
	ref := etf.Ref{Node: etf.Atom(p.name), Creation: 0x1234, Len: 3, ID: [5]uint32{1, 2, 3}}

	// MONITOR_P of a pid we do not have: MONITOR_P_EXIT noproc at once.
	p.send(etf.Tuple{int64(control.OpMonitorP), p.pid, target, ref}, nil)
	ctrl, msg := p.recv(2 * time.Second)
	assert.Equal(t, etf.Tuple{int64(control.OpMonitorPExit), target, p.pid, ref, etf.Atom("noproc")}, ctrl)
	assert.Nil(t, msg)

	// A monitor by name of an unknown registered process: noproc too.
	p.send(etf.Tuple{int64(control.OpMonitorP), p.pid, etf.Atom("no_such_name"), ref}, nil)
	ctrl, _ = p.recv(2 * time.Second)
	assert.Equal(t, etf.Tuple{int64(control.OpMonitorPExit), etf.Atom("no_such_name"), p.pid, ref, etf.Atom("noproc")}, ctrl)

	// A monitor of net_kernel (BEAM's ping does that) stays silent: the
	// next frame is the UNLINK_ID ack, not a MONITOR_P_EXIT.
	p.send(etf.Tuple{int64(control.OpMonitorP), p.pid, etf.Atom("net_kernel"), ref}, nil)
	assertUnlinkAck(t, p)

	// LINK: EXIT noproc.
	p.send(etf.Tuple{int64(control.OpLink), p.pid, target}, nil)
	ctrl, _ = p.recv(2 * time.Second)
	assert.Equal(t, etf.Tuple{int64(control.OpExit), target, p.pid, etf.Atom("noproc")}, ctrl)

	// UNLINK_ID {35,Id,From,To} -> UNLINK_ID_ACK {36,Id,To,From}.
	p.send(etf.Tuple{int64(control.OpUnlinkID), int64(7), p.pid, target}, nil)
	ctrl, _ = p.recv(2 * time.Second)
	assert.Equal(t, etf.Tuple{int64(control.OpUnlinkIDAck), int64(7), target, p.pid}, ctrl)

	assert.Equal(t, []string{p.name}, n.Nodes())
}

func TestHostileIsAuthCall(t *testing.T) {
	t.Parallel()
	n, p := hostileNode(t, Options{})
	ref := etf.Ref{Node: etf.Atom(p.name), Creation: 0x1234, Len: 3, ID: [5]uint32{9, 8, 7}}
	caller := etf.Pid{Node: etf.Atom(p.name), ID: 300, Serial: 2, Creation: 0x1234}
	for _, tag := range []etf.Term{
		ref,
		etf.ImproperList{Elems: []etf.Term{etf.Atom("alias")}, Tail: ref},
	} {
		// The node argument does not matter: net_kernel answers yes.
		for _, who := range []etf.Atom{etf.Atom(p.name), "someone@else"} {
			p.send(etf.Tuple{int64(control.OpRegSend), p.pid, atomEmpty, etf.Atom("net_kernel")},
				etf.Tuple{etf.Atom("$gen_call"), etf.Tuple{caller, tag}, etf.Tuple{etf.Atom("is_auth"), who}})
			ctrl, msg := p.recv(2 * time.Second)
			assert.Equal(t, etf.Tuple{int64(control.OpSend), atomEmpty, caller}, ctrl)
			assert.Equal(t, etf.Tuple{tag, etf.Atom("yes")}, msg, "the tag comes back verbatim")
		}
	}
	// Other net_kernel calls and malformed ones get no answer and do not
	// drop the link.
	p.send(etf.Tuple{int64(control.OpRegSend), p.pid, atomEmpty, etf.Atom("net_kernel")},
		etf.Tuple{etf.Atom("$gen_call"), etf.Tuple{caller, ref}, etf.Atom("something_else")})
	p.send(etf.Tuple{int64(control.OpRegSend), p.pid, atomEmpty, etf.Atom("net_kernel")}, etf.Atom("not_a_call"))
	assertUnlinkAck(t, p)
	assert.Equal(t, []string{p.name}, n.Nodes())
}

// TestPingAnsweredByRawPeer: our Ping is the net_kernel is_auth call, and
// any of the reply forms BEAM uses (SEND, SEND_SENDER, ALIAS_SEND) ends it.
func TestPingAnsweredByRawPeer(t *testing.T) {
	t.Parallel()
	n, p := hostileNode(t, Options{})
	for _, tc := range []struct {
		what   string
		answer etf.Atom
		ctrl   func(from etf.Pid, ref etf.Ref) etf.Tuple
	}{
		{"SEND yes", "yes", func(from etf.Pid, _ etf.Ref) etf.Tuple { return etf.Tuple{int64(control.OpSend), atomEmpty, from} }},
		{"SEND_SENDER yes", "yes", func(from etf.Pid, _ etf.Ref) etf.Tuple { return etf.Tuple{int64(control.OpSendSender), p.pid, from} }},
		{"ALIAS_SEND yes", "yes", func(_ etf.Pid, ref etf.Ref) etf.Tuple { return etf.Tuple{int64(control.OpAliasSend), p.pid, ref} }},
		{"SEND no", "no", func(from etf.Pid, _ etf.Ref) etf.Tuple { return etf.Tuple{int64(control.OpSend), atomEmpty, from} }},
	} {
		res := make(chan error, 1)
		go func() {
			_, err := pingRTT(n, testCtx(t, 5*time.Second), p.name)
			res <- err
		}()
		ctrl, msg := p.recv(2 * time.Second)
		require.Len(t, ctrl, 4, tc.what)
		assert.Equal(t, int64(control.OpRegSend), ctrl[0], tc.what)
		assert.Equal(t, etf.Atom("net_kernel"), ctrl[3], tc.what)
		call, ok := msg.(etf.Tuple)
		require.True(t, ok, tc.what)
		require.Len(t, call, 3)
		assert.Equal(t, etf.Atom("$gen_call"), call[0])
		assert.Equal(t, etf.Tuple{etf.Atom("is_auth"), etf.Atom(n.Self())}, call[2])
		from := call[1].(etf.Tuple)
		pid, ref := from[0].(etf.Pid), from[1].(etf.Ref)
		assert.Equal(t, etf.Atom(n.Self()), pid.Node)
		assert.Equal(t, etf.Atom(n.Self()), ref.Node)

		p.send(tc.ctrl(pid, ref), etf.Tuple{ref, tc.answer})
		select {
		case err := <-res:
			if tc.answer == "yes" {
				assert.NoError(t, err, tc.what)
			} else {
				assert.ErrorIs(t, err, errPang, tc.what)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("%s: ping did not return", tc.what)
		}
	}
	assert.Equal(t, []string{p.name}, n.Nodes(), "a pang does not drop the link")
}

// TestPingPeerNeverAnswers: a link whose peer does not answer is bounded by
// ctx, and the link stays.
func TestPingPeerNeverAnswers(t *testing.T) {
	t.Parallel()
	n, p := hostileNode(t, Options{})
	start := time.Now()
	_, err := pingRTT(n, testCtx(t, 300*time.Millisecond), p.name)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), time.Second)
	assert.Equal(t, []string{p.name}, n.Nodes())
}

// isAuthTerms returns the REG_SEND control and the $gen_call message of an
// is_auth call from p, with tag.
func isAuthTerms(p *rawPeer, tag etf.Term) (ctrl, msg etf.Term) {
	return etf.Tuple{int64(control.OpRegSend), p.pid, atomEmpty, etf.Atom("net_kernel")},
		etf.Tuple{etf.Atom("$gen_call"), etf.Tuple{p.pid, tag}, etf.Tuple{etf.Atom("is_auth"), etf.Atom(p.name)}}
}

// bareTerms encodes terms one after the other without version bytes, as a
// distribution header frame carries them.
func bareTerms(t *testing.T, terms ...etf.Term) []byte {
	t.Helper()
	var b []byte
	for _, x := range terms {
		var err error
		b, err = etf.AppendTerm(b, x)
		require.NoError(t, err)
	}
	return b
}

// fragFrame builds a "131 69" (first) or "131 70" fragment frame body.
func fragFrame(first bool, seq, id uint64, data []byte) []byte {
	b := []byte{etf.VersionTag, control.DistFragCont}
	if first {
		b[1] = control.DistFragHeader
	}
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint64(b, id)
	if first {
		b = append(b, 0) // no atom cache references
	}
	return append(b, data...)
}

func TestHeaderFramesRead(t *testing.T) {
	t.Parallel()
	n, p := hostileNode(t, Options{})
	ref := func(i uint32) etf.Ref {
		return etf.Ref{Node: etf.Atom(p.name), Creation: 0x1234, Len: 3, ID: [5]uint32{i, 0, 0}}
	}
	expectYes := func(tag etf.Term) {
		t.Helper()
		ctrl, msg := p.recv(2 * time.Second)
		assert.Equal(t, etf.Tuple{int64(control.OpSend), atomEmpty, p.pid}, ctrl)
		assert.Equal(t, etf.Tuple{tag, etf.Atom("yes")}, msg)
	}

	// A normal header frame: 131 68 0, then the terms without 131.
	c, m := isAuthTerms(p, ref(1))
	p.frame(append([]byte{etf.VersionTag, control.DistHeader, 0}, bareTerms(t, c, m)...))
	expectYes(ref(1))

	// A message in three fragments (ids count down to 1).
	c, m = isAuthTerms(p, ref(2))
	whole := bareTerms(t, c, m)
	third := len(whole) / 3
	p.frame(fragFrame(true, 7, 3, whole[:third]))
	p.frame(fragFrame(false, 7, 2, whole[third:2*third]))
	p.frame(fragFrame(false, 7, 1, whole[2*third:]))
	expectYes(ref(2))

	// Two fragmented messages interleaved; and a one-fragment message.
	c, m = isAuthTerms(p, ref(3))
	w3 := bareTerms(t, c, m)
	c, m = isAuthTerms(p, ref(4))
	w4 := bareTerms(t, c, m)
	p.frame(fragFrame(true, 8, 2, w3[:10]))
	p.frame(fragFrame(true, 9, 2, w4[:20]))
	p.frame(fragFrame(false, 9, 1, w4[20:]))
	expectYes(ref(4))
	p.frame(fragFrame(false, 8, 1, w3[10:]))
	expectYes(ref(3))
	c, m = isAuthTerms(p, ref(5))
	p.frame(fragFrame(true, 10, 1, bareTerms(t, c, m)))
	expectYes(ref(5))
	assert.Equal(t, []string{p.name}, n.Nodes())
}

// TestFrameFormatFollowsNegotiation: the node sends header frames only to a
// peer that negotiated FRAGMENTS, and reads both forms from any peer.
func TestFrameFormatFollowsNegotiation(t *testing.T) {
	t.Parallel()
	n := startNode(t, shortName("n"), testCookie, Options{EPMDPort: freePort(t)})
	p := dialRawFlags(t, n, shortName("plain"), handshake.DefaultFlags&^handshake.FlagFragments)
	require.False(t, p.headers)
	waitCount(t, n, 1, 2*time.Second)
	ref := etf.Ref{Node: etf.Atom(p.name), Creation: 0x1234, Len: 3, ID: [5]uint32{42}}
	c, m := isAuthTerms(p, ref)
	p.send(c, m)
	_, msg := p.recv(2 * time.Second) // recv asserts a 'p' frame
	assert.Equal(t, etf.Tuple{ref, etf.Atom("yes")}, msg)
	// A header frame from a peer that did not negotiate FRAGMENTS (ergo
	// does that) is read all the same.
	p.frame(append([]byte{etf.VersionTag, control.DistHeader, 0}, bareTerms(t, c, m)...))
	_, msg = p.recv(2 * time.Second)
	assert.Equal(t, etf.Tuple{ref, etf.Atom("yes")}, msg)

	q := dialRaw(t, n, shortName("frag"))
	require.True(t, q.headers)
	c, m = isAuthTerms(q, ref)
	q.send(c, m)
	_, msg = q.recv(2 * time.Second) // recv asserts a "131 68 0" frame
	assert.Equal(t, etf.Tuple{ref, etf.Atom("yes")}, msg)
}

// TestHostileHeaderFrames: bad header and fragment frames are skipped and counted, once per
// frame or per discarded message; the link stays and answers the next frame.
func TestHostileHeaderFrames(t *testing.T) {
	t.Parallel()
	junk := make([]byte, 600)
	var tooMany [][]byte
	for seq := range uint64(64 + 1) {
		tooMany = append(tooMany, fragFrame(true, seq, 2, []byte{1}))
	}
	for _, tc := range []struct {
		what   string
		frames [][]byte
		want   Stats
	}{
		{"atom cache references", [][]byte{{etf.VersionTag, control.DistHeader, 1, 0, 0, 0}}, Stats{Malformed: 1}},
		{"header without cache byte", [][]byte{{etf.VersionTag, control.DistHeader}}, Stats{Malformed: 1}},
		{"unknown header", [][]byte{{etf.VersionTag, 99, 0}}, Stats{Malformed: 1}},
		{"version byte alone", [][]byte{{etf.VersionTag}}, Stats{Malformed: 1}},
		{"short fragment header", [][]byte{{etf.VersionTag, control.DistFragHeader, 0, 0, 0}}, Stats{Malformed: 1}},
		{"fragment id 0", [][]byte{fragFrame(true, 1, 0, []byte{1})}, Stats{Malformed: 1}},
		{"fragment of unknown sequence", [][]byte{fragFrame(false, 5, 1, []byte{1})}, Stats{Malformed: 1}},
		{"fragment out of order", [][]byte{fragFrame(true, 1, 3, []byte{1}), fragFrame(false, 1, 1, []byte{1})}, Stats{Malformed: 1}},
		{"sequence started twice", [][]byte{fragFrame(true, 1, 3, []byte{1}), fragFrame(true, 1, 2, []byte{1})}, Stats{Malformed: 1}},
		{"first fragment with atom cache refs", [][]byte{append(fragFrame(true, 1, 2, nil)[:18], 3, 0)}, Stats{Malformed: 1}},
		// Refused at the first fragment; the rest are dropped without another count.
		{"fragments over the size limit", [][]byte{fragFrame(true, 1, 3, junk), fragFrame(false, 1, 2, junk), fragFrame(false, 1, 1, junk)}, Stats{TooLarge: 1}},
		{"too many sequences at once", tooMany, Stats{TooLarge: 1}},
		{"reassembled garbage", [][]byte{fragFrame(true, 1, 2, []byte{0xde}), fragFrame(false, 1, 1, []byte{0xad})}, Stats{Malformed: 1}},
	} {
		t.Run(tc.what, func(t *testing.T) {
			t.Parallel()
			n, p := hostileNode(t, Options{MaxMessageSize: 1024})
			for _, f := range tc.frames {
				p.frame(f)
			}
			assertUnlinkAck(t, p)
			assert.Equal(t, tc.want, n.Stats())
			assert.Equal(t, []string{p.name}, n.Nodes())
		})
	}
}

// TestFragmentsAfterSkipStillWork: after a fragmented message was refused, the next one on the
// same link is reassembled and delivered.
func TestFragmentsAfterSkipStillWork(t *testing.T) {
	t.Parallel()
	n, p := hostileNode(t, Options{MaxMessageSize: 1024})
	junk := make([]byte, 600)
	p.frame(fragFrame(true, 1, 3, junk))
	p.frame(fragFrame(false, 1, 2, junk))
	p.frame(fragFrame(false, 1, 1, junk))
	ref := etf.Ref{Node: etf.Atom(p.name), Creation: 0x1234, Len: 3, ID: [5]uint32{77}}
	c, m := isAuthTerms(p, ref)
	whole := bareTerms(t, c, m)
	p.frame(fragFrame(true, 1, 2, whole[:10]))
	p.frame(fragFrame(false, 1, 1, whole[10:]))
	ctrl, msg := p.recv(2 * time.Second)
	assert.Equal(t, etf.Tuple{int64(control.OpSend), atomEmpty, p.pid}, ctrl)
	assert.Equal(t, etf.Tuple{ref, etf.Atom("yes")}, msg)
	assert.Equal(t, Stats{TooLarge: 1}, n.Stats())
}

// filterHandler is a testHandler that refuses messages to the registered name "nobody".
type filterHandler struct {
	*testHandler
	asked atomic.Int64
}

func (h *filterHandler) WantMessage(_ *Conn, m control.Message) bool {
	h.asked.Add(1)
	rs, ok := m.(control.RegSend)
	return !ok || rs.To != "nobody"
}

// TestMessageFilterSkipsFragments: a Handler that implements MessageFilter is asked once per
// fragmented message; the fragments of a refused one are discarded as they arrive and never
// reach HandleMessage, and the link goes on.
func TestMessageFilterSkipsFragments(t *testing.T) {
	t.Parallel()
	h := &filterHandler{testHandler: newTestHandler()}
	n, p := hostileNode(t, Options{Handler: h, MaxMessageSize: 1 << 20})
	before := h.msgs.Load()
	big := make([]byte, 600<<10) // held whole, it would take 600 KiB
	whole := bareTerms(t, etf.Tuple{int64(control.OpRegSend), p.pid, atomEmpty, etf.Atom("nobody")}, big)
	k := uint64(12)
	size := len(whole)/int(k) + 1
	for i := uint64(0); i < k; i++ {
		lo, hi := int(i)*size, min(int(i+1)*size, len(whole))
		p.frame(fragFrame(i == 0, 3, k-i, whole[lo:hi]))
	}
	ref := etf.Ref{Node: etf.Atom(p.name), Creation: 0x1234, Len: 3, ID: [5]uint32{5}}
	c, m := isAuthTerms(p, ref)
	w := bareTerms(t, c, m)
	p.frame(fragFrame(true, 4, 2, w[:8]))
	p.frame(fragFrame(false, 4, 1, w[8:]))
	ctrl, msg := p.recv(2 * time.Second)
	assert.Equal(t, etf.Tuple{int64(control.OpSend), atomEmpty, p.pid}, ctrl)
	assert.Equal(t, etf.Tuple{ref, etf.Atom("yes")}, msg)
	assert.Equal(t, int64(2), h.asked.Load(), "asked once per fragmented message")
	assert.Equal(t, before+1, h.msgs.Load(), "only the wanted message reached HandleMessage")
	assert.Equal(t, Stats{}, n.Stats(), "a refused message is no error")
	assert.Equal(t, []string{p.name}, n.Nodes())
}
