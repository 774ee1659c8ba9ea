package epmd

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
)

const (
	defaultRequestTimeout = 10 * time.Second
	defaultMaxConns       = 1024
	// maxRemembered bounds how many names the server remembers the last creation of.
	maxRemembered = 4096
	// refusedCreation is the creation epmd puts in a refusal (checked against OTP 25's epmd).
	refusedCreation = 99
)

// Server is a pure-Go EPMD, a drop-in for `epmd`: net/http style. The zero value is ready to use.
//
// It answers like OTP 25's epmd without -relaxed_command_check:
//   - ALIVE2_REQ only from a local peer (loopback, or the address the connection arrived on); the name
//     stays registered while that connection is open (any byte sent on it ends the registration, as
//     with epmd). A taken, too long or non-UTF-8 name is refused with
//     result 1 (creation 99, as epmd does) and the connection is closed (epmd keeps it open, to no use).
//     Creations are 32-bit, never below 4, and grow by one each time a name registers again; clients
//     announcing a highest version below 6 get the old 16-bit reply with creation 1..3.
//   - PORT_PLEASE2_REQ and NAMES_REQ from anyone; the reply is followed by a close.
//   - DUMP_REQ from a local peer: epmd's dump format, where "fd" is the server's connection number.
//   - KILL_REQ from a local peer is always refused with "NO" (what epmd answers while nodes are
//     registered; `epmd -kill` prints "Killing not allowed - living nodes in database."): a library
//     server must not stop its embedding process. Stop it with Close.
//   - STOP_REQ gets a close without a reply, as from epmd without -relaxed_command_check.
//
// Anything else — an unknown tag, a length of 0 or above 3057 bytes, a malformed body, a request from a
// non-local peer that requires a local one, a request not complete within RequestTimeout — is closed
// without a reply and logged at debug level. Registrations count towards MaxConns, as with epmd.
type Server struct {
	Logger         *slog.Logger  // nil = silent
	RequestTimeout time.Duration // a whole request must arrive within it (slow-loris bound); 0 means 10 s
	MaxConns       int           // 0 means 1024; further connections are closed at once

	mu        sync.Mutex
	closed    bool
	done      chan struct{} // closed by Close
	listeners map[net.Listener]struct{}
	conns     map[*serverConn]struct{}
	nodes     map[string]*registered
	creations map[string]uint32 // last creation given to a name
	lastID    uint64
	wg        sync.WaitGroup
}

// serverConn is one accepted connection.
type serverConn struct {
	conn net.Conn
	id   uint64
}

type registered struct {
	info     NodeInfo
	creation uint32
	owner    *serverConn
}

// init makes the maps; s.mu must be held.
func (s *Server) init() {
	if s.done == nil {
		s.done = make(chan struct{})
		s.listeners = make(map[net.Listener]struct{})
		s.conns = make(map[*serverConn]struct{})
		s.nodes = make(map[string]*registered)
		s.creations = make(map[string]uint32)
	}
}

// ListenAndServe listens on the TCP address addr and serves. An empty addr means all interfaces at
// PortFromEnv(), like epmd.
func (s *Server) ListenAndServe(addr string) error {
	if addr == "" {
		p, err := PortFromEnv()
		if err != nil {
			return err
		}
		addr = ":" + strconv.Itoa(p)
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("epmd: listen: %w", err)
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Close, then returns ErrServerClosed; it returns other accept
// errors that are not transient. It always closes ln. Serve may be called with several listeners.
func (s *Server) Serve(ln net.Listener) error {
	defer ln.Close()
	s.mu.Lock()
	s.init()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	port := 0
	if a, ok := ln.Addr().(*net.TCPAddr); ok {
		port = a.Port
	}
	maxConns := s.MaxConns
	if maxConns <= 0 {
		maxConns = defaultMaxConns
	}
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return ErrServerClosed
			default:
			}
			if !transient(err) {
				return fmt.Errorf("epmd: accept: %w", err)
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.debug("accept failed, retrying", "err", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.done:
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = conn.Close()
			return ErrServerClosed
		}
		if len(s.conns) >= maxConns {
			s.mu.Unlock()
			s.debug("too many connections, closing", "remote", conn.RemoteAddr(), "max", maxConns)
			_ = conn.Close()
			continue
		}
		s.lastID++
		c := &serverConn{conn: conn, id: s.lastID}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serveConn(c, port)
	}
}

// transient reports accept errors worth retrying.
func transient(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EMFILE, syscall.ENFILE,
		syscall.ENOBUFS, syscall.ENOMEM, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Close closes the listeners and all connections (which drops every registration) and waits for the
// connection goroutines. Serve then returns ErrServerClosed. Close is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.init()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
	var err error
	for ln := range s.listeners {
		if e := ln.Close(); e != nil && !errors.Is(e, net.ErrClosed) && err == nil {
			err = e
		}
	}
	for c := range s.conns {
		_ = c.conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Registered returns the registered nodes sorted by name.
func (s *Server) Registered() []NodeInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]NodeInfo, 0, len(s.nodes))
	for _, n := range s.nodes {
		info := n.info
		info.Extra = slices.Clone(info.Extra)
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b NodeInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (s *Server) requestTimeout() time.Duration {
	if s.RequestTimeout > 0 {
		return s.RequestTimeout
	}
	return defaultRequestTimeout
}

// serveConn reads one request, answers it and closes, or holds the connection for a registration.
func (s *Server) serveConn(c *serverConn, epmdPort int) {
	defer s.wg.Done()
	defer s.drop(c)
	remote := c.conn.RemoteAddr()
	timeout := s.requestTimeout()
	_ = c.conn.SetDeadline(time.Now().Add(timeout))
	body, err := readRequest(c.conn)
	if err != nil {
		s.debug("closing connection without reply", "remote", remote, "reason", err)
		return
	}
	reply, keep, err := s.handle(c, body, isLocalPeer(remote, c.conn.LocalAddr()), epmdPort)
	if err != nil {
		s.debug("closing connection without reply", "remote", remote, "reason", err)
		return
	}
	if len(reply) > 0 {
		_ = c.conn.SetWriteDeadline(time.Now().Add(timeout))
		if _, err := c.conn.Write(reply); err != nil {
			s.debug("writing reply failed", "remote", remote, "err", err)
			return
		}
	}
	if !keep {
		return
	}
	// A registration: nothing more may arrive; EOF, an error or any byte ends it (as with epmd).
	_ = c.conn.SetDeadline(time.Time{})
	var b [1]byte
	if _, err := c.conn.Read(b[:]); err == nil {
		s.debug("unexpected data on a registration connection", "remote", remote)
	}
}

// drop closes c and removes its registration, if any.
func (s *Server) drop(c *serverConn) {
	_ = c.conn.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	s.unregisterLocked(c)
}

func (s *Server) unregisterLocked(c *serverConn) {
	for name, n := range s.nodes {
		if n.owner == c {
			delete(s.nodes, name)
			s.debug("unregistered", "name", name, "port", n.info.Port, "creation", n.creation)
			return
		}
	}
}

// readRequest reads one length-prefixed request body.
func readRequest(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, fmt.Errorf("reading request length: %w", err)
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n < 1 || n > maxRequestLen {
		return nil, fmt.Errorf("invalid request length %d", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, fmt.Errorf("reading %d-byte request: %w", n, err)
	}
	return body, nil
}

// handle answers one request body from connection c. It returns the reply to write (possibly none) and
// whether c now holds a registration and must stay open; an error means: close without a reply.
func (s *Server) handle(c *serverConn, body []byte, local bool, epmdPort int) (reply []byte, keep bool, err error) {
	if len(body) == 0 {
		return nil, false, errors.New("empty request")
	}
	switch body[0] {
	case tagAlive2Req:
		if !local {
			return nil, false, errors.New("ALIVE2_REQ from a non-local address")
		}
		info, err := parseAlive2Body(body)
		if err != nil {
			return nil, false, err
		}
		creation, err := s.register(c, info)
		if err != nil {
			s.debug("refusing registration", "name", info.Name, "reason", err)
			return alive2Reply(info.HighestVersion, 1, refusedCreation), false, nil
		}
		if info.HighestVersion < 6 {
			creation = creation%3 + 1
		}
		s.debug("registered", "name", info.Name, "port", info.Port, "creation", creation)
		return alive2Reply(info.HighestVersion, 0, creation), true, nil

	case tagPort2Req:
		name := body[1:]
		if len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1] // epmd accepts one terminating NUL
		}
		if err := checkServerName(name); err != nil {
			return nil, false, fmt.Errorf("PORT_PLEASE2_REQ: %w", err)
		}
		s.mu.Lock()
		n, ok := s.nodes[string(name)]
		var info NodeInfo
		if ok {
			info = n.info
		}
		s.mu.Unlock()
		if !ok {
			return []byte{tagPort2Res, 1}, false, nil
		}
		return port2Reply(info), false, nil

	case tagNamesReq:
		out := binary.BigEndian.AppendUint32(nil, uint32(epmdPort))
		for _, info := range s.Registered() {
			out = namesLine(out, info.Name, info.Port)
		}
		return out, false, nil

	case tagDumpReq:
		if !local {
			return nil, false, errors.New("DUMP_REQ from a non-local address")
		}
		out := binary.BigEndian.AppendUint32(nil, uint32(epmdPort))
		s.mu.Lock()
		for _, name := range slices.Sorted(maps.Keys(s.nodes)) {
			n := s.nodes[name]
			out = fmt.Appendf(out, "active name     <%s> at port %d, fd = %d\n\x00", name, n.info.Port, n.owner.id)
		}
		s.mu.Unlock()
		return out, false, nil

	case tagKillReq:
		if !local {
			return nil, false, errors.New("KILL_REQ from a non-local address")
		}
		s.debug("refusing KILL_REQ: an embedded EPMD stops only with Server.Close")
		return []byte("NO"), false, nil

	case tagStopReq:
		return nil, false, errors.New("STOP_REQ refused (epmd without -relaxed_command_check)")

	default:
		return nil, false, fmt.Errorf("unknown request tag %d", body[0])
	}
}

// register records info for connection c and returns its creation.
func (s *Server) register(c *serverConn, info NodeInfo) (uint32, error) {
	if err := checkServerName([]byte(info.Name)); err != nil {
		return 0, err
	}
	if len(info.Extra) > maxExtraBytes {
		return 0, fmt.Errorf("extra data longer than %d bytes", maxExtraBytes)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.init()
	if s.closed {
		return 0, ErrServerClosed
	}
	if _, taken := s.nodes[info.Name]; taken {
		return 0, errors.New("name already registered")
	}
	creation, seen := s.creations[info.Name]
	if seen {
		creation++
	} else {
		creation = rand.Uint32()
		if len(s.creations) >= maxRemembered {
			for name := range s.creations {
				if _, active := s.nodes[name]; !active {
					delete(s.creations, name)
					break
				}
			}
		}
	}
	if creation < 4 { // never 0, and apart from the old 1..3
		creation = 4
	}
	s.creations[info.Name] = creation
	s.nodes[info.Name] = &registered{info: info, creation: creation, owner: c}
	return creation, nil
}

// checkServerName applies epmd's rules for a name: 1..255 UTF-8 characters of at most 1020 bytes, no NUL.
func checkServerName(name []byte) error {
	switch {
	case len(name) == 0:
		return errors.New("empty name")
	case len(name) > maxNameBytes:
		return fmt.Errorf("name longer than %d bytes", maxNameBytes)
	case !utf8.Valid(name):
		return errors.New("name is not UTF-8")
	case utf8.RuneCount(name) > maxNameChars:
		return fmt.Errorf("name longer than %d characters", maxNameChars)
	case slices.Contains(name, 0):
		return errors.New("name contains NUL")
	}
	return nil
}

// isLocalPeer reports whether a connection from remote (arriving at local) counts as local the way
// epmd decides it: a loopback peer (127.0.0.0/8, ::1, also IPv4-mapped), or a peer whose address is the
// address it connected to (another process on this host). Unix sockets and in-process pipes are local.
func isLocalPeer(remote, local net.Addr) bool {
	switch ra := remote.(type) {
	case *net.TCPAddr:
		if ra.IP.IsLoopback() {
			return true
		}
		la, ok := local.(*net.TCPAddr)
		return ok && la.IP != nil && !ra.IP.IsUnspecified() && ra.IP.Equal(la.IP)
	case *net.UnixAddr:
		return true
	case nil:
		return false
	}
	return remote.Network() == "pipe"
}

func (s *Server) debug(msg string, args ...any) {
	if s.Logger != nil {
		s.Logger.Log(context.Background(), slog.LevelDebug, "epmd: "+msg, args...)
	}
}
