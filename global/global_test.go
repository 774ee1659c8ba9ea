package global_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/global"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// TestCluster: a visible Go node joins a cluster of three BEAM nodes by connecting to one; it
// ends up connected to all, in each one's nodes(); global:sync() returns on all within 2 s;
// names registered on BEAM reach Go and names registered from Go reach BEAM, and go when the Go
// process ends; the seed's health loop on a BEAM node pings the Go node.
func TestCluster(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		port, bs := startCluster(t, rt, 3)
		// A BEAM name before the Go node arrives: an echo process on the second node.
		eval(t, bs[1], `P = spawn(fun F() -> receive {From, M} -> From ! {echo, node(), M}, F() end end), yes = global:register_name(beam_echo, P), ok`)
		gn := startGo(t, port)
		self := gn.n.Self()

		start := time.Now()
		require.NoError(t, gn.n.Connect(ctxFor(t, wait), bs[0].Node()))
		for _, b := range bs {
			// A BEAM node that knows the Go node (nodeup) and is in sync with it.
			out := eval(t, b, fmt.Sprintf(`WF = fun WF(0) -> timeout; WF(I) -> case lists:member(%s, nodes()) of true -> global:sync(); false -> timer:sleep(10), WF(I-1) end end, WF(500)`, atomIn(self)))
			require.Equal(t, "ok", out, "global:sync() on %s", b.Node())
		}
		took := time.Since(start)
		t.Logf("%s: connected and global:sync() ok on 3 BEAM nodes %v after the connection", rt.Name, took)
		assert.Less(t, took, 2*time.Second, "global:sync() on every BEAM node within 2 s of the connection")
		for _, b := range bs {
			assert.Contains(t, gn.n.Nodes(), b.Node())
		}
		require.NoError(t, gn.g.Sync(ctxFor(t, wait)))

		// BEAM name, seen and messaged from Go.
		pid, ok := gn.g.Whereis(etf.Atom("beam_echo"))
		require.True(t, ok, "beam_echo known to Go")
		assert.Equal(t, etf.Atom(bs[1].Node()), pid.Node)
		me := gn.n.Spawn()
		defer me.Exit(etf.Atom("normal"))
		_, err := gn.g.SendFrom(me, etf.Atom("beam_echo"), etf.Tuple{me.Pid(), etf.Atom("hello")})
		require.NoError(t, err)
		m := recv(t, me, nil)
		assert.Equal(t, etf.Tuple{etf.Atom("echo"), etf.Atom(bs[1].Node()), etf.Atom("hello")}, m)

		// The same through another node's global, as a node without global of its own does it.
		_, err = global.SendOn(ctxFor(t, wait), gn.n, bs[2].Node(), etf.Atom("beam_echo"), etf.Tuple{me.Pid(), etf.Atom("again")})
		require.NoError(t, err)
		assert.Equal(t, etf.Tuple{etf.Atom("echo"), etf.Atom(bs[1].Node()), etf.Atom("again")}, recv(t, me, nil))
		_, err = global.SendOn(ctxFor(t, wait), gn.n, bs[2].Node(), etf.Atom("nobody"), etf.Atom("x"))
		assert.ErrorIs(t, err, global.ErrNotRegistered)
		_, err = gn.g.Send(etf.Atom("nobody"), etf.Atom("x"))
		assert.ErrorIs(t, err, global.ErrNotRegistered)

		// Go name, seen and messaged from BEAM.
		ok, err = gn.g.Register(ctxFor(t, wait), etf.Atom("go_inbox"), me.Pid())
		require.NoError(t, err)
		require.True(t, ok)
		for _, b := range bs {
			assert.Equal(t, self, eval(t, b, `node(global:whereis_name(go_inbox))`))
		}
		eval(t, bs[2], `global:send(go_inbox, {hi, node()})`)
		assert.Equal(t, etf.Tuple{etf.Atom("hi"), etf.Atom(bs[2].Node())}, recv(t, me, nil))
		// A second registration of the name is refused everywhere.
		assert.Equal(t, "no", eval(t, bs[0], `global:register_name(go_inbox, self())`))
		ok, err = gn.g.Register(ctxFor(t, wait), etf.Atom("beam_echo"), gn.n.Spawn().Pid())
		require.NoError(t, err)
		assert.False(t, ok)

		// Unregistered from Go, and a Go-registered name unregistered from BEAM.
		tmp := gn.n.Spawn()
		defer tmp.Exit(etf.Atom("normal"))
		ok, err = gn.g.Register(ctxFor(t, wait), etf.Atom("go_tmp"), tmp.Pid())
		require.NoError(t, err)
		require.True(t, ok)
		assert.Equal(t, self, eval(t, bs[1], `node(global:whereis_name(go_tmp))`))
		require.NoError(t, gn.g.Unregister(ctxFor(t, wait), etf.Atom("go_tmp")))
		for _, b := range bs {
			assert.Equal(t, "undefined", eval(t, b, `global:whereis_name(go_tmp)`))
		}
		ok, err = gn.g.Register(ctxFor(t, wait), etf.Atom("go_tmp2"), tmp.Pid())
		require.NoError(t, err)
		require.True(t, ok)
		eval(t, bs[2], `global:unregister_name(go_tmp2)`)
		_, ok = gn.g.Whereis(etf.Atom("go_tmp2"))
		assert.False(t, ok, "unregistered from BEAM")

		// The name goes when the Go process ends.
		me.Exit(etf.Atom("normal"))
		for _, b := range bs {
			waitUntil(t, b, `global:whereis_name(go_inbox) =:= undefined`, wait)
		}
		assert.Eventually(t, func() bool { _, ok := gn.g.Whereis(etf.Atom("go_inbox")); return !ok }, wait, 10*time.Millisecond)

		// The seed's health loop on a BEAM node includes the Go node.
		out := eval(t, bs[0], `[{N, net_adm:ping(N)} || N <- nodes()]`)
		assert.Contains(t, out, "{"+self+",pong}")
		assert.Equal(t, "3", strconv.Itoa(strings.Count(out, "pong")))
		noGlobalComplaints(t, bs)
	})
}

// TestConcurrentRegister: the same 20 names registered at once from three BEAM nodes and the Go
// node: each name gets exactly one owner, and every node agrees on it.
func TestConcurrentRegister(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		port, bs := startCluster(t, rt, 3)
		gn := startGo(t, port)
		require.NoError(t, gn.n.Connect(ctxFor(t, wait), bs[0].Node()))
		for _, b := range bs {
			waitUntil(t, b, fmt.Sprintf("lists:member(%s, nodes())", atomIn(gn.n.Self())), wait)
			require.Equal(t, "ok", eval(t, b, "global:sync()"))
		}
		const k = 20
		results := make([][]string, len(bs)+1) // per node, per name: yes or no
		done := make(chan struct{})
		for i, b := range bs {
			go func() {
				defer func() { done <- struct{}{} }()
				out, err := b.Eval(fmt.Sprintf(`Self = self(), Ps = [spawn(fun() -> R = global:register_name({reg, I}, self()), Self ! {self(), R}, receive stop -> ok end end) || I <- lists:seq(1,%d)], [receive {P, R} -> R end || P <- Ps]`, k), wait)
				if err == nil {
					results[i] = strings.Split(strings.Trim(out, "[]"), ",")
				}
			}()
		}
		goRes := make([]string, k)
		for i := range k {
			go func() {
				defer func() { done <- struct{}{} }()
				p := gn.n.Spawn()
				ok, err := gn.g.Register(ctxFor(t, wait), etf.Tuple{etf.Atom("reg"), int64(i + 1)}, p.Pid())
				goRes[i] = "no"
				if err == nil && ok {
					goRes[i] = "yes"
				}
			}()
		}
		for range len(bs) + k {
			<-done
		}
		results[len(bs)] = goRes
		owners := make([]string, k)
		for i := range k {
			yes := 0
			for j, r := range results {
				require.Len(t, r, k, "results of node %d", j)
				if r[i] == "yes" {
					yes++
					if j < len(bs) {
						owners[i] = bs[j].Node()
					} else {
						owners[i] = gn.n.Self()
					}
				}
			}
			assert.Equal(t, 1, yes, "owners of {reg, %d}", i+1)
		}
		want := "[" + strings.Join(owners, ",") + "]"
		for _, b := range bs {
			require.Equal(t, "ok", eval(t, b, "global:sync()"))
			assert.Equal(t, want, eval(t, b, fmt.Sprintf(`[node(global:whereis_name({reg, I})) || I <- lists:seq(1,%d)]`, k)), "on %s", b.Node())
		}
		for i := range k {
			pid, ok := gn.g.Whereis(etf.Tuple{etf.Atom("reg"), int64(i + 1)})
			if assert.True(t, ok) {
				assert.Equal(t, owners[i], string(pid.Node))
			}
		}
		noGlobalComplaints(t, bs)
	})
}

// TestTransKill: global:trans on BEAM takes its lock on the Go node too (set_lock answered);
// kill -9 of the BEAM node holding a lock during its global:trans releases the lock everywhere
// (the Go node's monitor of the holder fires), and the rest of the cluster, the Go node
// included, stays in sync and keeps registering names.
func TestTransKill(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		port, bs := startCluster(t, rt, 3)
		gn := startGo(t, port)
		require.NoError(t, gn.n.Connect(ctxFor(t, wait), bs[0].Node()))
		for _, b := range bs {
			waitUntil(t, b, fmt.Sprintf("lists:member(%s, nodes())", atomIn(gn.n.Self())), wait)
			require.Equal(t, "ok", eval(t, b, "global:sync()"))
		}
		// A plain transaction over all nodes, the Go node included.
		assert.Equal(t, "done", eval(t, bs[1], `global:trans({res1, self()}, fun() -> done end)`))
		// The victim holds res2 on every node inside a transaction that never ends.
		eval(t, bs[2], `Self = self(), spawn(fun() -> global:trans({res2, self()}, fun() -> Self ! locked, receive never -> ok end end) end), receive locked -> ok after 10000 -> timeout end`)
		assert.True(t, gn.g.LockSet(etf.Atom("res2")), "the Go node holds res2 for the victim")
		// Another node cannot take res2 while the victim lives.
		assert.Equal(t, "aborted", eval(t, bs[1], `global:trans({res2, self()}, fun() -> got_it end, [node() | nodes()], 0)`))
		bs[2].Kill()
		waitUntil(t, bs[1], fmt.Sprintf("not lists:member(%s, nodes())", atomIn(bs[2].Node())), wait)
		// The lock is free on the Go node and the others once the holder's node is gone.
		assert.Eventually(t, func() bool { return !gn.g.LockSet(etf.Atom("res2")) }, wait, 10*time.Millisecond)
		assert.Equal(t, "got_it", eval(t, bs[1], `global:trans({res2, self()}, fun() -> got_it end, [node() | nodes()], 40)`))
		for _, b := range bs[:2] {
			assert.Equal(t, "ok", eval(t, b, "global:sync()"))
		}
		require.NoError(t, gn.g.Sync(ctxFor(t, wait)))
		p := gn.n.Spawn()
		defer p.Exit(etf.Atom("normal"))
		ok, err := gn.g.Register(ctxFor(t, wait), etf.Atom("after_kill"), p.Pid())
		require.NoError(t, err)
		assert.True(t, ok)
		for _, b := range bs[:2] {
			assert.Equal(t, gn.n.Self(), eval(t, b, `node(global:whereis_name(after_kill))`))
		}
		noGlobalComplaints(t, bs[:2])
	})
}

// TestNameClash: two partitions, {a, Go} and {z}, with the same two names registered on both
// sides (clash_go owned by a Go process on one side, clash_beam by a process of a), join. As in a
// BEAM-only cluster, random_exit_name keeps the process on the node whose name sorts lower and
// kills the other; every node ends with one owner per name. When the Go node joins z itself, Go
// resolves both clashes (clash_beam through an rpc of a's opaque resolver fun to a); when a joins
// z, a asks the Go node to resolve clash_go (global:resolve_it/4 served by Go).
func TestNameClash(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		for _, goJoins := range []bool{true, false} {
			t.Run(fmt.Sprintf("goJoins=%v", goJoins), func(t *testing.T) {
				t.Parallel()
				nameClash(t, rt, goJoins)
			})
		}
	})
}

func nameClash(t *testing.T, rt *erltest.Runtime, goJoins bool) {
	epmd := rt.StartEPMD(t, 0)
	opts := func(prefix string) erltest.ErlOptions {
		return erltest.ErlOptions{Name: erltest.UniqueName(prefix), EPMDPort: epmd.Port(), Cookie: testCookie, Control: true}
	}
	a := rt.StartErl(t, opts("a"))
	z := rt.StartErl(t, opts("z"))
	gn := startGo(t, epmd.Port())
	require.Less(t, a.Node(), gn.n.Self())
	require.Less(t, gn.n.Self(), z.Node())
	require.NoError(t, gn.n.Connect(ctxFor(t, wait), a.Node()))
	waitUntil(t, a, fmt.Sprintf("lists:member(%s, nodes())", atomIn(gn.n.Self())), wait)
	require.Equal(t, "ok", eval(t, a, "global:sync()"))

	me := gn.n.Spawn()
	defer me.Exit(etf.Atom("normal"))
	t.Cleanup(func() {
		if t.Failed() {
			for _, b := range []*erltest.Process{a, z} {
				out, _ := b.Eval(`[{N, global:whereis_name(N)} || N <- [clash_go, clash_beam]]`, 5*time.Second)
				t.Logf("%s: %s\n%s", b.Node(), out, b.Output())
			}
			p1, ok1 := gn.g.Whereis(etf.Atom("clash_go"))
			p2, ok2 := gn.g.Whereis(etf.Atom("clash_beam"))
			t.Logf("go: clash_go %v %v clash_beam %v %v me %v; log:\n%s", p1, ok1, p2, ok2, me.Pid(), gn.log.String())
		}
	})
	keep := `fun() -> receive stop -> ok end end`
	eval(t, a, `P = spawn(`+keep+`), register(ap_beam, P), yes = global:register_name(clash_beam, P), ok`)
	ok, err := gn.g.Register(ctxFor(t, wait), etf.Atom("clash_go"), me.Pid())
	require.NoError(t, err)
	require.True(t, ok)
	eval(t, z, `P1 = spawn(`+keep+`), register(zp_go, P1), yes = global:register_name(clash_go, P1), `+
		`P2 = spawn(`+keep+`), register(zp_beam, P2), yes = global:register_name(clash_beam, P2), ok`)

	if goJoins {
		require.NoError(t, gn.n.Connect(ctxFor(t, wait), z.Node()))
	} else {
		require.Equal(t, "pong", eval(t, a, fmt.Sprintf("net_adm:ping(%s)", atomIn(z.Node()))))
	}
	for _, b := range []*erltest.Process{a, z} {
		waitUntil(t, b, fmt.Sprintf("lists:sort(nodes()) =:= lists:sort(%s -- [node()])",
			"["+strings.Join([]string{atomIn(a.Node()), atomIn(z.Node()), atomIn(gn.n.Self())}, ",")+"]"), wait)
		require.Equal(t, "ok", eval(t, b, "global:sync()"))
	}
	require.NoError(t, gn.g.Sync(ctxFor(t, wait)))
	waitUntil(t, z, `whereis(zp_go) =:= undefined andalso whereis(zp_beam) =:= undefined`, wait)
	for _, b := range []*erltest.Process{a, z} {
		waitUntil(t, b, fmt.Sprintf(`global:whereis_name(clash_go) =/= undefined andalso node(global:whereis_name(clash_go)) =:= %s`, atomIn(gn.n.Self())), wait)
		waitUntil(t, b, fmt.Sprintf(`global:whereis_name(clash_beam) =/= undefined andalso node(global:whereis_name(clash_beam)) =:= %s`, atomIn(a.Node())), wait)
	}
	pid, ok := gn.g.Whereis(etf.Atom("clash_go"))
	assert.True(t, ok)
	assert.Equal(t, me.Pid(), pid)
	pid, ok = gn.g.Whereis(etf.Atom("clash_beam"))
	assert.True(t, ok)
	assert.Equal(t, etf.Atom(a.Node()), pid.Node)
	assert.Nil(t, me.Reason(), "the Go owner lives")
	assert.Equal(t, "true", eval(t, a, `is_pid(whereis(ap_beam))`))
	// The Go node resolved clash_go itself (joining z) or was asked to (a joining z).
	assert.Contains(t, gn.log.String(), "name conflict, terminating")
	noGlobalComplaints(t, []*erltest.Process{a, z})
}

// TestOverlappingPartitions: a BEAM member drops its connection to the Go node
// (erlang:disconnect_node): with OTP 25+'s prevent_overlapping_partitions the lost_connection
// and remove_connection messages (the Go node sends and obeys them) leave fully connected
// partitions, as in a BEAM-only cluster; global:sync() returns everywhere; the Go node rejoins.
func TestOverlappingPartitions(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		port, bs := startCluster(t, rt, 3)
		gn := startGo(t, port)
		self := gn.n.Self()
		require.NoError(t, gn.n.Connect(ctxFor(t, wait), bs[0].Node()))
		for _, b := range bs {
			waitUntil(t, b, fmt.Sprintf("lists:member(%s, nodes())", atomIn(self)), wait)
			require.Equal(t, "ok", eval(t, b, "global:sync()"))
		}
		require.Equal(t, "true", eval(t, bs[1], fmt.Sprintf("erlang:disconnect_node(%s)", atomIn(self))))

		views := func() map[string][]string {
			v := map[string][]string{self: gn.n.Nodes()}
			for _, b := range bs {
				out := eval(t, b, `lists:sort(nodes())`)
				v[b.Node()] = nil
				if s := strings.Trim(out, "[]"); s != "" {
					v[b.Node()] = strings.Split(s, ",")
				}
			}
			return v
		}
		// Fully connected partitions: each node's peers see the same partition it sees.
		cliques := func(v map[string][]string) bool {
			for x, peers := range v {
				px := append([]string{x}, peers...)
				slices.Sort(px)
				for _, y := range peers {
					py := append([]string{y}, v[y]...)
					slices.Sort(py)
					if !slices.Equal(px, py) {
						return false
					}
				}
			}
			return !slices.Contains(v[self], bs[1].Node()) && !slices.Contains(v[bs[1].Node()], self)
		}
		var v map[string][]string
		deadline := time.Now().Add(wait)
		for v = views(); !cliques(v) && time.Now().Before(deadline); v = views() {
			time.Sleep(50 * time.Millisecond)
		}
		require.True(t, cliques(v), "partitions not fully connected: %v", v)
		t.Logf("%s: partitions after the drop: %v", rt.Name, v)
		assert.NotContains(t, v[self], bs[0].Node(), "the Go node was removed from the others' partition too")
		for _, b := range bs {
			assert.Equal(t, "ok", eval(t, b, "global:sync()"))
		}
		require.NoError(t, gn.g.Sync(ctxFor(t, wait)))
		assert.Contains(t, gn.log.String(), "prevent overlapping partitions")

		// The Go node rejoins the partition of the first node.
		require.NoError(t, gn.n.Connect(ctxFor(t, wait), bs[0].Node()))
		for _, peer := range v[bs[0].Node()] {
			require.Eventually(t, func() bool { return slices.Contains(gn.n.Nodes(), peer) }, wait, 10*time.Millisecond)
		}
		waitUntil(t, bs[0], fmt.Sprintf("lists:member(%s, nodes())", atomIn(self)), wait)
		assert.Equal(t, "ok", eval(t, bs[0], "global:sync()"))
	})
}

// TestSplitBrain: a cluster of three BEAM nodes and the Go node splits ({b0, b1, Go} | {b2}:
// b2 drops all its links), the same names are registered on both sides (dup from Go and from b2,
// dup2 from b0 and from b2), and the partition heals (b2 pings b0). As in a BEAM-only cluster,
// each name ends with exactly one owner, the same on every node: the pid of the node whose name
// sorts lower survives (b2's for dup, so the Go process is killed; b0's for dup2).
func TestSplitBrain(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		port, bs := startCluster(t, rt, 2)
		// The node that splits off drops its own links; without overlapping-partition
		// protection on it, that costs no link on the other side (with it, its lost_connection
		// reports would make the others drop each other too, as they do when one BEAM node of a
		// BEAM-only cluster calls disconnect_node).
		lone := rt.StartErl(t, erltest.ErlOptions{Name: erltest.UniqueName("b2"), EPMDPort: port, Cookie: testCookie,
			Control: true, Extra: []string{"-kernel", "prevent_overlapping_partitions", "false"}})
		bs = append(bs, lone)
		require.Equal(t, "pong", eval(t, bs[0], fmt.Sprintf("net_adm:ping(%s)", atomIn(lone.Node()))))
		gn := startGo(t, port)
		self := gn.n.Self()
		require.NoError(t, gn.n.Connect(ctxFor(t, wait), bs[0].Node()))
		for _, b := range bs {
			waitUntil(t, b, fmt.Sprintf("length(nodes()) =:= 3 andalso lists:member(%s, nodes())", atomIn(self)), wait)
			require.Equal(t, "ok", eval(t, b, "global:sync()"))
		}
		eval(t, lone, `[erlang:disconnect_node(N) || N <- nodes()], ok`)
		for _, b := range bs[:2] {
			waitUntil(t, b, fmt.Sprintf("not lists:member(%s, nodes())", atomIn(lone.Node())), wait)
		}
		require.Eventually(t, func() bool { return !slices.Contains(gn.n.Nodes(), lone.Node()) }, wait, 10*time.Millisecond)
		waitUntil(t, lone, "nodes() =:= []", wait)
		// The majority side is still whole (the lone node's drops cost no link inside it).
		for _, b := range bs[:2] {
			waitUntil(t, b, fmt.Sprintf("length(nodes()) =:= 2 andalso lists:member(%s, nodes())", atomIn(self)), wait)
			require.Equal(t, "ok", eval(t, b, "global:sync()"))
		}

		keep := `fun() -> receive stop -> ok end end`
		me := gn.n.Spawn()
		defer me.Exit(etf.Atom("normal"))
		ok, err := gn.g.Register(ctxFor(t, wait), etf.Atom("dup"), me.Pid())
		require.NoError(t, err)
		require.True(t, ok)
		eval(t, bs[0], `P = spawn(`+keep+`), register(keep_dup2, P), yes = global:register_name(dup2, P), ok`)
		eval(t, lone, `P1 = spawn(`+keep+`), register(keep_dup, P1), yes = global:register_name(dup, P1), `+
			`P2 = spawn(`+keep+`), register(lone_dup2, P2), yes = global:register_name(dup2, P2), ok`)

		require.Equal(t, "pong", eval(t, lone, fmt.Sprintf("net_adm:ping(%s)", atomIn(bs[0].Node()))))
		for _, b := range bs {
			waitUntil(t, b, "length(nodes()) =:= 3", wait)
			require.Equal(t, "ok", eval(t, b, "global:sync()"))
		}
		require.NoError(t, gn.g.Sync(ctxFor(t, wait)))
		select {
		case <-me.Done():
		case <-time.After(wait):
			t.Fatal("the Go owner of dup (on the node sorting higher) was not killed")
		}
		assert.Equal(t, etf.Atom("killed"), me.Reason())
		waitUntil(t, lone, "whereis(lone_dup2) =:= undefined andalso is_pid(whereis(keep_dup))", wait)
		for _, b := range bs {
			waitUntil(t, b, fmt.Sprintf("global:whereis_name(dup) =:= rpc:call(%s, erlang, whereis, [keep_dup])", atomIn(lone.Node())), wait)
			waitUntil(t, b, fmt.Sprintf("global:whereis_name(dup2) =:= rpc:call(%s, erlang, whereis, [keep_dup2])", atomIn(bs[0].Node())), wait)
		}
		pid, ok := gn.g.Whereis(etf.Atom("dup"))
		assert.True(t, ok)
		assert.Equal(t, etf.Atom(lone.Node()), pid.Node)
		pid, ok = gn.g.Whereis(etf.Atom("dup2"))
		assert.True(t, ok)
		assert.Equal(t, etf.Atom(bs[0].Node()), pid.Node)
		noGlobalComplaints(t, bs)
	})
}

// TestLateStart: global started on a Go node that is connected already (the BEAM side's first
// init_connect found no server): the sessions restart and global:sync() still returns.
func TestLateStart(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		port, bs := startCluster(t, rt, 2)
		gn := startGoWithout(t, port)
		require.NoError(t, gn.n.Connect(ctxFor(t, wait), bs[0].Node()))
		waitUntil(t, bs[0], fmt.Sprintf("lists:member(%s, nodes())", atomIn(gn.n.Self())), wait)
		g, err := global.Start(gn.n, nil)
		require.NoError(t, err)
		defer g.Stop()
		for _, b := range bs {
			waitUntil(t, b, fmt.Sprintf("lists:member(%s, nodes())", atomIn(gn.n.Self())), wait)
			assert.Equal(t, "ok", eval(t, b, "global:sync()"))
		}
		require.NoError(t, g.Sync(ctxFor(t, wait)))
		assert.ElementsMatch(t, []string{bs[0].Node(), bs[1].Node()}, gn.n.Nodes())
		noGlobalComplaints(t, bs)
	})
}

// TestHostileMessages: malformed calls, casts and messages to the Go node's global_name_server
// are answered as far as global answers them, or dropped; the server keeps working.
func TestHostileMessages(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		port, bs := startCluster(t, rt, 1)
		gn := startGo(t, port)
		require.NoError(t, gn.n.Connect(ctxFor(t, wait), bs[0].Node()))
		waitUntil(t, bs[0], fmt.Sprintf("lists:member(%s, nodes())", atomIn(gn.n.Self())), wait)
		require.Equal(t, "ok", eval(t, bs[0], "global:sync()"))
		to := fmt.Sprintf("{global_name_server, %s}", atomIn(gn.n.Self()))
		assert.Equal(t, "false", eval(t, bs[0], `gen_server:call(`+to+`, {set_lock, not_a_lock_id}, 5000)`))
		assert.Equal(t, "false", eval(t, bs[0], `gen_server:call(`+to+`, {set_lock, {a, b, c}}, 5000)`))
		assert.Equal(t, "true", eval(t, bs[0], `gen_server:call(`+to+`, {del_lock, 42}, 5000)`))
		assert.Equal(t, "yes", eval(t, bs[0], `gen_server:call(`+to+`, {register, n, not_a_pid, m}, 5000)`))
		assert.Equal(t, "8", eval(t, bs[0], `gen_server:call(`+to+`, get_protocol_version, 5000)`))
		// Replies go to the alias in the tag, as gen:reply sends them: [alias|A] (gen:call of
		// OTP 24+) and [[alias|A]|Ref] (gen_server:multi_call of OTP 26+), not to the pid.
		for _, tag := range []string{`[alias|A]`, `[[alias|A]|make_ref()]`} {
			assert.Equal(t, "8", eval(t, bs[0], `A = alias(), Y = spawn(fun() -> receive _ -> ok end end), T = `+tag+`, `+
				to+` ! {'$gen_call', {Y, T}, get_protocol_version}, receive {T, V} -> V after 5000 -> timeout end`), tag)
		}
		eval(t, bs[0], to+` ! junk, `+to+` ! {lost_connection, 1, 2, 3, 4}, `+to+` ! {init_connect_ack, x}, `+
			to+` ! {remove_connection, nobody@nowhere}, `+to+` ! {cancel_connect, nobody@nowhere, 1}, `+
			`[gen_server:cast(`+to+`, M) || M <- [junk, {init_connect, 1, 2, 3}, {init_connect, {x, y}, n@h, z}, `+
			`{exchange, 1, 2, 3, 4}, {resolved, n@h, x, y, z, w, v}, {new_nodes, n@h, x, y, z, w}, `+
			`{lock_set, not_a_pid, true, [], 1}, {in_sync, 1, 2}, {init_connect, {8, 1}, nobody@nowhere, {locker, x, #{}, self()}}]], ok`)
		// Still serving: a name round trip both ways.
		p := gn.n.Spawn()
		defer p.Exit(etf.Atom("normal"))
		ok, err := gn.g.Register(ctxFor(t, wait), etf.Atom("still_here"), p.Pid())
		require.NoError(t, err)
		assert.True(t, ok)
		assert.Equal(t, gn.n.Self(), eval(t, bs[0], `node(global:whereis_name(still_here))`))
		assert.Equal(t, "yes", eval(t, bs[0], `global:register_name(from_beam, self())`))
		assert.Eventually(t, func() bool { _, ok := gn.g.Whereis(etf.Atom("from_beam")); return ok }, wait, 10*time.Millisecond)
		assert.Equal(t, "ok", eval(t, bs[0], "global:sync()"))
		_, ok = gn.g.Whereis(etf.Atom("n"))
		assert.False(t, ok, "a register of something that is not a pid is not kept")
	})
}

// TestLocksFromGo: a lock taken from Go (Trans, SetLock) is held on the BEAM nodes too: BEAM's
// global:trans on the same resource aborts meanwhile and gets it once Go lets go; a lock held on
// BEAM keeps SetLock from Go waiting.
func TestLocksFromGo(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		port, bs := startCluster(t, rt, 2)
		gn := startGo(t, port)
		require.NoError(t, gn.n.Connect(ctxFor(t, wait), bs[0].Node()))
		for _, b := range bs {
			waitUntil(t, b, fmt.Sprintf("lists:member(%s, nodes())", atomIn(gn.n.Self())), wait)
			require.Equal(t, "ok", eval(t, b, "global:sync()"))
		}
		require.Len(t, gn.g.VisibleNodes(), 3)
		id := global.LockID{Resource: etf.Atom("gores"), Requester: etf.Atom("gouser")}
		err := gn.g.Trans(ctxFor(t, wait), id, nil, func() error {
			for _, b := range bs {
				assert.Equal(t, "aborted", eval(t, b, `global:trans({gores, self()}, fun() -> got end, [node() | nodes()], 0)`))
			}
			return nil
		})
		require.NoError(t, err)
		assert.Equal(t, "got", eval(t, bs[1], `global:trans({gores, self()}, fun() -> got end, [node() | nodes()], 10)`))

		// Held on BEAM: Go waits, then gets it once the holder ends.
		eval(t, bs[0], `Self = self(), H = spawn(fun() -> true = global:set_lock({beamres, self()}), Self ! locked, receive stop -> ok end end), register(holder, H), receive locked -> ok end`)
		p := gn.n.Spawn()
		defer p.Exit(etf.Atom("normal"))
		bid := global.LockID{Resource: etf.Atom("beamres"), Requester: etf.Atom("go")}
		assert.ErrorIs(t, gn.g.SetLock(ctxFor(t, 600*time.Millisecond), p, bid, nil), context.DeadlineExceeded)
		eval(t, bs[0], `holder ! stop, ok`)
		require.NoError(t, gn.g.SetLock(ctxFor(t, wait), p, bid, nil))
		assert.True(t, gn.g.LockSet(etf.Atom("beamres")))
		gn.g.DelLock(p, bid, nil)
		assert.False(t, gn.g.LockSet(etf.Atom("beamres")))
	})
}

// TestStartTwice: a second global on one node is refused (the name global_name_server is
// taken), and Stop ends every goroutine (goleak checks at the end of the package).
func TestStartTwice(t *testing.T) {
	var o process.Options
	o.Node.EPMD = node.EPMDNone
	o.Node.ListenAddr = "127.0.0.1"
	o.Node.ListenPort = erltest.FreePort(t)
	o.Node.Flags = handshake.FlagPublished
	n, err := process.Start(ctxFor(t, wait), erltest.UniqueName("go")+"@localhost", testCookie, &o)
	require.NoError(t, err)
	defer func() { _ = n.Stop() }()
	g, err := global.Start(n, nil)
	require.NoError(t, err)
	_, err = global.Start(n, nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, process.ErrNameTaken)
	known, err := g.Known()
	require.NoError(t, err)
	assert.Empty(t, known)
	require.NoError(t, g.Sync(ctxFor(t, wait)))
	g.Stop()
	<-g.Done()
	_, err = g.Known()
	assert.Error(t, err)
}

// TestGoToGo: two visible Go nodes running global (no BEAM at all) exchange names like BEAM
// nodes do.
func TestGoToGo(t *testing.T) {
	port := erltest.FreePort(t)
	start := func() (*process.Node, *global.Global) {
		var o process.Options
		o.Node.EPMDPort = port // the first node starts an embedded EPMD there
		o.Node.ListenAddr = "127.0.0.1"
		o.Node.Flags = handshake.FlagPublished | handshake.FlagSpawn
		n, err := process.Start(ctxFor(t, wait), erltest.UniqueName("go")+"@localhost", testCookie, &o)
		require.NoError(t, err)
		g, err := global.Start(n, nil)
		require.NoError(t, err)
		t.Cleanup(func() {
			g.Stop()
			_ = n.Stop()
		})
		return n, g
	}
	n1, g1 := start()
	n2, g2 := start()
	p := n1.Spawn()
	ok, err := g1.Register(ctxFor(t, wait), []byte("binary name"), p.Pid())
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, n2.Connect(ctxFor(t, wait), n1.Self()))
	require.NoError(t, g2.Sync(ctxFor(t, wait)))
	require.NoError(t, g1.Sync(ctxFor(t, wait)))
	pid, ok := g2.Whereis([]byte("binary name"))
	require.True(t, ok)
	assert.Equal(t, p.Pid(), pid)
	_, err = g2.Send([]byte("binary name"), etf.Atom("hello"))
	require.NoError(t, err)
	assert.Equal(t, etf.Atom("hello"), recv(t, p, nil))
	known, err := g1.Known()
	require.NoError(t, err)
	assert.Equal(t, []string{n2.Self()}, known)
	p.Exit(etf.Atom("normal"))
	assert.Eventually(t, func() bool { _, ok := g2.Whereis([]byte("binary name")); return !ok }, wait, 10*time.Millisecond)
}

// TestUnreachableOwner: a name registered on BEAM for a pid of a node that cannot be reached (it
// is in EPMD, but its port accepts and never answers) does not hold up the Go node's server:
// global:register_name and global:trans on BEAM return at once, and the name goes on both sides
// when the connection attempts fail.
func TestUnreachableOwner(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		port, bs := startCluster(t, rt, 1, "-kernel", "net_setuptime", "2")
		gn := startGo(t, port, func(o *process.Options) { o.Node.SetupTimeout = 2 * time.Second })
		require.NoError(t, gn.n.Connect(ctxFor(t, wait), bs[0].Node()))
		waitUntil(t, bs[0], fmt.Sprintf("lists:member(%s, nodes())", atomIn(gn.n.Self())), wait)
		require.Equal(t, "ok", eval(t, bs[0], "global:sync()"))

		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		var held []net.Conn
		var mu sync.Mutex
		accepted := make(chan struct{})
		go func() {
			defer close(accepted)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				held = append(held, c) // never read nor answered
				mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			_ = ln.Close()
			<-accepted
			mu.Lock()
			defer mu.Unlock()
			for _, c := range held {
				_ = c.Close()
			}
		})
		ghost := erltest.UniqueName("ghost")
		reg, err := (&epmd.Client{Port: port}).Register(ctxFor(t, wait), epmd.NodeInfo{Name: ghost, Port: ln.Addr().(*net.TCPAddr).Port})
		require.NoError(t, err)
		t.Cleanup(func() { _ = reg.Close() })

		gnode := ghost + "@localhost"
		out := eval(t, bs[0], fmt.Sprintf(`N = atom_to_binary(%s), G = binary_to_term(<<131, 88, 119, (byte_size(N)), N/binary, 1:32, 0:32, 1:32>>), `+
			`{T1, yes} = timer:tc(fun() -> global:register_name(ghostname, G) end), `+
			`{T2, done} = timer:tc(fun() -> global:trans({res, self()}, fun() -> done end) end), (T1 + T2) div 1000`, atomIn(gnode)))
		ms, err := strconv.Atoi(out)
		require.NoError(t, err, out)
		t.Logf("%s: register_name of an unreachable node's pid and a trans took %d ms", rt.Name, ms)
		assert.Less(t, ms, 1500, "global on BEAM waited for the Go node")
		pid, ok := gn.g.Whereis(etf.Atom("ghostname"))
		if assert.True(t, ok) {
			assert.Equal(t, etf.Atom(gnode), pid.Node)
		}
		assert.Eventually(t, func() bool { _, ok := gn.g.Whereis(etf.Atom("ghostname")); return !ok }, wait, 20*time.Millisecond)
		waitUntil(t, bs[0], "global:whereis_name(ghostname) =:= undefined", wait)
	})
}
