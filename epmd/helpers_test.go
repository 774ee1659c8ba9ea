package epmd

import (
	"context"
	"errors"
	"github.com/distribute-go/distribute/internal/logbuf"
	"io"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startServer runs a Server on a private loopback port until the test ends.
func startServer(t *testing.T, s *Server) (*Server, int) {
	t.Helper()
	if s == nil {
		s = &Server{}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		require.NoError(t, s.Close())
		require.ErrorIs(t, <-served, ErrServerClosed)
	})
	return s, ln.Addr().(*net.TCPAddr).Port
}

// testCtx is a context bounded well below the test timeout.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// rawExchange sends raw bytes to addr and returns everything read until the peer closes (or 2 s pass,
// reported as timedOut).
func rawExchange(t *testing.T, port int, data []byte) (reply []byte, timedOut bool) {
	t.Helper()
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(2*time.Second)))
	if len(data) > 0 {
		_, err = c.Write(data)
		require.NoError(t, err)
	}
	reply, err = io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return reply, true
	}
	return reply, false
}

// fakeEPMD accepts connections on a loopback port and hands each to handle.
func fakeEPMD(t *testing.T, handle func(c net.Conn)) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				handle(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
	})
	return ln.Addr().(*net.TCPAddr).Port
}

func names(entries []NameEntry) map[string]int {
	m := make(map[string]int, len(entries))
	for _, e := range entries {
		m[e.Name] = e.Port
	}
	return m
}

// logBuffer collects debug log lines written by a Server.
type logBuffer = logbuf.Buffer
