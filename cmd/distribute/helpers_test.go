package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/internal/nodetest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// testCookie is distinctive so that a leak into any output is caught.
const testCookie = "Zq9xCookieMustNeverLeak42"

// isolate gives the test (and the binary it runs) an empty HOME and no
// cookie or EPMD port from the environment.
func isolate(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("ERLANG_COOKIE", "")
	t.Setenv("RELEASE_COOKIE", "")
	t.Setenv("ERL_EPMD_PORT", "")
	return home
}

// freePort is erltest.FreePort (outside the ephemeral range, never handed out twice).
func freePort(t *testing.T) int { return erltest.FreePort(t) }

// uniqueAlive is erltest.UniqueName.
func uniqueAlive(prefix string) string { return erltest.UniqueName(prefix) }

// startPeer starts an in-process node named prefix_...@127.0.0.1 with the
// embedded EPMD on epmdPort (nodetest.Start).
func startPeer(t *testing.T, prefix string, epmdPort int, cookie string) *process.Node {
	t.Helper()
	return nodetest.Start(t, uniqueAlive(prefix)+"@127.0.0.1", cookie, node.Options{EPMDPort: epmdPort})
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// assertNoCookie checks that the test cookie appears in no output.
func assertNoCookie(t *testing.T, outputs ...string) {
	t.Helper()
	for _, o := range outputs {
		assert.NotContains(t, o, testCookie, "the cookie leaked into the output")
	}
}

// binPath is the distribute binary built by TestMain for this test run.
var binPath string

// buildBinary builds the command into dir (with -race when the tests run
// with it) and returns its path.
func buildBinary(dir string) (string, error) {
	bin := filepath.Join(dir, "distribute")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, ".")...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// runCmd runs the binary with args and returns its output and exit code.
func runCmd(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb syncBuffer
	cmd := exec.CommandContext(ctx, binPath, args...)
	cmd.Env = binEnv()
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code = exitCode(t, err)
	assertNoCookie(t, out.String(), errb.String())
	return out.String(), errb.String(), code
}

// binEnv is the binary's environment: the test's, and no 1 s pause of the
// race detector at exit (a race found still exits with code 66).
func binEnv() []string {
	return append(os.Environ(), "GORACE=atexit_sleep_ms=0")
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee) && ee.Exited():
		return ee.ExitCode()
	}
	t.Errorf("the command did not exit normally: %v", err)
	return -1
}

// background runs a long-running command (run, epmd, or a client command
// a test interrupts) until the test ends or stop is called; stop returns
// its exit code.
type background struct {
	stdout, stderr syncBuffer
	cmd            *exec.Cmd
	done           chan int
}

func startBackground(t *testing.T, args ...string) *background {
	t.Helper()
	b := &background{done: make(chan int, 1)}
	b.cmd = exec.Command(binPath, args...)
	b.cmd.Env = binEnv()
	b.cmd.Stdout, b.cmd.Stderr = &b.stdout, &b.stderr
	require.NoError(t, b.cmd.Start())
	go func() { b.done <- exitCode(t, b.cmd.Wait()) }()
	t.Cleanup(func() {
		b.stop(t)
		assertNoCookie(t, b.stdout.String(), b.stderr.String())
	})
	return b
}

// stop sends SIGTERM and returns the exit code (-1 if it hangs: then it is
// killed).
func (b *background) stop(t *testing.T) int {
	return b.signal(t, syscall.SIGTERM)
}

// signal sends sig and waits for the exit code.
func (b *background) signal(t *testing.T, sig syscall.Signal) int {
	select {
	case code := <-b.done:
		b.done <- code // for a later stop
		return code
	default:
	}
	_ = b.cmd.Process.Signal(sig)
	select {
	case code := <-b.done:
		b.done <- code
		return code
	case <-time.After(15 * time.Second):
		_ = b.cmd.Process.Kill()
		code := <-b.done
		b.done <- code
		t.Errorf("command did not stop\nstdout:\n%s\nstderr:\n%s", b.stdout.String(), b.stderr.String())
		return -1
	}
}

// waitLine waits for a stdout line starting with prefix and returns it.
func (b *background) waitLine(t *testing.T, prefix string) string {
	t.Helper()
	var line string
	require.Eventually(t, func() bool {
		for l := range strings.Lines(b.stdout.String()) {
			if strings.HasPrefix(l, prefix) {
				line = strings.TrimSpace(l)
				return true
			}
		}
		select {
		case code := <-b.done:
			b.done <- code
			t.Logf("command exited with %d\nstdout:\n%s\nstderr:\n%s", code, b.stdout.String(), b.stderr.String())
		default:
		}
		return false
	}, 20*time.Second, 10*time.Millisecond, "no line %q on stdout:\n%s\nstderr:\n%s", prefix, b.stdout.String(), b.stderr.String())
	return line
}

// httpGet fetches url with a client that keeps no connections.
func httpDo(t *testing.T, method, url string) (int, string, http.Header) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequest(method, url, nil)
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body bytes.Buffer
	_, err = body.ReadFrom(resp.Body)
	require.NoError(t, err)
	assertNoCookie(t, body.String())
	return resp.StatusCode, body.String(), resp.Header
}

func itoa(i int) string { return strconv.Itoa(i) }
