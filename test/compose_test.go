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
	"go.yaml.in/yaml/v3"

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
		Networks    []string          `yaml:"networks"`
	} `yaml:"services"`
	Networks map[string]struct {
		Internal bool `yaml:"internal"`
	} `yaml:"networks"`
}

// TestComposeFileAgreesWithScenario checks that docker-compose.yml runs the
// scenario that TestComposeScenarioNative runs: the same script and roles,
// one cookie, node names whose hosts are the services' hostnames, and the Go
// node's HTTP port published; and that the nodes share an internal network.
// No Docker engine is needed.
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

	// The nodes talk over an internal network; only the Go service, whose
	// port Docker could not publish from an internal network alone, is also
	// on the network that carries the published port.
	assert.True(t, cf.Networks["cluster"].Internal, "the cluster network is internal")
	assert.Equal(t, []string{"cluster"}, cf.Services["erlang"].Networks)
	assert.Equal(t, []string{"cluster"}, cf.Services["elixir"].Networks)
	assert.Equal(t, []string{"cluster", "published"}, gosvc.Networks)

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
		if os.Getenv("CI") == "true" {
			t.Fatal("neither `docker compose` nor `docker-compose` is installed, and CI=true requires one (.ci/run installs docker-compose)")
		}
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
		select {
		case <-p.done:
			// Reaped: its pid (the group id) may be another process group's by now.
		default:
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
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

// composeProject is the Compose project name TestComposeUpInContainers uses;
// its networks are named after it.
const composeProject = "distribute_compose_test"

// requireContainerTools returns the Compose command to use (the v2 plugin,
// `docker compose`, when installed, else Debian's `docker-compose` 1.29) after
// checking for everything TestComposeUpInContainers needs: root, docker,
// dockerd, debootstrap, a Compose, and a host that does not forward IPv4. A
// missing one skips the test, or fails it when CI=true.
func requireContainerTools(t *testing.T) []string {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root (dockerd and debootstrap run as root)")
	}
	for _, p := range []string{"docker", "dockerd", "debootstrap"} {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	// The daemon writes no iptables rules, and Docker 20.10 gives a
	// container on an internal network a default route to the bridge all
	// the same: the host not forwarding is what keeps packets on it.
	if fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward"); err != nil || strings.TrimSpace(string(fwd)) != "0" {
		missing = append(missing, "a host that does not forward IPv4 (net.ipv4.ip_forward=0), so no container packet is routed off it")
	}
	var compose []string
	if exec.Command("docker", "compose", "version").Run() == nil {
		compose = []string{"docker", "compose"}
	} else if p, err := exec.LookPath("docker-compose"); err == nil {
		compose = []string{p}
	} else {
		missing = append(missing, "docker compose or docker-compose")
	}
	if len(missing) > 0 {
		msg := fmt.Sprintf("the compose demo in containers needs %s (Debian packages: docker.io docker-compose debootstrap)",
			strings.Join(missing, ", "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + "; required when CI=true")
		}
		t.Skip(msg)
	}
	return compose
}

// dockerd is a private Docker daemon: its own data root, exec root, socket
// and pid file under dir, vfs storage, and no hand on the host's network
// (no iptables rules, no masquerading, IP forwarding left as it is, no
// default bridge, external DNS only on loopback).
type dockerd struct {
	dir  string
	host string // DOCKER_HOST value
	env  []string
	cmd  *exec.Cmd
	done chan struct{}
}

func startDockerd(t *testing.T) *dockerd {
	t.Helper()
	dir := t.TempDir()
	d := &dockerd{dir: dir, host: "unix://" + filepath.Join(dir, "docker.sock"), done: make(chan struct{})}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "daemon.json"), []byte("{}\n"), 0o600))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "client"), 0o700))
	d.env = append(os.Environ(), "DOCKER_HOST="+d.host, "DOCKER_CONFIG="+filepath.Join(dir, "client"))
	fwd, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	require.NoError(t, err)
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	require.NoError(t, err)
	d.cmd = exec.Command("dockerd",
		"--config-file", filepath.Join(dir, "daemon.json"),
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "x"),
		"-H", d.host,
		"--pidfile", filepath.Join(dir, "docker.pid"),
		"--storage-driver=vfs",
		"--iptables=false", "--ip-masq=false", "--ip-forward=false",
		"--bridge=none", "--dns=127.0.0.1", "--log-level=warn",
	)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, d.cmd.Start())
	go func() { _ = d.cmd.Wait(); _ = logf.Close(); close(d.done) }()
	// The shims put their sockets under /run/containerd/s, made when first
	// needed; stop removes it again if it was not there before.
	_, err = os.Stat("/run/containerd")
	hadRunDir := err == nil
	t.Cleanup(func() {
		d.stop(t)
		now, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
		assert.NoError(t, err)
		assert.Equal(t, string(fwd), string(now), "the daemon leaves the host's IP forwarding as it was")
		if !hadRunDir {
			_ = os.Remove("/run/containerd/s") // only if empty
			_ = os.Remove("/run/containerd")
		}
	})

	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := d.docker("version", "--format", "{{.Server.Version}}")
		if err == nil {
			t.Logf("private dockerd %s on %s", strings.TrimSpace(out), d.host)
			return d
		}
		select {
		case <-d.done:
			t.Fatalf("dockerd exited at start:\n%s", d.logTail())
		case <-time.After(200 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "dockerd answers within 60 s: %s\n%s", out, d.logTail())
	}
}

// docker runs the docker CLI against the private daemon.
func (d *dockerd) docker(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = d.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (d *dockerd) logTail() string {
	b, _ := os.ReadFile(filepath.Join(d.dir, "dockerd.log"))
	if len(b) > 6000 {
		b = b[len(b)-6000:]
	}
	return string(b)
}

// family lists the processes the daemon started: its descendants (the
// containerd it runs, docker-proxy, the shims once reparented) and any whose
// command line names the daemon's directory; keyed by pid, valued by start
// time so that a reused pid is never killed.
func (d *dockerd) family() map[int]string {
	type pinfo struct{ ppid, start string }
	procs := map[int]pinfo{}
	named := map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name in parentheses: state ppid ... starttime is field 22.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 20 {
			continue
		}
		procs[pid] = pinfo{ppid: f[1], start: f[19]}
		if cl, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline")); err == nil && bytes.Contains(cl, []byte(d.dir)) {
			named[pid] = true
		}
	}
	fam := map[int]string{}
	self := d.cmd.Process.Pid
	for pid, p := range procs {
		for cur, hops := pid, 0; hops < 64; hops++ {
			if cur == self || named[cur] {
				fam[pid] = p.start
				break
			}
			next, err := strconv.Atoi(procs[cur].ppid)
			if err != nil || next <= 1 {
				break
			}
			cur = next
		}
	}
	return fam
}

func alive(pid int, start string) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+1:]))
	return len(f) >= 20 && f[19] == start && f[0] != "Z"
}

// stop removes every container and network, stops the daemon (SIGTERM, then
// SIGKILL), kills whatever it left running, deletes the bridges it made and
// unmounts what it mounted under its directory; what it had to clean up by
// force fails the test.
func (d *dockerd) stop(t *testing.T) {
	if t.Failed() {
		t.Logf("dockerd log (tail):\n%s", d.logTail())
	}
	var bridges []string
	if out, err := d.docker("ps", "-aq"); err == nil && strings.TrimSpace(out) != "" {
		if out, err := d.docker(append([]string{"rm", "-f"}, strings.Fields(out)...)...); err != nil {
			t.Errorf("docker rm -f: %v: %s", err, out)
		}
	}
	if out, err := d.docker("network", "ls", "-q", "--no-trunc", "--filter", "driver=bridge"); err == nil {
		for _, id := range strings.Fields(out) {
			bridges = append(bridges, "br-"+id[:12])
		}
		_, _ = d.docker("network", "prune", "-f")
	}
	fam := d.family()
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(30 * time.Second):
		t.Errorf("dockerd did not stop within 30 s of SIGTERM; killing it")
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.done
	}
	// containerd stops when dockerd does; give it a moment, then force.
	deadline := time.Now().Add(10 * time.Second)
	for pid, start := range fam {
		for alive(pid, start) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid, start) {
			cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			t.Errorf("process %d (%s) outlived dockerd; killing it", pid, bytes.ReplaceAll(cl, []byte{0}, []byte{' '}))
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for _, br := range bridges {
		if _, err := os.Stat("/sys/class/net/" + br); err == nil {
			t.Errorf("bridge %s outlived dockerd; deleting it", br)
			_ = exec.Command("ip", "link", "del", br).Run()
		}
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	var left []string
	for _, line := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], d.dir) {
			left = append(left, f[4])
		}
	}
	for i := len(left) - 1; i >= 0; i-- {
		t.Errorf("mount %s outlived dockerd; unmounting it", left[i])
		_ = syscall.Unmount(left[i], syscall.MNT_DETACH)
	}
}

// lockComposeDemo makes runs of TestComposeUpInContainers on one machine (say,
// two checkouts' test suites) take turns, since each publishes port 8080: it
// holds a lock file in the image cache until the test's cleanup ends.
func lockComposeDemo(t *testing.T) {
	t.Helper()
	dir := os.Getenv("DISTRIBUTE_COMPOSE_CACHE")
	if dir == "" {
		home, err := os.UserHomeDir()
		require.NoError(t, err)
		dir = filepath.Join(home, ".cache", "distribute", "compose")
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	f, err := os.OpenFile(filepath.Join(dir, ".run.lock"), os.O_CREATE|os.O_RDWR, 0o644)
	require.NoError(t, err)
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Logf("another run of the compose demo holds %s; waiting for it", f.Name())
		require.NoError(t, syscall.Flock(int(f.Fd()), syscall.LOCK_EX))
	}
	t.Cleanup(func() { _ = f.Close() }) // closing releases the lock
}

// TestComposeUpInContainers runs the project's own docker-compose.yml in real
// containers on a private dockerd, with test/compose/override.yml, which only
// swaps the images: no registry is reached, so erlang:25 and elixir:1.14 are a
// Debian bookworm root filesystem with erlang-base and elixir (OTP 25.2.3,
// Elixir 1.14.0), and the Go service's image is a bookworm minbase root
// filesystem plus the distribute binary built here, in place of the
// Dockerfile's golang build (test/compose/images.sh makes them; the root
// filesystems are cached under ~/.cache/distribute/compose). It checks what
// the README promises: both BEAM nodes print pong from the Go node, and
// localhost:8080/health answers 200 with both BEAM nodes reachable; and that
// the cluster's network is internal, the BEAM containers are on nothing
// else, and the port is published on 127.0.0.1 only.
func TestComposeUpInContainers(t *testing.T) {
	compose := requireContainerTools(t)
	t.Parallel()
	lockComposeDemo(t)
	root := repoRoot(t)
	began := time.Now()
	phase := began
	lap := func(what string) {
		t.Logf("%s: %.1f s", what, time.Since(phase).Seconds())
		phase = time.Now()
	}
	images := filepath.Join(root, "test", "compose", "images.sh")
	out, err := exec.Command("bash", images, "rootfs").CombinedOutput()
	require.NoError(t, err, "root filesystems: %s", out)
	lap("root filesystems (cached after the first run)")

	bin := filepath.Join(t.TempDir(), "distribute")
	build := exec.Command("go", "build", "-trimpath", "-o", bin, "./cmd/distribute")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err = build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	lap("go build")

	d := startDockerd(t)
	lap("dockerd start")
	imp := exec.Command("bash", images, "import", bin)
	imp.Env = d.env
	out, err = imp.CombinedOutput()
	require.NoError(t, err, "images: %s", out)
	lap("image import")

	ln, err := net.Listen("tcp", "127.0.0.1:8080")
	require.NoError(t, err, "docker-compose.yml publishes the Go node's /health on port 8080, which must be free")
	require.NoError(t, ln.Close())

	files := []string{"-p", composeProject, "-f", filepath.Join(root, "docker-compose.yml"),
		"-f", filepath.Join(root, "test", "compose", "override.yml")}
	composeCmd := func(ctx context.Context, args ...string) *exec.Cmd {
		all := append(append(append([]string{}, compose[1:]...), files...), args...)
		cmd := exec.CommandContext(ctx, compose[0], all...)
		cmd.Dir = root
		cmd.Env = d.env
		return cmd
	}
	up := &proc{done: make(chan struct{})}
	up.cmd = composeCmd(context.Background(), "up", "--no-build", "--no-color")
	up.cmd.Stdout, up.cmd.Stderr = up, up
	up.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	up.cmd.WaitDelay = 5 * time.Second
	require.NoError(t, up.cmd.Start())
	go func() { _ = up.cmd.Wait(); close(up.done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if out, err := composeCmd(ctx, "down", "-t", "2", "--remove-orphans").CombinedOutput(); err != nil {
			t.Errorf("compose down: %v: %s", err, out)
		}
		select {
		case <-up.done:
		case <-time.After(30 * time.Second):
			t.Errorf("compose up did not end after compose down; killing it")
			_ = syscall.Kill(-up.cmd.Process.Pid, syscall.SIGKILL)
			<-up.done
		}
		if t.Failed() {
			t.Logf("compose up output:\n%s", up.output())
		}
	})

	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 3 * time.Second}
	var last string
	healthy := func() bool {
		resp, err := client.Get("http://127.0.0.1:8080/health")
		if err != nil {
			last = err.Error()
			return false
		}
		defer resp.Body.Close()
		var h struct {
			Self      string   `json:"self_node"`
			Reachable []string `json:"reachable_nodes"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%d %s %v", resp.StatusCode, h.Self, h.Reachable)
		return resp.StatusCode == http.StatusOK && h.Self == "go@go" &&
			slices.Contains(h.Reachable, "erl@erlang") && slices.Contains(h.Reachable, "ex@elixir")
	}
	select {
	case <-up.done:
		t.Fatalf("compose up ended early:\n%s", up.output())
	default:
	}
	ok := assert.Eventually(t, healthy, 90*time.Second, 250*time.Millisecond)
	require.True(t, ok, "localhost:8080/health answers 200 with erl@erlang and ex@elixir reachable (last: %s)", last)
	lap("compose up until /health is 200 with both BEAM nodes")
	for _, line := range []string{"scenario erl@erlang: go@go pong", "scenario ex@elixir: go@go pong"} {
		assert.Eventually(t, func() bool { return strings.Contains(up.output(), line) },
			30*time.Second, 100*time.Millisecond, "compose up prints %q", line)
	}
	lap("pongs")

	// Where every packet can go.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	id := func(svc string) string {
		out, err := composeCmd(ctx, "ps", "-q", svc).Output()
		require.NoError(t, err, "compose ps %s", svc)
		require.NotEmpty(t, strings.TrimSpace(string(out)), "service %s has a container", svc)
		return strings.TrimSpace(string(out))
	}
	internal, err := d.docker("network", "inspect", "-f", "{{.Internal}}", composeProject+"_cluster")
	require.NoError(t, err, internal)
	assert.Equal(t, "true", strings.TrimSpace(internal), "the cluster network is internal")
	for _, svc := range []string{"erlang", "elixir"} {
		nets, err := d.docker("inspect", "-f", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}", id(svc))
		require.NoError(t, err, nets)
		assert.Equal(t, composeProject+"_cluster", strings.TrimSpace(nets), "service %s is on the internal network only", svc)
	}
	goID := id("go")
	ports, err := d.docker("port", goID, "8080/tcp")
	require.NoError(t, err, ports)
	assert.Equal(t, "127.0.0.1:8080", strings.TrimSpace(ports), "the Go node's port is published on loopback only")

	// The stand-ins are the releases the images' tags name.
	rel, err := d.docker("exec", id("erlang"), "erl", "-noshell", "-eval", `io:format("~s~n", [erlang:system_info(otp_release)]), halt().`)
	require.NoError(t, err, rel)
	assert.Equal(t, "25", strings.TrimSpace(rel), "erlang:25 runs OTP 25")
	ver, err := d.docker("exec", id("elixir"), "elixir", "-e", "IO.puts(System.version())")
	require.NoError(t, err, ver)
	assert.True(t, strings.HasPrefix(strings.TrimSpace(ver), "1.14."), "elixir:1.14 runs Elixir 1.14: %s", ver)

	logs, err := composeCmd(ctx, "logs", "--no-color", "go").CombinedOutput()
	require.NoError(t, err, "compose logs go")
	assert.Contains(t, string(logs), "connected", "the Go node logs its links")
	assert.NotContains(t, string(logs), "distribute-demo-cookie", "the Go node never prints the cookie")
	lap("checks")
	t.Logf("compose demo in containers: %.1f s in all", time.Since(began).Seconds())
}
