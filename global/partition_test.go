package global_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/global"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
	"github.com/distribute-go/distribute/rpc"
)

// Partition layout: two network namespaces joined by one veth pair; nsA holds a BEAM node and the
// Go node (two addresses), nsB a BEAM node. Every node listens on partPort (EPMD-less, like erl's
// -erl_epmd_port).
const (
	partPort  = 4370
	partTick  = 2 * time.Second
	partAddrA = "10.213.9.1" // BEAM node pa
	partAddrG = "10.213.9.3" // the Go node
	partAddrB = "10.213.9.2" // BEAM node pb
	partVethA = "glob_va"
	partVethB = "glob_vb"
	helperEnv = "GLOBAL_HELPER"
)

// TestHelperGlobal is not a test: it is the Go node TestPartitionHeal runs inside a network
// namespace. It reads commands on stdin and answers each with one "R ..." line.
func TestHelperGlobal(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("only runs as TestPartitionHeal's helper process")
	}
	os.Exit(runGlobalHelper(os.Getenv(helperEnv), os.Stdin, os.Stdout))
}

func runGlobalHelper(name string, in io.Reader, out io.Writer) int {
	reg := rpc.NewRegistry()
	var o process.Options
	o.Node = node.Options{EPMD: node.EPMDNone, ListenAddr: partAddrG, ListenPort: partPort, TickTime: partTick,
		SetupTimeout: 2 * time.Second, Flags: handshake.FlagPublished}
	reg.Configure(&o)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	n, err := process.Start(ctx, name, testCookie, &o)
	cancel()
	if err != nil {
		fmt.Fprintf(out, "FAIL %v\n", err)
		return 1
	}
	defer n.Stop()
	g, err := global.Start(n, &global.Options{RPC: reg})
	if err != nil {
		fmt.Fprintf(out, "FAIL %v\n", err)
		return 1
	}
	defer g.Stop()
	fmt.Fprintf(out, "READY %s\n", n.Self())
	procs := map[string]*process.Process{}
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		cmd, arg, _ := strings.Cut(sc.Text(), " ")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		switch cmd {
		case "connect":
			fmt.Fprintf(out, "R %v\n", n.Connect(ctx, arg) == nil)
		case "register":
			p := n.Spawn()
			procs[arg] = p
			ok, err := g.Register(ctx, etf.Atom(arg), p.Pid())
			fmt.Fprintf(out, "R %v %v\n", ok, err)
		case "whereis":
			pid, ok := g.Whereis(etf.Atom(arg))
			if ok {
				fmt.Fprintf(out, "R %s\n", pid.Node)
			} else {
				fmt.Fprintf(out, "R undefined\n")
			}
		case "alive":
			p := procs[arg]
			fmt.Fprintf(out, "R %v\n", p != nil && p.Reason() == nil)
		case "nodes":
			fmt.Fprintf(out, "R %s\n", strings.Join(n.Nodes(), ","))
		case "sync":
			fmt.Fprintf(out, "R %v\n", g.Sync(ctx))
		default:
			fmt.Fprintf(out, "R unknown\n")
		}
		cancel()
	}
	return 0
}

// child is a program in a namespace driven by lines: a command in, one "R ..." line out.
type child struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	mu    sync.Mutex
	log   strings.Builder
	done  chan struct{}
}

func startChild(t *testing.T, name string, env []string, prog string, args ...string) *child {
	t.Helper()
	c := &child{t: t, name: name, lines: make(chan string, 16), done: make(chan struct{})}
	c.cmd = exec.Command(prog, args...)
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var err error
	c.stdin, err = c.cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := c.cmd.StdoutPipe()
	require.NoError(t, err)
	c.cmd.Stderr = c.cmd.Stdout
	require.NoError(t, c.cmd.Start())
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			c.mu.Lock()
			c.log.WriteString(line + "\n")
			c.mu.Unlock()
			if strings.HasPrefix(line, "R ") || strings.HasPrefix(line, "READY ") || strings.HasPrefix(line, "FAIL ") {
				c.lines <- line
			}
		}
	}()
	t.Cleanup(func() {
		_ = c.stdin.Close()
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
		}
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		<-c.done
		_ = c.cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", c.name, c.output())
		}
	})
	select {
	case l := <-c.lines:
		require.True(t, strings.HasPrefix(l, "READY "), "%s: %s\n%s", name, l, c.output())
	case <-c.done:
		t.Fatalf("%s exited before it was ready:\n%s", name, c.output())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s not ready:\n%s", name, c.output())
	}
	return c
}

func (c *child) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.log.String()
}

func (c *child) do(cmd string) string {
	c.t.Helper()
	_, err := io.WriteString(c.stdin, cmd+"\n")
	require.NoError(c.t, err)
	select {
	case l := <-c.lines:
		return strings.TrimPrefix(l, "R ")
	case <-time.After(wait):
		c.t.Fatalf("%s: no answer to %s\n%s", c.name, cmd, c.output())
		return ""
	}
}

// erlLoop evaluates one Erlang expression per line (ending with a dot) and prints "R ~0tp".
const erlLoop = `io:format("READY ~s~n", [node()]), L = fun L() -> case io:get_line("") of eof -> halt(); Line -> ` +
	`R = try {ok, Ts, _} = erl_scan:string(Line), {ok, Es} = erl_parse:parse_exprs(Ts), {value, V, _} = erl_eval:exprs(Es, []), V ` +
	`catch C:E -> {C, E} end, io:format("R ~0tp~n", [R]), L() end end, L().`

func startErlIn(t *testing.T, rt *erltest.Runtime, ns, name, addr string) *child {
	parts := strings.Split(addr, ".")
	prog := []string{"erl"}
	if !rt.IsHost() {
		prog = []string{"chroot", rt.Root, "env", "HOME=/root", "PATH=/usr/local/bin:/usr/bin:/bin", "erl"}
	}
	args := append([]string{"netns", "exec", ns}, prog...)
	return startChild(t, name, nil, "ip", append(args, "-name", name, "-setcookie", testCookie,
		"-noshell", "-start_epmd", "false", "-erl_epmd_port", fmt.Sprint(partPort),
		"-kernel", "net_ticktime", fmt.Sprint(int(partTick/time.Second)),
		"-kernel", "inet_dist_use_interface", "{"+strings.Join(parts, ",")+"}",
		"-eval", erlLoop)...)
}

func (c *child) waitFor(cond string) {
	c.t.Helper()
	expr := fmt.Sprintf(`WF = fun WF(0) -> timeout; WF(I) -> case (%s) of true -> true; _ -> timer:sleep(50), WF(I-1) end end, WF(%d).`, cond, wait/(50*time.Millisecond))
	require.Equal(c.t, "true", c.do(expr), "%s: waiting for %s", c.name, cond)
}

func netIP(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	require.NoError(t, err, "ip %s: %s", strings.Join(args, " "), out)
}

// TestPartitionHeal: a real network partition (the veth link between two namespaces goes down)
// splits {pa, Go} from {pb}; ticks tell each side the other is gone; the same name is registered
// on both sides; the link comes back and pa pings pb. As in a BEAM-only cluster, the name ends
// with exactly one owner, the same on all three nodes (the Go process: the Go node's name sorts
// below pb's), and pb's process is killed.
func TestPartitionHeal(t *testing.T) {
	erltest.ForEachRuntime(t, partitionHeal)
}

func partitionHeal(t *testing.T, rt *erltest.Runtime) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("the partition test needs root (ip netns), and CI=true requires it")
		}
		t.Skip("the partition test needs root (ip netns)")
	}
	suffix := strings.TrimPrefix(erltest.UniqueName(""), "n_")
	nsA, nsB := "glob_a_"+suffix, "glob_b_"+suffix
	for _, ns := range []string{nsA, nsB} {
		netIP(t, "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	netIP(t, "-n", nsA, "link", "add", partVethA, "type", "veth", "peer", "name", partVethB, "netns", nsB)
	netIP(t, "-n", nsA, "addr", "add", partAddrA+"/29", "dev", partVethA)
	netIP(t, "-n", nsA, "addr", "add", partAddrG+"/29", "dev", partVethA)
	netIP(t, "-n", nsB, "addr", "add", partAddrB+"/29", "dev", partVethB)
	for _, c := range [][]string{{"-n", nsA, "link", "set", "lo", "up"}, {"-n", nsB, "link", "set", "lo", "up"},
		{"-n", nsA, "link", "set", partVethA, "up"}, {"-n", nsB, "link", "set", partVethB, "up"}} {
		netIP(t, c...)
	}

	pa := startErlIn(t, rt, nsA, erltest.UniqueName("pa")+"@"+partAddrA, partAddrA)
	pb := startErlIn(t, rt, nsB, erltest.UniqueName("pb")+"@"+partAddrB, partAddrB)
	goName := erltest.UniqueName("go") + "@" + partAddrG
	gon := startChild(t, goName, []string{helperEnv + "=" + goName}, "ip", "netns", "exec", nsA, os.Args[0],
		"-test.run=^TestHelperGlobal$", "-test.count=1")
	pName := strings.TrimPrefix(strings.Split(pa.output(), "\n")[0], "READY ")
	bName := strings.TrimPrefix(strings.Split(pb.output(), "\n")[0], "READY ")
	require.Less(t, goName, bName)

	// One cluster first.
	require.Eventually(t, func() bool { return pa.do(fmt.Sprintf("net_adm:ping(%s).", atomIn(bName))) == "pong" }, wait, 200*time.Millisecond)
	require.Equal(t, "true", gon.do("connect "+pName))
	pa.waitFor(fmt.Sprintf("length(nodes()) =:= 2 andalso lists:member(%s, nodes())", atomIn(goName)))
	pb.waitFor(fmt.Sprintf("length(nodes()) =:= 2 andalso lists:member(%s, nodes())", atomIn(goName)))
	for _, c := range []*child{pa, pb} {
		require.Equal(t, "ok", c.do("global:sync()."))
	}
	require.Equal(t, "<nil>", gon.do("sync"))

	// The partition: ticks take the links across it down on both sides.
	netIP(t, "-n", nsB, "link", "set", partVethB, "down")
	pb.waitFor("nodes() =:= []")
	pa.waitFor(fmt.Sprintf("nodes() =:= [%s]", atomIn(goName)))
	require.Eventually(t, func() bool { return gon.do("nodes") == pName }, wait, 100*time.Millisecond)

	// The same name on both sides.
	require.Equal(t, "true <nil>", gon.do("register dup"))
	assert.Equal(t, atomIn(goName), pa.do("node(global:whereis_name(dup))."))
	require.Equal(t, "ok", pb.do(`begin P = spawn(fun() -> receive stop -> ok end end), register(keep_dup, P), yes = global:register_name(dup, P), ok end.`))

	// The partition heals.
	netIP(t, "-n", nsB, "link", "set", partVethB, "up")
	require.Eventually(t, func() bool { return pa.do(fmt.Sprintf("net_adm:ping(%s).", atomIn(bName))) == "pong" }, wait, 200*time.Millisecond)
	pb.waitFor(fmt.Sprintf("length(nodes()) =:= 2 andalso lists:member(%s, nodes())", atomIn(goName)))
	for _, c := range []*child{pa, pb} {
		require.Equal(t, "ok", c.do("global:sync()."))
	}
	require.Equal(t, "<nil>", gon.do("sync"))
	pb.waitFor("whereis(keep_dup) =:= undefined")
	for _, c := range []*child{pa, pb} {
		c.waitFor(fmt.Sprintf("global:whereis_name(dup) =/= undefined andalso node(global:whereis_name(dup)) =:= %s", atomIn(goName)))
	}
	assert.Equal(t, goName, gon.do("whereis dup"))
	assert.Equal(t, "true", gon.do("alive dup"))
}
