package epmd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEPMDRegisterLookupNames(t *testing.T) {
	s, port := startServer(t, nil)
	c := &Client{Port: port}
	ctx := testCtx(t)

	reg, err := c.Register(ctx, NodeInfo{Name: "alpha", Port: 5001, Extra: []byte("xy")})
	require.NoError(t, err)
	defer reg.Close()
	assert.NotZero(t, reg.Creation())

	info, err := c.PortPlease(ctx, "127.0.0.1", "alpha")
	require.NoError(t, err)
	assert.Equal(t, NodeInfo{Name: "alpha", Port: 5001, Type: TypeNormal, Protocol: ProtocolTCP,
		HighestVersion: 6, LowestVersion: 5, Extra: []byte("xy")}, info)

	reg2, err := c.Register(ctx, NodeInfo{Name: "beta", Port: 5002, Type: TypeHidden})
	require.NoError(t, err)
	defer reg2.Close()

	list, err := c.Names(ctx, "")
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"alpha": 5001, "beta": 5002}, names(list))

	got := s.Registered()
	require.Len(t, got, 2)
	assert.Equal(t, "alpha", got[0].Name)
	assert.Equal(t, "beta", got[1].Name)
	assert.Equal(t, TypeHidden, got[1].Type)
}

func TestEPMDDuplicateNameRefused(t *testing.T) {
	_, port := startServer(t, nil)
	c := &Client{Port: port}
	ctx := testCtx(t)

	first, err := c.Register(ctx, NodeInfo{Name: "dup", Port: 6001})
	require.NoError(t, err)

	_, err = c.Register(ctx, NodeInfo{Name: "dup", Port: 6002})
	require.ErrorIs(t, err, ErrNameTaken)

	// The first registration is unharmed by the refused attempt.
	info, err := c.PortPlease(ctx, "", "dup")
	require.NoError(t, err)
	assert.Equal(t, 6001, info.Port)

	require.NoError(t, first.Close())
	var second *Registration
	require.Eventually(t, func() bool {
		second, err = c.Register(ctx, NodeInfo{Name: "dup", Port: 6002})
		return err == nil
	}, 5*time.Second, 10*time.Millisecond)
	defer second.Close()
	assert.NotEqual(t, first.Creation(), second.Creation(), "creation must change per registration")
	assert.NotZero(t, second.Creation())
}

func TestEPMDRegistrationDroppedOnClose(t *testing.T) {
	s, port := startServer(t, nil)
	c := &Client{Port: port}
	ctx := testCtx(t)

	reg, err := c.Register(ctx, NodeInfo{Name: "gone", Port: 6100})
	require.NoError(t, err)
	select {
	case <-reg.Done():
		t.Fatal("Done closed while registered")
	default:
	}
	require.NoError(t, reg.Close())
	select {
	case <-reg.Done():
	default:
		t.Fatal("Done not closed after Close")
	}
	require.Eventually(t, func() bool { return len(s.Registered()) == 0 }, 5*time.Second, 5*time.Millisecond)
	_, err = c.PortPlease(ctx, "", "gone")
	assert.ErrorIs(t, err, ErrNotRegistered)
	list, err := c.Names(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, list)
}

func TestEPMDRegistrationDoneWhenServerCloses(t *testing.T) {
	s := &Server{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()

	reg, err := (&Client{Port: ln.Addr().(*net.TCPAddr).Port}).Register(testCtx(t), NodeInfo{Name: "n", Port: 1})
	require.NoError(t, err)
	defer reg.Close()
	require.NoError(t, s.Close())
	require.ErrorIs(t, <-served, ErrServerClosed)
	select {
	case <-reg.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the EPMD went away")
	}
	assert.Empty(t, s.Registered())
}

func TestEPMDPortPleaseNotFound(t *testing.T) {
	_, port := startServer(t, nil)
	_, err := (&Client{Port: port}).PortPlease(testCtx(t), "127.0.0.1", "nobody")
	require.ErrorIs(t, err, ErrNotRegistered)
	assert.Contains(t, err.Error(), "nobody")
}

func TestEPMDClientInvalidArguments(t *testing.T) {
	c := &Client{Port: 1} // never dialled
	ctx := testCtx(t)
	for _, name := range []string{"", "a@b", "nul\x00", "\xff", strings.Repeat("é", 256)} {
		_, err := c.Register(ctx, NodeInfo{Name: name, Port: 1})
		assert.ErrorIs(t, err, ErrInvalidName, "%q", name)
		_, err = c.PortPlease(ctx, "", name)
		assert.ErrorIs(t, err, ErrInvalidName, "%q", name)
	}
	_, err := c.Register(ctx, NodeInfo{Name: "ok", Port: 0})
	assert.ErrorContains(t, err, "port 0")
	_, err = c.Register(ctx, NodeInfo{Name: "ok", Port: 1, Extra: make([]byte, maxExtraBytes+1)})
	assert.ErrorContains(t, err, "extra")
}

// The old ALIVE2_RESP (121, 16-bit creation) is accepted, and so are bytes trailing a reply.
func TestEPMDClientOldReplyAndTrailingBytes(t *testing.T) {
	requests := make(chan []byte, 4)
	port := fakeEPMD(t, func(c net.Conn) {
		body, err := readRequest(c)
		if err != nil {
			return
		}
		requests <- body
		switch {
		case body[0] == tagAlive2Req && strings.Contains(string(body), "old"):
			_, _ = c.Write([]byte{tagAlive2Res, 0, 0, 3})
		case body[0] == tagAlive2Req:
			_, _ = c.Write([]byte{tagAlive2XRes, 0, 0, 0, 1, 2, 'j', 'u', 'n', 'k'})
		case body[0] == tagPort2Req:
			_, _ = c.Write(append(port2Reply(NodeInfo{Name: "x", Port: 7, Type: 77, HighestVersion: 6, LowestVersion: 5}), "trailing"...))
		}
		_, _ = io.Copy(io.Discard, c) // hold the connection like an EPMD until the client closes
	})
	c := &Client{Port: port}
	ctx := testCtx(t)

	reg, err := c.Register(ctx, NodeInfo{Name: "old", Port: 1})
	require.NoError(t, err)
	assert.Equal(t, uint32(3), reg.Creation())
	require.NoError(t, reg.Close())
	assert.Equal(t, alive2Body(NodeInfo{Name: "old", Port: 1, Type: 77, HighestVersion: 6, LowestVersion: 5}), <-requests,
		"Register must send OTP 25's ALIVE2_REQ")

	reg, err = c.Register(ctx, NodeInfo{Name: "new", Port: 1})
	require.NoError(t, err)
	assert.Equal(t, uint32(0x102), reg.Creation())
	select {
	case <-reg.Done():
		t.Fatal("trailing bytes must not end the registration")
	case <-time.After(50 * time.Millisecond):
	}
	require.NoError(t, reg.Close())
	<-requests

	info, err := c.PortPlease(ctx, "", "x")
	require.NoError(t, err)
	assert.Equal(t, 7, info.Port)
	assert.Equal(t, []byte{tagPort2Req, 'x'}, <-requests)
}

func TestEPMDClientProtocolErrors(t *testing.T) {
	cases := []struct {
		name  string
		reply []byte
		call  string
	}{
		{"unknown tag", []byte{'H', 'T', 'T', 'P', '/', '1'}, "register"},
		{"truncated X reply", []byte{tagAlive2XRes, 0, 0}, "register"},
		{"truncated old reply", []byte{tagAlive2Res, 0}, "register"},
		{"closed without reply", nil, "register"},
		{"creation 0", []byte{tagAlive2XRes, 0, 0, 0, 0, 0}, "register"},
		{"port reply wrong tag", []byte{tagAlive2XRes, 0}, "port_please"},
		{"port reply truncated", []byte{tagPort2Res, 0, 1, 2, 77}, "port_please"},
		{"port reply name truncated", []byte{tagPort2Res, 0, 1, 2, 77, 0, 0, 6, 0, 5, 0, 9, 'a'}, "port_please"},
		{"port reply extra truncated", []byte{tagPort2Res, 0, 1, 2, 77, 0, 0, 6, 0, 5, 0, 1, 'a', 0, 5, 'e'}, "port_please"},
		{"names truncated port", []byte{0, 0}, "names"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			port := fakeEPMD(t, func(c net.Conn) {
				if _, err := readRequest(c); err == nil {
					_, _ = c.Write(tc.reply)
				}
			})
			c := &Client{Port: port}
			var err error
			switch tc.call {
			case "register":
				var reg *Registration
				reg, err = c.Register(testCtx(t), NodeInfo{Name: "n", Port: 1})
				assert.Nil(t, reg)
			case "port_please":
				_, err = c.PortPlease(testCtx(t), "", "n")
			case "names":
				_, err = c.Names(testCtx(t), "")
			}
			var pe *ProtocolError
			require.ErrorAs(t, err, &pe)
			assert.Equal(t, tc.call, pe.Op)
		})
	}
}

func TestEPMDClientNetworkErrors(t *testing.T) {
	// Connection refused stays visible as ECONNREFUSED and *net.OpError.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	_, err = (&Client{Port: port}).Names(testCtx(t), "")
	require.ErrorIs(t, err, syscall.ECONNREFUSED)
	var oe *net.OpError
	assert.ErrorAs(t, err, &oe)

	// An EPMD that never answers: Client.Timeout bounds the request...
	silent := fakeEPMD(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) })
	start := time.Now()
	_, err = (&Client{Port: silent, Timeout: 100 * time.Millisecond}).Register(context.Background(), NodeInfo{Name: "n", Port: 1})
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 3*time.Second)

	// ...and so does the context's deadline, which takes precedence over Timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = (&Client{Port: silent, Timeout: time.Hour}).PortPlease(ctx, "", "n")
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	assert.ErrorIs(t, err, context.DeadlineExceeded)

	// Cancellation interrupts a blocked read.
	ctx, cancel = context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = (&Client{Port: silent}).Names(ctx, "")
	require.ErrorIs(t, err, context.Canceled)
}

func TestEPMDClientBadEnvPort(t *testing.T) {
	t.Setenv("ERL_EPMD_PORT", "not-a-port")
	_, err := (&Client{}).Names(testCtx(t), "")
	require.ErrorContains(t, err, "ERL_EPMD_PORT")
}

func TestEPMDClientPortFromEnv(t *testing.T) {
	s, port := startServer(t, nil)
	t.Setenv("ERL_EPMD_PORT", strconv.Itoa(port))
	reg, err := (&Client{}).Register(testCtx(t), NodeInfo{Name: "envport", Port: 42})
	require.NoError(t, err)
	defer reg.Close()
	assert.Equal(t, "envport", s.Registered()[0].Name)
}

func TestEPMDPortFromEnv(t *testing.T) {
	for _, tc := range []struct {
		env  string
		port int
		ok   bool
	}{
		{"", DefaultPort, true},
		{"4370", 4370, true},
		{"1", 1, true},
		{"65535", 65535, true},
		{"0", 0, false},
		{"65536", 0, false},
		{"-1", 0, false},
		{"43a", 0, false},
		{" 4369", 0, false},
	} {
		t.Setenv("ERL_EPMD_PORT", tc.env)
		p, err := PortFromEnv()
		if tc.ok {
			assert.NoError(t, err, tc.env)
			assert.Equal(t, tc.port, p, tc.env)
		} else {
			assert.Error(t, err, tc.env)
		}
	}
	require.NoError(t, os.Unsetenv("ERL_EPMD_PORT")) // t.Setenv restores it afterwards
	p, err := PortFromEnv()
	require.NoError(t, err)
	assert.Equal(t, DefaultPort, p)
}

func TestEPMDReadNamesReply(t *testing.T) {
	reply := binary.BigEndian.AppendUint32(nil, 4369)
	reply = append(reply, "name a at port 1\n"+
		"name with space at port 2\n"+
		"garbage line\n"+
		"name bad at port 70000\n"+
		"name neg at port -1\n"+
		"name  at port 3\n"+
		"name b at port 65535\n"+
		"name unterminated at port 4"...)
	port, list, err := readNamesReply(bytes.NewReader(reply))
	require.NoError(t, err)
	assert.Equal(t, uint32(4369), port)
	assert.Equal(t, []NameEntry{{"a", 1}, {"with space", 2}, {"b", 65535}}, list)

	_, _, err = readNamesReply(io.MultiReader(bytes.NewReader(reply[:4]), &endless{}))
	var pe *ProtocolError
	require.ErrorAs(t, err, &pe, "an endless reply must be cut off")
}

// endless is a reader that never ends.
type endless struct{}

func (*endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func TestEPMDErrorsAreDistinct(t *testing.T) {
	assert.False(t, errors.Is(ErrNameTaken, ErrNotRegistered))
	pe := &ProtocolError{Op: "names", Reason: "r"}
	assert.Equal(t, "epmd: names: protocol error: r", pe.Error())
}
