package erltest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// Environment variables that choose the runtimes.
const (
	// CacheEnv names the directory holding the chroots scripts/otp.sh builds (`make otp`); the default is
	// $HOME/.cache/distribute/otp.
	CacheEnv = "DISTRIBUTE_OTP_CACHE"
	// RuntimesEnv, when set, limits ForEachRuntime and Runtimes to the runtimes it names, separated by
	// commas or spaces, case-insensitively: by name ("OTP-27", "OTP-25,OTP-29"), by Debian suite
	// ("trixie", "sid") or "host". The others' subtests are skipped, also under CI=true.
	RuntimesEnv = "DISTRIBUTE_RUNTIMES"
)

// chrootSuites are the Debian suites scripts/otp.sh builds, oldest first: trixie (OTP 27) and sid (the
// newest OTP).
var chrootSuites = []string{"trixie", "sid"}

// chrootPath is the PATH inside a chroot.
const chrootPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Runtime is one Erlang/OTP installation tests can start programs in: the host's own, or a Debian
// chroot built by `make otp` that shares the host's loopback (so its nodes are real peers on
// 127.0.0.1). The zero value is not usable; get runtimes from Host, Runtimes or ForEachRuntime.
type Runtime struct {
	Name    string // subtest name: "OTP-25", "OTP-27", "OTP-29" (from the real major release)
	Release string // OTP major release, "27"
	Version string // full OTP version from releases/REL/OTP_VERSION, e.g. "27.3.4.1"
	ERTS    string // erts version, e.g. "15.2.7"
	Elixir  string // Elixir version, "" when not installed
	Root    string // chroot directory; "" for the host

	suite   string // Debian suite of a chroot
	erlRoot string // the OTP installation directory as seen by the runtime's programs
	err     error  // why the runtime cannot be used (not built, no erl, not root)
}

// String returns the name and the versions, for messages.
func (rt *Runtime) String() string {
	if rt.err != nil {
		return rt.Name + " (unavailable)"
	}
	s := fmt.Sprintf("%s (OTP %s, erts %s", rt.Name, rt.Version, rt.ERTS)
	if rt.Elixir != "" {
		s += ", Elixir " + rt.Elixir
	}
	if rt.Root != "" {
		s += ", chroot " + rt.Root
	}
	return s + ")"
}

// Err returns why the runtime cannot be used, or nil.
func (rt *Runtime) Err() error { return rt.err }

// host returns rt, or the host runtime for nil.
func (rt *Runtime) orHost() *Runtime {
	if rt == nil {
		return Host()
	}
	return rt
}

var hostRuntime = sync.OnceValue(loadHost)

// Host returns the host's OTP (the erl in PATH). When erl is missing its Err says so and its Name is
// "OTP-host".
func Host() *Runtime { return hostRuntime() }

func loadHost() *Runtime {
	rt := &Runtime{Name: "OTP-host"}
	erl, err := erlPath()
	if err != nil {
		rt.err = fmt.Errorf("erl not installed: %w", err)
		return rt
	}
	real, err := filepath.EvalSymlinks(erl)
	if err != nil {
		rt.err = err
		return rt
	}
	rt.erlRoot = filepath.Dir(filepath.Dir(real)) // <root>/bin/erl
	if err := rt.readVersions(rt.erlRoot); err != nil {
		rt.err = err
		return rt
	}
	if ex, err := elixirPath(); err == nil {
		if real, err := filepath.EvalSymlinks(ex); err == nil { // <elixir>/bin/elixir
			rt.Elixir = elixirVersion(filepath.Join(filepath.Dir(filepath.Dir(real)), "lib", "elixir", "ebin", "elixir.app"))
		}
	}
	return rt
}

// OTPCache returns the directory the chroots are built in: $DISTRIBUTE_OTP_CACHE, or
// $HOME/.cache/distribute/otp.
//
// Both are read when the test binary starts, so a test that gives itself another HOME (to
// isolate a cookie file, say) still finds the runtimes.
func OTPCache() string { return otpCache }

var otpCache = func() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".cache", "distribute", "otp")
}()

var chrootRuntimes = sync.OnceValue(func() []*Runtime {
	var list []*Runtime
	for _, s := range chrootSuites {
		list = append(list, loadChroot(filepath.Join(OTPCache(), s), s))
	}
	return list
})

func loadChroot(root, suite string) *Runtime {
	rt := &Runtime{Name: "OTP-" + suite, Root: root, suite: suite, erlRoot: "/usr/lib/erlang"}
	if _, err := os.Stat(filepath.Join(root, ".distribute-ready")); err != nil {
		rt.err = fmt.Errorf("the %s chroot is not built in %s (`make otp` builds it)", suite, root)
		return rt
	}
	if os.Geteuid() != 0 {
		rt.err = fmt.Errorf("the %s chroot in %s needs root to run chroot", suite, root)
		return rt
	}
	if err := rt.readVersions(filepath.Join(root, rt.erlRoot)); err != nil {
		rt.err = fmt.Errorf("the %s chroot in %s: %w (rebuild it: rm -rf it, then `make otp`)", suite, root, err)
		return rt
	}
	rt.Elixir = elixirVersion(filepath.Join(root, "usr/lib/elixir/lib/elixir/ebin/elixir.app"))
	return rt
}

// readVersions fills Release, Version, ERTS and Name from an OTP installation directory:
// releases/start_erl.data holds "ERTS REL", releases/REL/OTP_VERSION the full version.
func (rt *Runtime) readVersions(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "releases", "start_erl.data"))
	if err != nil {
		return fmt.Errorf("reading the OTP release: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return fmt.Errorf("%s/releases/start_erl.data: want \"ERTS REL\", have %q", dir, b)
	}
	rt.ERTS, rt.Release = f[0], f[1]
	v, err := os.ReadFile(filepath.Join(dir, "releases", rt.Release, "OTP_VERSION"))
	if err != nil {
		return fmt.Errorf("reading the OTP version: %w", err)
	}
	rt.Version = strings.TrimSpace(string(v))
	rt.Name = "OTP-" + rt.Release
	return nil
}

var vsnRe = regexp.MustCompile(`\{vsn,\s*"([^"]+)"\}`)

// elixirVersion reads the version out of elixir.app; "" when there is none.
func elixirVersion(app string) string {
	b, err := os.ReadFile(app)
	if err != nil {
		return ""
	}
	if m := vsnRe.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

// allRuntimes is the host, then the chroots, usable or not.
func allRuntimes() []*Runtime { return append([]*Runtime{Host()}, chrootRuntimes()...) }

// selected reports whether DISTRIBUTE_RUNTIMES (when set) names rt.
func (rt *Runtime) selected() bool {
	sel := os.Getenv(RuntimesEnv)
	if strings.TrimSpace(sel) == "" {
		return true
	}
	names := strings.FieldsFunc(sel, func(r rune) bool { return r == ',' || r == ' ' })
	return slices.ContainsFunc(names, func(n string) bool {
		return strings.EqualFold(n, rt.Name) || strings.EqualFold(n, rt.suite) ||
			(rt.Root == "" && strings.EqualFold(n, "host"))
	})
}

// Require skips the test when rt cannot be used, with one line that says how to build it; under CI=true
// it fails the test instead.
func (rt *Runtime) Require(t testing.TB) {
	t.Helper()
	if rt.err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required when CI=true: %v", rt.Name, rt.err)
	}
	t.Skipf("%s: %v", rt.Name, rt.err)
}

// Runtimes returns the usable runtimes chosen by DISTRIBUTE_RUNTIMES (all by default): the host first,
// then OTP 27 (trixie), then the newest OTP (sid). A missing one is logged and left out; under CI=true it
// fails the test.
func Runtimes(t testing.TB) []*Runtime {
	t.Helper()
	var list []*Runtime
	for _, rt := range allRuntimes() {
		if !rt.selected() {
			continue
		}
		if rt.err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s is required when CI=true: %v", rt.Name, rt.err)
			}
			t.Logf("%s skipped: %v", rt.Name, rt.err)
			continue
		}
		list = append(list, rt)
	}
	return list
}

// ForEachRuntime runs f as a subtest per runtime, named by the runtime (t.Run(rt.Name, ...)): the host's
// OTP, OTP 27 and the newest OTP. The subtests run in parallel with each other (t.Parallel); f must not
// use t.Setenv. A runtime that is not built skips its subtest with one line saying `make otp` builds it;
// under CI=true the subtest fails instead. DISTRIBUTE_RUNTIMES limits the runtimes (see RuntimesEnv).
func ForEachRuntime(t *testing.T, f func(t *testing.T, rt *Runtime)) {
	t.Helper()
	forEach(t, true, f)
}

// ForEachRuntimeSerial is ForEachRuntime with the subtests one after the other, for tests that cannot
// run in parallel (t.Setenv, exclusive resources).
func ForEachRuntimeSerial(t *testing.T, f func(t *testing.T, rt *Runtime)) {
	t.Helper()
	forEach(t, false, f)
}

func forEach(t *testing.T, parallel bool, f func(t *testing.T, rt *Runtime)) {
	t.Helper()
	for _, rt := range allRuntimes() {
		t.Run(rt.Name, func(t *testing.T) {
			if !rt.selected() {
				t.Skipf("%s not chosen by %s=%s", rt.Name, RuntimesEnv, os.Getenv(RuntimesEnv))
			}
			rt.Require(t)
			if parallel {
				t.Parallel()
			}
			f(t, rt)
		})
	}
}

// IsHost reports whether rt is the host's OTP (nil counts as the host).
func (rt *Runtime) IsHost() bool { return rt == nil || rt.Root == "" }

// hostProgram finds prog (erl, elixir, epmd, erl_call, escript, ...) for the host runtime.
func hostProgram(prog string) (string, error) {
	switch prog {
	case "erl":
		return erlPath()
	case "elixir":
		return elixirPath()
	case "epmd":
		return epmdPath()
	}
	if p, err := exec.LookPath(prog); err == nil {
		return p, nil
	}
	if r := Host(); r.erlRoot != "" {
		for _, pat := range []string{filepath.Join(r.erlRoot, "bin", prog), filepath.Join(r.erlRoot, "lib", "*", "bin", prog)} {
			if m, _ := filepath.Glob(pat); len(m) > 0 {
				return m[len(m)-1], nil
			}
		}
	}
	return "", fmt.Errorf("%s not found in PATH nor under the host's OTP", prog)
}

// HasProgram reports whether prog exists in the runtime.
func (rt *Runtime) HasProgram(prog string) bool {
	rt = rt.orHost()
	if rt.err != nil {
		return false
	}
	if rt.Root == "" {
		_, err := hostProgram(prog)
		return err == nil
	}
	for _, dir := range []string{"/usr/bin", "/bin", "/usr/local/bin"} {
		if _, err := os.Stat(filepath.Join(rt.Root, dir, prog)); err == nil {
			return true
		}
	}
	return false
}

// RequireProgram skips the test when the runtime or prog (erl, elixir, epmd, erl_call, escript) in it is
// missing; under CI=true it fails the test instead.
func (rt *Runtime) RequireProgram(t testing.TB, prog string) {
	t.Helper()
	rt.Require(t)
	if !rt.HasProgram(prog) {
		missing(t, prog+" in "+rt.Name, errors.New("not installed"))
	}
}

// Command returns a command that runs prog (erl, elixir, epmd, erl_call, escript) with args inside the
// runtime: on the host, the program found in PATH or under the OTP installation; in a chroot,
// `chroot ROOT env HOME=/root PATH=... prog args...`. Variables in cmd.Env reach prog (chroot and env
// pass the environment on; HOME is /root inside a chroot); when cmd.Env is nil the program gets this
// process's environment. The command runs in its own process group, and cancelling ctx kills the whole
// group, so the kill reaches the program inside the chroot.
func (rt *Runtime) Command(ctx context.Context, prog string, args ...string) *exec.Cmd {
	return rt.orHost().command(ctx, nil, prog, args)
}

// command is Command with env given explicitly: appended to this process's environment on the host, put
// on the env command line inside a chroot.
func (rt *Runtime) command(ctx context.Context, env []string, prog string, args []string) *exec.Cmd {
	var name string
	var argv []string
	if rt.Root == "" {
		p, err := hostProgram(prog)
		if err != nil {
			p = prog // exec reports the error on Start
		}
		name, argv = p, args
	} else {
		name = "chroot"
		if p, err := exec.LookPath("chroot"); err == nil {
			name = p
		}
		argv = append([]string{rt.Root, "/usr/bin/env", "HOME=/root", chrootPath}, env...)
		argv = append(argv, prog)
		argv = append(argv, args...)
		env = nil
	}
	cmd := exec.CommandContext(ctx, name, argv...)
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// TempDir returns a new directory, removed when the test ends, at a path that names the same directory
// on the host and inside the runtime: on the host it is t.TempDir(); for a chroot it is /tmp/erltest-...
// inside the chroot, and the same path on the host is a symbolic link to it. Files a test hands to a node
// of the runtime (cookie files, code, TLS certificates) go there.
func (rt *Runtime) TempDir(t testing.TB) string {
	t.Helper()
	rt = rt.orHost()
	if rt.Root == "" {
		return t.TempDir()
	}
	inside := filepath.Join("/tmp", UniqueName("erltest"))
	real := filepath.Join(rt.Root, inside)
	if err := os.MkdirAll(real, 0o700); err != nil {
		t.Fatalf("erltest: making %s: %v", real, err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(real) })
	if err := os.Symlink(real, inside); err != nil {
		t.Fatalf("erltest: linking %s to %s: %v", inside, real, err)
	}
	t.Cleanup(func() { _ = os.Remove(inside) })
	return inside
}

// WriteFile writes data to a file named name in a fresh TempDir and returns its path, valid on the host
// and inside the runtime.
func (rt *Runtime) WriteFile(t testing.TB, name string, data []byte, perm os.FileMode) string {
	t.Helper()
	p := filepath.Join(rt.TempDir(t), name)
	if err := os.WriteFile(p, data, perm); err != nil {
		t.Fatalf("erltest: writing %s: %v", p, err)
	}
	return p
}

// StartEPMD runs the runtime's real epmd on port (0 = a free port), like the package's StartEPMD.
func (rt *Runtime) StartEPMD(t testing.TB, port int) *Process {
	t.Helper()
	return startEPMD(t, rt.orHost(), port)
}

// StartErl starts a node in rt: StartErl with opts.Runtime set to rt.
func (rt *Runtime) StartErl(t testing.TB, opts ErlOptions) *Process {
	t.Helper()
	opts.Runtime = rt
	return StartErl(t, opts)
}
