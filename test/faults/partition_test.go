package faults

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// The helper process: TestPartition runs this test binary again inside a
// network namespace, with these variables set, to run one node there.
const (
	helperEnv       = "FAULTS_HELPER"
	helperNameEnv   = "FAULTS_HELPER_NAME"
	helperCookieEnv = "FAULTS_HELPER_COOKIE"
	helperAddrEnv   = "FAULTS_HELPER_ADDR"
	helperPortEnv   = "FAULTS_HELPER_PORT"
	helperTickEnv   = "FAULTS_HELPER_TICK"
)

// Partition layout: two namespaces joined by one veth pair, nothing else
// (no route out of them).
const (
	partitionPort  = 4370
	partitionTick  = 2 * time.Second
	partitionSetup = 2 * time.Second
	partitionSlack = 1500 * time.Millisecond // tick checks are TickTime/4 apart; -race on 2 cores
	addrA          = "10.213.0.1"
	addrB          = "10.213.0.2"
	vethA          = "faults_va"
	vethB          = "faults_vb"
)

// TestHelperProcess is not a test: it is the node that TestPartition runs in
// a network namespace (ip netns exec NS <this binary>
// -test.run=^TestHelperProcess$). It reads commands on stdin (connect NODE,
// ping NODE, nodes) and answers each with one "R ..." line; it reports node
// events as "E kind peer reason" lines. It stops when stdin closes.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("only runs as TestPartition's helper process")
	}
	os.Exit(runHelper(os.Stdin, os.Stdout))
}

func runHelper(in io.Reader, out io.Writer) int {
	port, _ := strconv.Atoi(os.Getenv(helperPortEnv))
	tick, _ := time.ParseDuration(os.Getenv(helperTickEnv))
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(out, format+"\n", args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	n, err := process.Start(ctx, os.Getenv(helperNameEnv), os.Getenv(helperCookieEnv), &process.Options{Node: node.Options{
		EPMD: node.EPMDNone, ListenAddr: os.Getenv(helperAddrEnv), ListenPort: port,
		TickTime: tick, SetupTimeout: partitionSetup,
		OnEvent: func(e node.Event) {
			reason := ""
			if e.Err != nil {
				reason = strings.ReplaceAll(e.Err.Error(), "\n", " ")
			}
			say("E %s %s %s", e.Kind, e.Peer, reason)
		},
	}})
	cancel()
	if err != nil {
		say("FAIL %v", err)
		return 1
	}
	defer n.Stop()
	say("READY %s", n.Self())
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		ctx, cancel := context.WithTimeout(context.Background(), 2*partitionSetup)
		switch cmd {
		case "connect":
			if err := n.Connect(ctx, arg); err != nil {
				say("R err %v", err)
			} else {
				say("R ok")
			}
		case "ping":
			say("R %t", n.Ping(ctx, arg))
		case "nodes":
			say("R %s", strings.Join(n.Nodes(), ","))
		default:
			say("R err unknown command %q", cmd)
		}
		cancel()
	}
	return 0
}

// helper is the parent's handle on a helper process.
type helper struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stderr  *logBuf
	ready   chan string
	replies chan string
	readErr chan error

	mu     sync.Mutex
	events []string
}

func startHelper(t *testing.T, ns, name, addr, cookie string) *helper {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperNameEnv+"="+name, helperCookieEnv+"="+cookie,
		helperAddrEnv+"="+addr, helperPortEnv+"="+strconv.Itoa(partitionPort), helperTickEnv+"="+partitionTick.String())
	h := &helper{t: t, name: name, cmd: cmd, stderr: &logBuf{}, ready: make(chan string, 1),
		replies: make(chan string, 1), readErr: make(chan error, 1)}
	cmd.Stderr = h.stderr
	var err error
	h.stdin, err = cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start(), "start the helper in %s", ns)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "READY "):
				h.ready <- strings.TrimPrefix(line, "READY ")
			case strings.HasPrefix(line, "R "):
				h.replies <- strings.TrimPrefix(line, "R ")
			case strings.HasPrefix(line, "E "):
				h.mu.Lock()
				h.events = append(h.events, strings.TrimPrefix(line, "E "))
				h.mu.Unlock()
			default:
				h.mu.Lock()
				h.events = append(h.events, "OUT "+line)
				h.mu.Unlock()
			}
		}
		h.readErr <- sc.Err()
	}()
	t.Cleanup(h.stop)
	select {
	case got := <-h.ready:
		require.Equal(t, name, got)
	case err := <-h.readErr:
		h.readErr <- err
		t.Fatalf("helper %s exited before it was ready: %v\nstderr: %s\nevents: %v", name, err, h.stderr, h.eventList())
	case <-time.After(30 * time.Second):
		t.Fatalf("helper %s not ready after 30 s\nstderr: %s", name, h.stderr)
	}
	return h
}

// stop closes the helper's stdin (it stops its node and exits) and waits
// for it; it kills it if it does not exit in time.
func (h *helper) stop() {
	_ = h.stdin.Close()
	select {
	case <-h.readErr:
	case <-time.After(10 * time.Second):
		h.t.Errorf("helper %s did not exit on stdin close; killing it", h.name)
		_ = h.cmd.Process.Kill()
		<-h.readErr
	}
	err := h.cmd.Wait()
	if err != nil {
		h.t.Errorf("helper %s: %v\nstderr: %s", h.name, err, h.stderr)
	}
	if strings.Contains(h.stderr.String(), "DATA RACE") {
		h.t.Errorf("helper %s: data race\n%s", h.name, h.stderr)
	}
}

// do sends a command and returns the reply.
func (h *helper) do(cmd string) string {
	h.t.Helper()
	_, err := io.WriteString(h.stdin, cmd+"\n")
	require.NoError(h.t, err, "helper %s: %s", h.name, cmd)
	select {
	case r := <-h.replies:
		return r
	case err := <-h.readErr:
		h.readErr <- err
		h.t.Fatalf("helper %s exited during %q: %v\nstderr: %s", h.name, cmd, err, h.stderr)
	case <-time.After(3 * partitionSetup):
		h.t.Fatalf("helper %s: no reply to %q", h.name, cmd)
	}
	return ""
}

func (h *helper) nodes() []string {
	r := h.do("nodes")
	if r == "" {
		return nil
	}
	return strings.Split(r, ",")
}

func (h *helper) eventList() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.events...)
}

// requireRoot skips the test when not root, unless CI=true, where it fails.
func requireRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s needs root, and CI=true requires this test to run", why)
	}
	t.Skipf("%s needs root", why)
}

// ip runs the ip command.
func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// netnsPair creates two network namespaces joined by a veth pair with
// addrA and addrB, created inside the namespaces (no interface of the host
// is touched, and neither namespace has a route out). Both are removed on
// cleanup, also when the test fails.
func netnsPair(t *testing.T) (nsA, nsB string) {
	t.Helper()
	requireRoot(t, "the partition test (ip netns)")
	unavailable := func(err error) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("network namespaces are unavailable here, and CI=true requires the partition test: %v", err)
		}
		t.Skipf("network namespaces are unavailable: %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		unavailable(err)
	}
	suffix := strings.TrimPrefix(erltest.UniqueName(""), "n_")
	nsA, nsB = "faults_a_"+suffix, "faults_b_"+suffix
	for _, ns := range []string{nsA, nsB} {
		if err := ip("netns", "add", ns); err != nil {
			unavailable(err)
		}
		t.Cleanup(func() {
			if err := ip("netns", "del", ns); err != nil {
				t.Errorf("removing network namespace %s: %v", ns, err)
			}
		})
	}
	if err := ip("-n", nsA, "link", "add", vethA, "type", "veth", "peer", "name", vethB, "netns", nsB); err != nil {
		unavailable(err)
	}
	for _, c := range [][]string{
		{"-n", nsA, "addr", "add", addrA + "/30", "dev", vethA},
		{"-n", nsB, "addr", "add", addrB + "/30", "dev", vethB},
		{"-n", nsA, "link", "set", "lo", "up"},
		{"-n", nsB, "link", "set", "lo", "up"},
		{"-n", nsA, "link", "set", vethA, "up"},
		{"-n", nsB, "link", "set", vethB, "up"},
	} {
		require.NoError(t, ip(c...))
	}
	for _, ns := range []string{nsA, nsB} {
		requireCarrier(t, ns)
		out, err := exec.Command("ip", "-n", ns, "route", "show", "default").CombinedOutput()
		require.NoError(t, err)
		require.Empty(t, strings.TrimSpace(string(out)), "no default route out of %s", ns)
	}
	return nsA, nsB
}

// requireCarrier waits until the veth end in ns has its carrier (LOWER_UP):
// right after "link set up", the first packets may be dropped.
func requireCarrier(t *testing.T, ns string) {
	t.Helper()
	dev := vethA
	if strings.Contains(ns, "faults_b_") {
		dev = vethB
	}
	var out []byte
	_, ok := waitFor(5*time.Second, func() bool {
		out, _ = exec.Command("ip", "-n", ns, "-o", "link", "show", "dev", dev).CombinedOutput()
		return strings.Contains(string(out), "LOWER_UP")
	})
	require.True(t, ok, "%s in %s has no carrier: %s", dev, ns, out)
}

// TestPartition runs our node in two network namespaces joined by a veth
// pair. Taking one end of the pair down partitions them: both sides see the
// peer gone within the tick time. Bringing it up: Connect works again.
func TestPartition(t *testing.T) {
	nsA, nsB := netnsPair(t)
	cookie := newCookie("partition")
	nameA := erltest.UniqueName("pa") + "@" + addrA
	nameB := erltest.UniqueName("pb") + "@" + addrB
	a := startHelper(t, nsA, nameA, addrA, cookie)
	b := startHelper(t, nsB, nameB, addrB, cookie)
	rw := report.add(t, "network partition between two network namespaces: veth down, then up (times = rounds)", 0, "")

	connect := func(from *helper, to string) (int, time.Duration) {
		t.Helper()
		start := time.Now()
		for try := 1; ; try++ {
			r := from.do("connect " + to)
			if r == "ok" {
				return try, time.Since(start)
			}
			require.Less(t, time.Since(start), 10*time.Second, "connect %s -> %s after the link came up: %s", from.name, to, r)
			time.Sleep(100 * time.Millisecond)
		}
	}
	tries, took := connect(a, nameB)
	t.Logf("connected %s -> %s in %v (%d tries)", nameA, nameB, took, tries)

	rounds := []struct{ ns, dev string }{{nsA, vethA}, {nsB, vethB}}
	var detect []string
	for i, r := range rounds {
		// The acceptor installs its link a moment after the dialler's
		// Connect returns.
		var nodesA, nodesB []string
		_, ok := waitFor(2*time.Second, func() bool {
			nodesA, nodesB = a.nodes(), b.nodes()
			return slices.Equal(nodesA, []string{nameB}) && slices.Equal(nodesB, []string{nameA})
		})
		require.True(t, ok, "round %d: a and b are connected (a: %v, b: %v)", i, nodesA, nodesB)
		require.Equal(t, "true", a.do("ping "+nameB))
		require.Equal(t, "true", b.do("ping "+nameA))

		require.NoError(t, ip("-n", r.ns, "link", "set", r.dev, "down"))
		down := time.Now()
		var goneA, goneB time.Duration
		_, ok = waitFor(partitionTick+partitionSlack+2*time.Second, func() bool {
			if goneA == 0 && len(a.nodes()) == 0 {
				goneA = time.Since(down)
			}
			if goneB == 0 && len(b.nodes()) == 0 {
				goneB = time.Since(down)
			}
			return goneA > 0 && goneB > 0
		})
		require.True(t, ok, "round %d (%s down): both sides see the peer gone (a after %v, b after %v)", i, r.dev, goneA, goneB)
		assert.LessOrEqual(t, goneA, partitionTick+partitionSlack, "round %d: a sees b gone within the tick time", i)
		assert.LessOrEqual(t, goneB, partitionTick+partitionSlack, "round %d: b sees a gone within the tick time", i)
		// While partitioned, a Connect fails within its setup time.
		start := time.Now()
		res := a.do("connect " + nameB)
		failAfter := time.Since(start)
		assert.True(t, strings.HasPrefix(res, "err "), "connect during the partition fails: %s", res)
		assert.LessOrEqual(t, failAfter, partitionSetup+partitionSlack, "connect during the partition is bounded")

		require.NoError(t, ip("-n", r.ns, "link", "set", r.dev, "up"))
		requireCarrier(t, nsA)
		requireCarrier(t, nsB)
		tries, took := connect(a, nameB)
		assert.Equal(t, "true", a.do("ping "+nameB), "round %d: a pings b after the link came back", i)
		assert.Equal(t, "true", b.do("ping "+nameA), "round %d: b pings a after the link came back", i)
		detect = append(detect, fmt.Sprintf("%s down: a saw it after %v, b after %v; reconnected in %v (%d tries)",
			r.dev, goneA.Round(time.Millisecond), goneB.Round(time.Millisecond), took.Round(time.Millisecond), tries))
		t.Log(detect[len(detect)-1])
	}
	for _, h := range []*helper{a, b} {
		evs := h.eventList()
		downs := 0
		for _, e := range evs {
			if strings.HasPrefix(e, "link_down ") {
				downs++
				assert.True(t, strings.Contains(e, "net_tick_timeout") || strings.Contains(e, "write") || strings.Contains(e, "closed"),
					"link-down reason in %s: %s", h.name, e)
			}
		}
		assert.Equal(t, len(rounds), downs, "%s saw one link down per partition: %v", h.name, evs)
	}
	report.set(rw, len(rounds), strings.Join(detect, "; "))
}
