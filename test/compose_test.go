package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/distribute-go/distribute/internal/erltest"
)

// repoRoot is the module root, found from this file's directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	return filepath.Dir(filepath.Dir(file))
}

type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       string            `yaml:"build"`
		Hostname    string            `yaml:"hostname"`
		Environment map[string]string `yaml:"environment"`
		Volumes     []string          `yaml:"volumes"`
		Command     []string          `yaml:"command"`
		Ports       []string          `yaml:"ports"`
	} `yaml:"services"`
}

// TestComposeFileAgreesWithScenario checks that docker-compose.yml runs the
// scenario that TestComposeScenarioNative runs: the same script and roles,
// one cookie, node names whose hosts are the services' hostnames, and the Go
// node's HTTP port published. No Docker engine is needed.
func TestComposeFileAgreesWithScenario(t *testing.T) {
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	require.NoError(t, err)
	var cf composeFile
	require.NoError(t, yaml.Unmarshal(raw, &cf))

	roles := map[string]string{"erlang": "ERL_NODE", "elixir": "EX_NODE", "go": "GO_NODE"}
	require.Len(t, cf.Services, len(roles), "services: erlang, elixir, go")
	var cookie string
	for svc, nameVar := range roles {
		s, ok := cf.Services[svc]
		require.True(t, ok, "service %s missing", svc)
		assert.Equal(t, []string{"sh", "/scenario/cluster.sh", svc}, s.Command, "service %s runs the scenario role %s", svc, svc)
		assert.Contains(t, s.Volumes, "./test/scenario:/scenario:ro", "service %s mounts the scenario", svc)
		c := s.Environment["ERLANG_COOKIE"]
		assert.NotEmpty(t, c, "service %s has a cookie", svc)
		if cookie == "" {
			cookie = c
		}
		assert.Equal(t, cookie, c, "service %s shares the cookie", svc)
		for _, v := range roles {
			assert.NotEmpty(t, s.Environment[v], "service %s knows %s", svc, v)
			assert.Equal(t, cf.Services["go"].Environment[v], s.Environment[v], "service %s agrees on %s", svc, v)
		}
		_, host, _ := strings.Cut(s.Environment[nameVar], "@")
		assert.Equal(t, s.Hostname, host, "%s's host is service %s's hostname", nameVar, svc)
	}
	assert.Equal(t, "erlang:25", cf.Services["erlang"].Image, "the OTP release we test against")
	assert.Equal(t, "elixir:1.14", cf.Services["elixir"].Image, "the Elixir release we test against")
	gosvc := cf.Services["go"]
	assert.Equal(t, ".", gosvc.Build)
	_, port, err := net.SplitHostPort(gosvc.Environment["HTTP_ADDR"])
	require.NoError(t, err)
	assert.Contains(t, gosvc.Ports, port+":"+port, "the Go node's /health is published")

	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	require.NoError(t, err)
	assert.Contains(t, string(df), "./cmd/distribute")

	// The script knows exactly these roles.
	script := filepath.Join(root, "test", "scenario", "cluster.sh")
	out, err := exec.Command("sh", script, "bogus").CombinedOutput()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee, "an unknown role is refused: %s", out)
	assert.Equal(t, 2, ee.ExitCode())
	body, err := os.ReadFile(script)
	require.NoError(t, err)
	for role := range roles {
		assert.Contains(t, string(body), "\n"+role+")\n", "the script has role %s", role)
	}
}

// TestComposeFileValidForCompose has Docker Compose itself validate
// docker-compose.yml (`config -q` needs no engine) with whichever of the v2
// plugin (`docker compose`) and v1 (`docker-compose`) is installed. It skips
// when neither is: the agreement test above runs everywhere.
func TestComposeFileValidForCompose(t *testing.T) {
	root := repoRoot(t)
	var tools [][]string
	if exec.Command("docker", "compose", "version").Run() == nil {
		tools = append(tools, []string{"docker", "compose"})
	}
	if p, err := exec.LookPath("docker-compose"); err == nil {
		tools = append(tools, []string{p})
	}
	if len(tools) == 0 {
		t.Skip("neither `docker compose` nor `docker-compose` is installed")
	}
	for _, tool := range tools {
		args := append(tool[1:], "-f", filepath.Join(root, "docker-compose.yml"), "config", "-q")
		cmd := exec.Command(tool[0], args...)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "%s says the compose file is invalid:\n%s", strings.Join(tool, " "), out)
	}
}

// proc is a process of the scenario, in its own process group.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func startRole(t *testing.T, rt *erltest.Runtime, script, role string, env []string) *proc {
	t.Helper()
	p := &proc{done: make(chan struct{})}
	p.cmd = rt.Command(context.Background(), "sh", script, role) // its own process group; killed below
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p, p
	p.cmd.WaitDelay = 2 * time.Second
	require.NoError(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		if t.Failed() {
			t.Logf("%s role output:\n%s", role, p.output())
		}
	})
	return p
}

// TestComposeScenarioNative runs the compose scenario's three roles on this
// machine, with the same script, on a private EPMD port: the Go node (whose
// embedded EPMD the BEAM nodes register with) connects to both BEAM nodes
// and reports them healthy; both BEAM nodes get pong from the Go node. The
// Erlang and Elixir roles run in each runtime (the script is copied where the
// runtime can read it); the Go role runs on the host.
func TestComposeScenarioNative(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	bin := filepath.Join(t.TempDir(), "distribute")
	build := exec.Command("go", "build", "-o", bin, "./cmd/distribute")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	scriptText, err := os.ReadFile(filepath.Join(root, "test", "scenario", "cluster.sh"))
	require.NoError(t, err)
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		composeScenarioNative(t, rt, bin, filepath.Join(root, "test", "scenario", "cluster.sh"),
			rt.WriteFile(t, "cluster.sh", scriptText, 0o755))
	})
}

func composeScenarioNative(t *testing.T, rt *erltest.Runtime, bin, hostScript, rtScript string) {
	rt.RequireProgram(t, "elixir")
	epmdPort := erltest.FreePort(t)
	httpPort := erltest.FreePort(t)
	erlNode := erltest.UniqueName("sc_erl") + "@localhost"
	exNode := erltest.UniqueName("sc_ex") + "@localhost"
	goNode := erltest.UniqueName("sc_go") + "@localhost"
	env := []string{
		"ERL_EPMD_PORT=" + strconv.Itoa(epmdPort),
		"ERLANG_COOKIE=" + erltest.UniqueName("cookie"),
		"ERL_NODE=" + erlNode, "EX_NODE=" + exNode, "GO_NODE=" + goNode,
		"HTTP_ADDR=127.0.0.1:" + strconv.Itoa(httpPort),
		"DISTRIBUTE=" + bin,
		"PING_EVERY=1",
	}
	goRole := startRole(t, erltest.Host(), hostScript, "go", env)
	require.Eventually(t, func() bool { return strings.Contains(goRole.output(), "listening on port") },
		10*time.Second, 50*time.Millisecond, "the Go node starts")
	erlRole := startRole(t, rt, rtScript, "erlang", env)
	exRole := startRole(t, rt, rtScript, "elixir", env)

	url := fmt.Sprintf("http://127.0.0.1:%d/health", httpPort)
	var last string
	healthy := func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err.Error()
			return false
		}
		defer resp.Body.Close()
		var h struct {
			Reachable []string `json:"reachable_nodes"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%d %v", resp.StatusCode, h.Reachable)
		return resp.StatusCode == http.StatusOK && slices.Contains(h.Reachable, erlNode) && slices.Contains(h.Reachable, exNode)
	}
	require.Eventually(t, healthy, 40*time.Second, 250*time.Millisecond, "the Go node's /health sees both BEAM nodes reachable (last: %s)", func() string { return last }())

	pong := func(p *proc, self string) func() bool {
		return func() bool {
			return strings.Contains(p.output(), "scenario "+self+": "+goNode+" pong")
		}
	}
	assert.Eventually(t, pong(erlRole, erlNode), 20*time.Second, 100*time.Millisecond, "erlang pings the Go node pong")
	assert.Eventually(t, pong(exRole, exNode), 20*time.Second, 100*time.Millisecond, "elixir pings the Go node pong")
	assert.NotContains(t, goRole.output(), strings.TrimPrefix(env[1], "ERLANG_COOKIE="), "the Go node never prints the cookie")
}
