package epmd

import (
	"bytes"
	"encoding/binary"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawAlive2 builds a length-prefixed ALIVE2_REQ.
func rawAlive2(name string, port, high uint16, extra string) []byte {
	return appendRequest(nil, alive2Body(NodeInfo{Name: name, Port: int(port), Type: 77,
		HighestVersion: high, LowestVersion: 5, Extra: []byte(extra)}))
}

func TestEPMDServerRejectsBadRequests(t *testing.T) {
	logs := &logBuffer{}
	s, port := startServer(t, &Server{Logger: logs.Logger(), RequestTimeout: 300 * time.Millisecond})
	c := &Client{Port: port}
	reg, err := c.Register(testCtx(t), NodeInfo{Name: "keep", Port: 7000})
	require.NoError(t, err)
	defer reg.Close()

	alive := rawAlive2("abc", 1, 6, "")
	nameTooLong := append([]byte{}, alive...)
	binary.BigEndian.PutUint16(nameTooLong[11:], 200) // name length beyond the body
	extraTooLong := append([]byte{}, alive...)
	binary.BigEndian.PutUint16(extraTooLong[16:], 9) // extra length beyond the body
	cases := []struct {
		name   string
		data   []byte
		reason string
	}{
		{"zero length", []byte{0, 0}, "invalid request length 0"},
		{"oversized length", []byte{0xff, 0xff, tagNamesReq}, "invalid request length 65535"},
		{"just above the limit", binary.BigEndian.AppendUint16(nil, maxRequestLen+1), "invalid request length 3058"},
		{"truncated body", []byte{0, 10, tagPort2Req, 'a'}, "reading 10-byte request"},
		{"half a length", []byte{0}, "reading request length"},
		{"unknown tag", appendRequest(nil, []byte("GET / HTTP/1.0")), "unknown request tag 71"},
		{"ALIVE2 too short", appendRequest(nil, alive2Body(NodeInfo{Port: 1})), "too short"},
		{"ALIVE2 name length", nameTooLong, "name length 200"},
		{"ALIVE2 extra length", extraTooLong, "extra length 9"},
		{"ALIVE2 NUL in name", rawAlive2("a\x00b", 1, 6, ""), "NUL"},
		{"PORT2 empty name", appendRequest(nil, []byte{tagPort2Req}), "empty name"},
		{"PORT2 only NUL", appendRequest(nil, []byte{tagPort2Req, 0}), "empty name"},
		{"PORT2 NUL inside", appendRequest(nil, []byte("zab\x00cd")), "NUL"},
		{"PORT2 not UTF-8", appendRequest(nil, []byte("z\xff")), "UTF-8"},
		{"PORT2 256 chars", appendRequest(nil, []byte("z"+strings.Repeat("a", 256))), "longer than 255"},
		{"STOP", appendRequest(nil, []byte("skeep")), "STOP_REQ refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reply, timedOut := rawExchange(t, port, tc.data)
			assert.False(t, timedOut, "the server must close the connection")
			assert.Empty(t, reply, "no reply to a bad request")
			assert.Eventually(t, func() bool { return strings.Contains(logs.String(), tc.reason) },
				2*time.Second, 5*time.Millisecond, "debug log should give the reason %q", tc.reason)
		})
	}
	// The server kept serving, and the registration survived.
	info, err := c.PortPlease(testCtx(t), "", "keep")
	require.NoError(t, err)
	assert.Equal(t, 7000, info.Port)
	assert.Len(t, s.Registered(), 1)
	assert.Contains(t, logs.String(), "level=DEBUG")
}

func TestEPMDServerRefusals(t *testing.T) {
	_, port := startServer(t, nil)
	// Names epmd refuses with result 1 and creation 99 rather than a silent close.
	for _, name := range []string{"\xff\xfe", strings.Repeat("b", 256)} {
		reply, _ := rawExchange(t, port, rawAlive2(name, 1, 6, ""))
		assert.Equal(t, []byte{tagAlive2XRes, 1, 0, 0, 0, 99}, reply)
		reply, _ = rawExchange(t, port, rawAlive2(name, 1, 5, ""))
		assert.Equal(t, []byte{tagAlive2Res, 1, 0, 99}, reply)
	}
	reply, _ := rawExchange(t, port, rawAlive2("big", 1, 6, strings.Repeat("e", maxExtraBytes+1)))
	assert.Equal(t, []byte{tagAlive2XRes, 1, 0, 0, 0, 99}, reply)

	// 255 characters of up to 4 bytes are fine.
	c := &Client{Port: port}
	reg, err := c.Register(testCtx(t), NodeInfo{Name: strings.Repeat("é", 255), Port: 1, Extra: make([]byte, maxExtraBytes)})
	require.NoError(t, err)
	defer reg.Close()
	info, err := c.PortPlease(testCtx(t), "", strings.Repeat("é", 255))
	require.NoError(t, err)
	assert.Len(t, info.Extra, maxExtraBytes)
}

func TestEPMDServerOldClientGets121(t *testing.T) {
	_, port := startServer(t, nil)
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = conn.Write(rawAlive2("old", 1234, 5, ""))
	require.NoError(t, err)
	var reply [4]byte
	_, err = conn.Read(reply[:])
	require.NoError(t, err)
	assert.Equal(t, byte(tagAlive2Res), reply[0])
	assert.Equal(t, byte(0), reply[1])
	cr := binary.BigEndian.Uint16(reply[2:])
	assert.True(t, cr >= 1 && cr <= 3, "old-style creation %d must be 1..3", cr)

	info, err := (&Client{Port: port}).PortPlease(testCtx(t), "", "old")
	require.NoError(t, err)
	assert.Equal(t, NodeInfo{Name: "old", Port: 1234, Type: 77, HighestVersion: 5, LowestVersion: 5}, info)
}

func TestEPMDServerCreation(t *testing.T) {
	_, port := startServer(t, nil)
	c := &Client{Port: port}
	seen := map[uint32]bool{}
	var prev uint32
	for i := 0; i < 5; i++ {
		var reg *Registration
		require.Eventually(t, func() bool {
			var err error
			reg, err = c.Register(testCtx(t), NodeInfo{Name: "again", Port: 1})
			return err == nil
		}, 5*time.Second, 5*time.Millisecond)
		cr := reg.Creation()
		assert.GreaterOrEqual(t, cr, uint32(4))
		assert.False(t, seen[cr], "creation %d repeated", cr)
		if i > 0 {
			assert.Equal(t, prev+1, cr, "creation grows by one per registration of a name")
		}
		seen[cr], prev = true, cr
		require.NoError(t, reg.Close())
	}
	// Old clients get 1..3, changing too.
	var olds []byte
	for i := 0; i < 3; i++ {
		var reply []byte
		require.Eventually(t, func() bool {
			conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
			if err != nil {
				return false
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
			if _, err := conn.Write(rawAlive2("again", 1, 5, "")); err != nil {
				return false
			}
			reply = make([]byte, 4)
			_, err = conn.Read(reply)
			return err == nil && reply[1] == 0
		}, 5*time.Second, 5*time.Millisecond)
		olds = append(olds, reply[3])
	}
	assert.NotEqual(t, olds[0], olds[1])
	assert.NotEqual(t, olds[1], olds[2])
}

func TestEPMDServerSlowRequestDropped(t *testing.T) {
	logs := &logBuffer{}
	_, port := startServer(t, &Server{Logger: logs.Logger(), RequestTimeout: 200 * time.Millisecond})
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	require.NoError(t, err)
	defer conn.Close()
	start := time.Now()
	_, err = conn.Write([]byte{0, 5, tagPort2Req}) // then nothing more
	require.NoError(t, err)

	// Others are served meanwhile.
	_, err = (&Client{Port: port}).Names(testCtx(t), "")
	require.NoError(t, err)

	require.NoError(t, conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	n, err := conn.Read(make([]byte, 8))
	assert.Zero(t, n)
	require.Error(t, err, "the server must close a request that does not complete")
	elapsed := time.Since(start)
	assert.GreaterOrEqual(t, elapsed, 150*time.Millisecond)
	assert.Less(t, elapsed, 3*time.Second)
	assert.Eventually(t, func() bool { return strings.Contains(logs.String(), "i/o timeout") },
		2*time.Second, 5*time.Millisecond)
}

func TestEPMDServerRegistrationOutlivesRequestTimeout(t *testing.T) {
	_, port := startServer(t, &Server{RequestTimeout: 100 * time.Millisecond})
	c := &Client{Port: port}
	reg, err := c.Register(testCtx(t), NodeInfo{Name: "long", Port: 1})
	require.NoError(t, err)
	defer reg.Close()
	time.Sleep(300 * time.Millisecond)
	select {
	case <-reg.Done():
		t.Fatal("a registration must not time out")
	default:
	}
	_, err = c.PortPlease(testCtx(t), "", "long")
	assert.NoError(t, err)
}

func TestEPMDServerDataOnRegistrationDrops(t *testing.T) {
	s, port := startServer(t, nil)
	conn, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	require.NoError(t, err)
	defer conn.Close()
	require.NoError(t, conn.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = conn.Write(rawAlive2("chatty", 1, 6, ""))
	require.NoError(t, err)
	_, err = conn.Read(make([]byte, 6))
	require.NoError(t, err)
	require.Len(t, s.Registered(), 1)
	_, err = conn.Write([]byte{1})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(s.Registered()) == 0 }, 5*time.Second, 5*time.Millisecond)
}

func TestEPMDServerMaxConns(t *testing.T) {
	_, port := startServer(t, &Server{MaxConns: 2})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c := &Client{Port: port}
	r1, err := c.Register(testCtx(t), NodeInfo{Name: "one", Port: 1})
	require.NoError(t, err)
	defer r1.Close()
	idle, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer idle.Close()
	// Let the server accept the idle connection before the next one.
	require.Eventually(t, func() bool {
		_, err := c.Names(testCtx(t), "")
		return err != nil
	}, 5*time.Second, 5*time.Millisecond, "a third connection must be closed at once")
	_, err = c.Names(testCtx(t), "")
	assert.Error(t, err, "closed at once: EOF or reset")
	require.NoError(t, idle.Close())
	require.Eventually(t, func() bool {
		_, err := c.Names(testCtx(t), "")
		return err == nil
	}, 5*time.Second, 5*time.Millisecond, "serving resumes once a connection ends")
}

func TestEPMDServerNamesDumpKill(t *testing.T) {
	s, port := startServer(t, nil)
	c := &Client{Port: port}
	for i, name := range []string{"zeta", "alpha"} {
		reg, err := c.Register(testCtx(t), NodeInfo{Name: name, Port: 100 + i})
		require.NoError(t, err)
		defer reg.Close()
	}
	reply, _ := rawExchange(t, port, appendRequest(nil, []byte{tagNamesReq}))
	want := binary.BigEndian.AppendUint32(nil, uint32(port))
	want = append(want, "name alpha at port 101\nname zeta at port 100\n"...)
	assert.Equal(t, want, reply)

	reply, _ = rawExchange(t, port, appendRequest(nil, []byte{tagDumpReq}))
	require.GreaterOrEqual(t, len(reply), 4)
	assert.Equal(t, uint32(port), binary.BigEndian.Uint32(reply))
	lines := bytes.Split(reply[4:], []byte("\n\x00"))
	require.Len(t, lines, 3)
	assert.Regexp(t, `^active name     <alpha> at port 101, fd = \d+$`, string(lines[0]))
	assert.Regexp(t, `^active name     <zeta> at port 100, fd = \d+$`, string(lines[1]))

	reply, _ = rawExchange(t, port, appendRequest(nil, []byte{tagKillReq}))
	assert.Equal(t, []byte("NO"), reply)
	assert.Len(t, s.Registered(), 2, "KILL_REQ must not disturb the server")
	_, err := c.Names(testCtx(t), "")
	assert.NoError(t, err)
}

func TestEPMDServerNonLocalRefused(t *testing.T) {
	s := &Server{}
	c := &serverConn{id: 1}
	for _, tag := range []byte{tagAlive2Req, tagDumpReq, tagKillReq} {
		body := alive2Body(NodeInfo{Name: "remote", Port: 1, Type: 77, HighestVersion: 6, LowestVersion: 5})
		body[0] = tag
		reply, keep, err := s.handle(c, body, false, DefaultPort)
		assert.Error(t, err, "tag %d", tag)
		assert.Nil(t, reply)
		assert.False(t, keep)
	}
	assert.Empty(t, s.Registered())
	// PORT_PLEASE2 and NAMES are open to all.
	reply, _, err := s.handle(c, []byte{tagNamesReq}, false, DefaultPort)
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 0, 0x11, 0x11}, reply)
	reply, _, err = s.handle(c, []byte("zremote"), false, DefaultPort)
	require.NoError(t, err)
	assert.Equal(t, []byte{tagPort2Res, 1}, reply)
}

func TestEPMDIsLocalPeer(t *testing.T) {
	tcp := func(ip string) *net.TCPAddr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 4369} }
	cases := []struct {
		remote, local net.Addr
		want          bool
	}{
		{tcp("127.0.0.1"), tcp("127.0.0.1"), true},
		{tcp("127.1.2.3"), tcp("127.0.0.1"), true},
		{tcp("::1"), tcp("::1"), true},
		{tcp("::ffff:127.0.0.1"), tcp("::ffff:127.0.0.1"), true},
		{tcp("192.168.1.5"), tcp("192.168.1.5"), true}, // from this host's own address
		{tcp("fd00::5"), tcp("fd00::5"), true},
		{tcp("192.168.1.6"), tcp("192.168.1.5"), false},
		{tcp("10.0.0.1"), tcp("127.0.0.1"), false},
		{tcp("fd00::6"), tcp("fd00::5"), false},
		{tcp("0.0.0.0"), tcp("0.0.0.0"), false},
		{tcp("10.0.0.1"), nil, false},
		{nil, tcp("127.0.0.1"), false},
		{&net.UnixAddr{Name: "@x", Net: "unix"}, nil, true},
		{&net.UDPAddr{IP: net.ParseIP("10.0.0.1")}, nil, false},
	}
	for _, tc := range cases {
		assert.Equal(t, tc.want, isLocalPeer(tc.remote, tc.local), "%v -> %v", tc.remote, tc.local)
	}
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	assert.True(t, isLocalPeer(a.RemoteAddr(), a.LocalAddr()), "in-process pipe")
}

func TestEPMDServerServeAfterClose(t *testing.T) {
	s := &Server{}
	require.NoError(t, s.Close())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	require.ErrorIs(t, s.Serve(ln), ErrServerClosed)
	_, err = ln.Accept()
	assert.Error(t, err, "Serve closes its listener")
	assert.ErrorIs(t, s.ListenAndServe("127.0.0.1:0"), ErrServerClosed)
	assert.NoError(t, s.Close(), "Close is idempotent")
}

func TestEPMDServerListenAndServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())

	s := &Server{}
	served := make(chan error, 1)
	go func() { served <- s.ListenAndServe(addr) }()
	var reg *Registration
	require.Eventually(t, func() bool {
		reg, err = (&Client{Port: port}).Register(testCtx(t), NodeInfo{Name: "las", Port: 9})
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	require.NoError(t, s.Close())
	require.ErrorIs(t, <-served, ErrServerClosed)
	<-reg.Done()
	require.NoError(t, reg.Close())

	t.Setenv("ERL_EPMD_PORT", "bogus")
	assert.ErrorContains(t, (&Server{}).ListenAndServe(""), "ERL_EPMD_PORT")
}
