package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/epmd"
)

// startEPMD runs a pure-Go EPMD on a fresh loopback port until the test
// ends: from a node's point of view an EPMD that some other program runs.
func startEPMD(t testing.TB) (port int, srv *epmd.Server) {
	t.Helper()
	port = freePort(t)
	return port, serveEPMD(t, port)
}

// serveEPMD runs a pure-Go EPMD on 127.0.0.1:port; it is closed when the
// test ends (closing it earlier is fine).
func serveEPMD(t testing.TB, port int) *epmd.Server {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	require.NoError(t, err)
	srv := &epmd.Server{}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		assert.ErrorIs(t, <-served, epmd.ErrServerClosed)
	})
	return srv
}

func TestStartInvalidNodeName(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	long := strings.Repeat("a", 246) + "@localhost" // 256 characters
	for _, name := range []string{
		"noat",
		"",
		"@localhost",
		"alive@",
		"@",
		"bad!alive@localhost",
		"bad alive@localhost",
		"bad.alive@localhost",
		"é@localhost",
		"alive@host@more",
		"alive@bad host",
		long,
	} {
		n, err := Start(context.Background(), name, testCookie, &Options{EPMDPort: port, ListenAddr: "127.0.0.1"})
		if err == nil {
			_ = n.Stop()
		}
		require.Error(t, err, "%q", name)
		assert.ErrorIs(t, err, ErrInvalidNodeName, "%q: %v", name, err)
		var se *StartError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, InvalidNodeName, se.Kind)
		assert.NotEmpty(t, se.Detail)
		assert.NotErrorIs(t, err, ErrStartFailed)
	}
	// 255 characters is still a valid name.
	assert.NoError(t, ValidateName(strings.Repeat("a", 245)+"@localhost"))
	assert.NoError(t, ValidateName("Az09_-@host.example"))
}

func TestStartCookieLength(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	_, err := Start(context.Background(), shortName("c"), strings.Repeat("k", 256), &Options{EPMDPort: port})
	require.ErrorIs(t, err, ErrCookieTooLong)
	assert.NotContains(t, err.Error(), strings.Repeat("k", 20), "the error must not carry the cookie")

	// 255 bytes is fine, and two nodes sharing such a cookie can talk.
	cookie := strings.Repeat("k", 254) + "!"
	a := startNode(t, shortName("c"), cookie, Options{EPMDPort: port})
	b := startNode(t, shortName("c"), cookie, Options{EPMDPort: port})
	require.NoError(t, a.Connect(testCtx(t, 5*time.Second), b.Self()))
	assert.True(t, ping(b, testCtx(t, 5*time.Second), a.Self()))
}

func TestStartAlreadyStartedInProcess(t *testing.T) {
	t.Parallel()
	name := shortName("dup")
	a := startNode(t, name, testCookie, Options{EPMDPort: freePort(t)})
	// Even on another EPMD port, the name is taken in this process.
	_, err := Start(context.Background(), name, testCookie, &Options{EPMDPort: freePort(t), ListenAddr: "127.0.0.1"})
	require.ErrorIs(t, err, ErrAlreadyStarted)
	assert.NotErrorIs(t, err, ErrNetwork)

	// Once stopped, the name is free again.
	require.NoError(t, a.Stop())
	b := startNode(t, name, testCookie, Options{EPMDPort: freePort(t)})
	assert.Equal(t, name, b.Self())
}

func TestStartAlreadyStartedAtEPMD(t *testing.T) {
	t.Parallel()
	port, _ := startEPMD(t)
	alive := uniqueAlive("taken")
	registerFake(t, port, alive, 4242)

	_, err := Start(testCtx(t, 5*time.Second), alive+"@localhost", testCookie, &Options{EPMDPort: port, ListenAddr: "127.0.0.1"})
	require.ErrorIs(t, err, ErrAlreadyStarted)
	assert.ErrorIs(t, err, epmd.ErrNameTaken, "the cause is reachable")

	// A failed Start leaves the name free in this process: another alive
	// name works at once, and the taken one still fails the same way.
	_, err = Start(testCtx(t, 5*time.Second), alive+"@localhost", testCookie, &Options{EPMDPort: port, ListenAddr: "127.0.0.1"})
	require.ErrorIs(t, err, ErrAlreadyStarted)
	startNode(t, shortName("free"), testCookie, Options{EPMDPort: port})
}

func TestStartNetworkErrorPortInUse(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	busy := ln.Addr().(*net.TCPAddr).Port
	_, err = Start(context.Background(), shortName("busy"), testCookie,
		&Options{EPMDPort: freePort(t), ListenAddr: "127.0.0.1", ListenPort: busy})
	require.ErrorIs(t, err, ErrNetwork)
	assert.ErrorIs(t, err, syscall.EADDRINUSE)
}

func TestStartNetworkErrorNoExternalEPMD(t *testing.T) {
	t.Parallel()
	port := freePort(t) // nothing listens there
	start := time.Now()
	_, err := Start(testCtx(t, 5*time.Second), shortName("noepmd"), testCookie,
		&Options{EPMD: EPMDExternal, EPMDPort: port, ListenAddr: "127.0.0.1"})
	require.ErrorIs(t, err, ErrNetwork)
	assert.ErrorIs(t, err, syscall.ECONNREFUSED)
	assert.Less(t, time.Since(start), time.Second)
	// External mode must not have started an EPMD of its own.
	_, err = net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	assert.Error(t, err, "nothing may listen on the EPMD port")
}

func TestStartFailed(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	for _, tc := range []struct {
		what   string
		cookie string
		opts   Options
	}{
		{"empty cookie", "", Options{EPMDPort: port}},
		{"EPMDNone without ListenPort", testCookie, Options{EPMD: EPMDNone, EPMDPort: port}},
		{"listen port out of range", testCookie, Options{EPMDPort: port, ListenPort: 70000}},
		{"negative EPMD port", testCookie, Options{EPMDPort: -1}},
		{"unknown EPMD mode", testCookie, Options{EPMD: EPMDMode(9), EPMDPort: port}},
	} {
		_, err := Start(context.Background(), shortName("sf"), tc.cookie, &tc.opts)
		require.ErrorIs(t, err, ErrStartFailed, tc.what)
		var se *StartError
		require.ErrorAs(t, err, &se)
		assert.NotEmpty(t, se.Detail, tc.what)
	}
}

// TestStartTinyTickTime: a TickTime too small to divide by four must not
// crash the process (time.NewTicker panics on a zero interval).
func TestStartTinyTickTime(t *testing.T) {
	t.Parallel()
	n := startNode(t, shortName("tiny"), testCookie, Options{EPMDPort: freePort(t), TickTime: 3})
	time.Sleep(20 * time.Millisecond) // let the tick loop run
	assert.True(t, n.IsDistributed())
}

const eaccesChildEnv = "DISTRIBUTE_NODE_TEST_EACCES_CHILD"

// eaccesChild runs in a copy of the test binary started as an unprivileged
// user: it starts a node on port 1 and reports what Start said.
func eaccesChild() int {
	_, err := Start(context.Background(), "eacces@localhost", testCookie,
		&Options{EPMD: EPMDNone, ListenAddr: "127.0.0.1", ListenPort: 1})
	var se *StartError
	if !errors.As(err, &se) {
		fmt.Printf("no StartError: %v\n", err)
		return 1
	}
	fmt.Printf("kind=%s eacces=%v err=%v\n", se.Kind, errors.Is(err, syscall.EACCES), err)
	return 0
}

// TestStartSystemError provokes a real EACCES: binding port 1 without
// privileges. As root (CI) the bind would succeed, so a copy of this test
// binary runs as user nobody and reports Start's error.
func TestStartSystemError(t *testing.T) {
	t.Parallel()
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil {
		if v, _ := strconv.Atoi(strings.TrimSpace(string(b))); v <= 1 {
			t.Skip("unprivileged users may bind port 1 here; TestStartErrClassification covers EACCES")
		}
	}
	if os.Geteuid() != 0 {
		_, err := Start(context.Background(), shortName("eacces"), testCookie,
			&Options{EPMD: EPMDNone, ListenAddr: "127.0.0.1", ListenPort: 1})
		require.ErrorIs(t, err, ErrSystem)
		assert.ErrorIs(t, err, syscall.EACCES)
		return
	}
	exe, err := os.Executable()
	require.NoError(t, err)
	// The build directory is private to root: copy the binary where
	// nobody can run it.
	dir, err := os.MkdirTemp("", "node-eacces-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "node.test")
	src, err := os.Open(exe)
	require.NoError(t, err)
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, src)
	require.NoError(t, err)
	require.NoError(t, dst.Close())

	ctx := testCtx(t, 20*time.Second)
	cmd := exec.CommandContext(ctx, bin)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), eaccesChildEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "child: %s", out)
	assert.Contains(t, string(out), "kind=system_error eacces=true", "child: %s", out)
}

// TestStartErrClassification checks the classification of the OS errors
// Start meets, built the way net.Listen and net.Dial report them.
func TestStartErrClassification(t *testing.T) {
	t.Parallel()
	opErr := func(op string, errno syscall.Errno) error {
		return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
	}
	for _, tc := range []struct {
		err  error
		want *StartError
	}{
		{opErr("listen", syscall.EACCES), ErrSystem},
		{opErr("listen", syscall.EPERM), ErrSystem},
		{opErr("listen", syscall.EADDRINUSE), ErrNetwork},
		{opErr("listen", syscall.EADDRNOTAVAIL), ErrNetwork},
		{opErr("dial", syscall.ECONNREFUSED), ErrNetwork},
		{fmt.Errorf("epmd: register: %w", context.DeadlineExceeded), ErrNetwork},
		{&net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}, ErrNetwork},
		{fmt.Errorf("wrapped: %w", epmd.ErrNameTaken), ErrAlreadyStarted},
		{errors.New("something else"), ErrStartFailed},
	} {
		got := startErr(tc.err, "listen")
		assert.ErrorIs(t, got, tc.want, "%v -> %v", tc.err, got)
		assert.ErrorIs(t, got, tc.err, "the cause stays reachable")
		assert.Contains(t, got.Detail, "listen")
	}
}

func TestClassifyStartReason(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		reason string
		want   StartErrorKind
		detail bool // the reason is kept as the detail
	}{
		{"already_started", AlreadyStarted, false},
		{"invalid_node_name", InvalidNodeName, false},
		{"cookie_too_long", CookieTooLong, false},
		{"network unreachable", NetworkError, true},
		{"{listen,eaddrinuse}", NetworkError, true},
		{"connection refused", NetworkError, true},
		{"permission denied", SystemError, true},
		{"eaccess", SystemError, true},
		{"access denied", SystemError, true},
		{"enoent", SystemError, true},
		{"something odd", StartFailed, true},
		{"", StartFailed, false},
	} {
		got := ClassifyStartReason(tc.reason)
		require.NotNil(t, got)
		assert.Equal(t, tc.want, got.Kind, "%q", tc.reason)
		assert.ErrorIs(t, got, &StartError{Kind: tc.want}, "%q", tc.reason)
		if tc.detail {
			assert.Equal(t, tc.reason, got.Detail)
		}
	}
	assert.Contains(t, ClassifyStartReason("invalid_node_name").Detail, "@")
}

func TestClassifyConnectReason(t *testing.T) {
	t.Parallel()
	got := ClassifyConnectReason("timeout while connecting")
	assert.Equal(t, ConnectTimeout, got.Kind)
	assert.ErrorIs(t, got, ErrConnectTimeout)

	for _, reason := range []string{"econnrefused", "nodedown", "", "host unreachable"} {
		got := ClassifyConnectReason(reason)
		assert.Equal(t, ConnectNetworkError, got.Kind, "%q", reason)
		assert.ErrorIs(t, got, ErrConnectNetwork)
		assert.Equal(t, reason, got.Detail)
	}
}

func TestErrorKindsString(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "node: start: already_started: x", (&StartError{Kind: AlreadyStarted, Detail: "x"}).Error())
	assert.Equal(t, "node: connect a@b: node_not_found: y",
		(&ConnectError{Kind: NodeNotFound, Node: "a@b", Detail: "y"}).Error())
	assert.Equal(t, "unknown", StartErrorKind(99).String())
	assert.Equal(t, "unknown", ConnectErrorKind(99).String())
	assert.Equal(t, "embedded", EPMDEmbedded.String())
	assert.Equal(t, "EPMDMode(7)", EPMDMode(7).String())
	// A sentinel never matches an error of another kind.
	assert.NotErrorIs(t, &StartError{Kind: NetworkError}, ErrSystem)
	assert.NotErrorIs(t, &ConnectError{Kind: NodeNotFound}, ErrConnectTimeout)
}
