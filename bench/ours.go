package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/distribute-go/distribute/health"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
	"github.com/distribute-go/distribute/rpc"
)

// loopTimeout bounds one measurement loop, so a peer that stops answering
// fails the row instead of hanging the run.
const loopTimeout = 2 * time.Minute

// startGo starts one of our nodes, alive@127.0.0.1, listening on loopback.
// With a real epmd on epmdPort it registers there; with none, the node
// package starts its pure-Go EPMD in this process on that port.
func startGo(ctx context.Context, alive, cookie string, epmdPort int) (*process.Node, error) {
	return startGoServing(ctx, alive, cookie, epmdPort, nil)
}

// startGoServing is startGo with reg (if not nil) serving erpc calls.
func startGoServing(ctx context.Context, alive, cookie string, epmdPort int, reg *rpc.Registry) (*process.Node, error) {
	opts := &process.Options{Node: node.Options{
		EPMD:       node.EPMDEmbedded,
		EPMDPort:   epmdPort,
		ListenAddr: "127.0.0.1",
	}}
	if reg != nil {
		reg.Configure(opts)
	}
	return process.Start(ctx, alive+"@127.0.0.1", cookie, opts)
}

// stopAll stops nodes in parallel (nil entries are skipped).
func stopAll(nodes []*process.Node) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, n := range nodes {
		if n == nil {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_ = n.Stop()
		})
	}
	wg.Wait()
}

// startMany starts count nodes named prefix_0 ... in parallel.
func startMany(ctx context.Context, prefix, cookie string, epmdPort, count int) ([]*process.Node, error) {
	nodes := make([]*process.Node, count)
	errs := make([]error, count)
	forEach(count, 16, func(i int) {
		if ctx.Err() != nil {
			errs[i] = ctx.Err()
			return
		}
		nodes[i], errs[i] = startGo(ctx, prefix+"_"+strconv.Itoa(i), cookie, epmdPort)
	})
	if err := errors.Join(errs...); err != nil {
		stopAll(nodes)
		return nil, err
	}
	return nodes, nil
}

// connectAll connects hub to every node in peers, 16 at a time.
func connectAll(ctx context.Context, hub *process.Node, peers []string) error {
	errs := make([]error, len(peers))
	forEach(len(peers), 16, func(i int) {
		errs[i] = hub.Connect(ctx, peers[i])
	})
	return errors.Join(errs...)
}

// forEach runs f(0..n-1) on at most par goroutines and waits.
func forEach(n, par int, f func(int)) {
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range min(par, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		})
	}
	wg.Wait()
}

// goConnects times from no link to the first pong (EPMD lookup, dial,
// handshake, is_auth call) warm+n times, keeping the last n. After each
// round the link is dropped; gone, if set, reports when the peer has
// noticed; then the harness rests for gap (off the clock).
func goConnects(ctx context.Context, from *process.Node, peer string, warm, n int, gap time.Duration, gone func() bool) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, loopTimeout)
	defer cancel()
	out := make([]time.Duration, 0, n)
	for i := 0; i < warm+n; i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if _, err := from.PingRTT(ctx, peer); err != nil {
			return nil, fmt.Errorf("connect round %d to %s: %w", i, peer, err)
		}
		d := time.Since(t0)
		if i >= warm {
			out = append(out, d)
		}
		from.Disconnect(peer)
		if gone != nil {
			if err := waitFor(ctx, 2*time.Second, gone); err != nil {
				return nil, fmt.Errorf("peer %s did not see the link drop: %w", peer, err)
			}
		}
		sleepCtx(ctx, gap)
	}
	return out, nil
}

// goPings times warm+n successive pings on an established link, keeping
// the last n. Each is timed around the public PingRTT call.
func goPings(ctx context.Context, from *process.Node, peer string, warm, n int) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, loopTimeout)
	defer cancel()
	if err := from.Connect(ctx, peer); err != nil {
		return nil, err
	}
	out := make([]time.Duration, 0, n)
	for i := 0; i < warm+n; i++ {
		t0 := time.Now()
		if _, err := from.PingRTT(ctx, peer); err != nil {
			return nil, fmt.Errorf("ping %d to %s: %w", i, peer, err)
		}
		d := time.Since(t0)
		if i >= warm {
			out = append(out, d)
		}
	}
	return out, nil
}

// goThroughput runs callers goroutines pinging peer over one link for d
// (after a warm-up of d/5) and returns completed pings per second.
func goThroughput(ctx context.Context, from *process.Node, peer string, callers int, d time.Duration, peers ...group) *result {
	return goLoad(ctx, from, peer, callers, d, func(ctx context.Context, _ int) error {
		_, err := from.PingRTT(ctx, peer)
		return err
	}, peers...)
}

// goLoad runs callers goroutines calling op(ctx, i) in a loop, with a link
// to peer set up first, for d (after a warm-up of d/5), and returns
// completed operations per second with the CPU per operation of this
// process and of peers.
func goLoad(ctx context.Context, from *process.Node, peer string, callers int, d time.Duration, op func(context.Context, int) error, peers ...group) *result {
	ctx, cancel := context.WithTimeout(ctx, d+d/5+loopTimeout)
	defer cancel()
	if err := from.Connect(ctx, peer); err != nil {
		return failed(err)
	}
	var pids []int
	for _, g := range peers {
		pids = append(pids, g.pids...)
	}
	var stop atomic.Bool
	var count atomic.Int64
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			for !stop.Load() {
				if err := op(ctx, i); err != nil {
					errs[i] = err
					stop.Store(true)
					return
				}
				count.Add(1)
			}
		})
	}
	sleepCtx(ctx, d/5)
	c0, t0, u0 := count.Load(), time.Now(), snapshot(pids...)
	sleepCtx(ctx, d)
	c1, t1, u1 := count.Load(), time.Now(), snapshot(pids...)
	stop.Store(true)
	wg.Wait()
	if err := firstErr(errs); err != nil {
		return failed(err)
	}
	if err := ctx.Err(); err != nil {
		return failed(err)
	}
	return &result{rate: float64(c1-c0) / t1.Sub(t0).Seconds(), ops: c1 - c0,
		note: perCall(u0, u1, c1-c0, "call", peers...), cpu: cpuPer(u0, u1, c1-c0, peers...)}
}

// firstErr returns the first non-nil error, saying how many callers failed.
func firstErr(errs []error) error {
	var first error
	n := 0
	for _, e := range errs {
		if e != nil {
			if first == nil {
				first = e
			}
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("%d of %d callers failed; first: %w", n, len(errs), first)
	}
	return first
}

// goHealth runs health.Check on n (which must be connected to exactly want
// nodes) warm+runs times and returns the last runs durations.
func goHealth(ctx context.Context, n *process.Node, want, warm, runs int) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, loopTimeout)
	defer cancel()
	out := make([]time.Duration, 0, runs)
	for i := 0; i < warm+runs; i++ {
		t0 := time.Now()
		h, err := health.Check(ctx, n, &health.Options{PingTimeout: 10 * time.Second})
		d := time.Since(t0)
		if err != nil {
			return nil, err
		}
		if len(h.ReachableNodes) != want || h.ConnectedCount != want {
			return nil, fmt.Errorf("health check: %d of %d connected nodes reachable (want %d): %v",
				len(h.ReachableNodes), h.ConnectedCount, want, h.UnreachableNodes)
		}
		if i >= warm {
			out = append(out, d)
		}
	}
	return out, nil
}

// tcpFloor times warm+n round trips of a 64-byte frame over a Go TCP
// loopback connection (a goroutine echoes it back): the floor for any
// request/response over loopback TCP in Go.
func tcpFloor(ctx context.Context, warm, n int) ([]time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	srvDone := make(chan struct{})
	go func() {
		defer close(srvDone)
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		var b [64]byte
		for {
			if _, err := io.ReadFull(c, b[:]); err != nil {
				return
			}
			if _, err := c.Write(b[:]); err != nil {
				return
			}
		}
	}()
	defer func() { <-srvDone }()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Now()) })
	defer stop()
	var b [64]byte
	b[3] = 60 // a 4-byte length and 60 bytes of payload, like a small frame
	out := make([]time.Duration, 0, n)
	for i := 0; i < warm+n; i++ {
		t0 := time.Now()
		if _, err := c.Write(b[:]); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, b[:]); err != nil {
			return nil, err
		}
		if i >= warm {
			out = append(out, time.Since(t0))
		}
	}
	return out, nil
}

// memResult is the memory row.
type memResult struct {
	links          int
	held           int     // links still up on both ends after the hold time
	rssPerLink     float64 // bytes
	goPerLink      float64 // goroutines
	rssPerNode     float64 // bytes per unconnected node (EPMD registration included)
	goPerNode      float64
	rssBase, rssUp int64
}

// rss returns this process's resident set size after a full GC that
// returns freed memory to the OS.
func rss() (int64, error) {
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) != 2 || f[1] != "kB" {
				return 0, fmt.Errorf("unexpected VmRSS line %q", line)
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/self/status")
}

// settle waits until the goroutine count stops moving (started goroutines
// reach their blocking point), then measures.
func settle(ctx context.Context) (rssBytes int64, goroutines int, err error) {
	prev := -1
	for range 50 {
		g := runtime.NumGoroutine()
		if g == prev {
			break
		}
		prev = g
		sleepCtx(ctx, 50*time.Millisecond)
	}
	r, err := rss()
	return r, runtime.NumGoroutine(), err
}

// goMemory measures what an idle established link costs: it starts a hub
// and links leaf nodes (none connected), measures RSS and goroutines,
// links the hub to every leaf, pings each link once (so its buffers exist,
// as on a link that has carried traffic), lets the links sit idle for
// hold, checks they are all still up on both ends, and measures again.
// The difference divided by the number of links is the cost of one link,
// both ends counted (two sockets, two reader and two writer goroutines,
// their buffers). Node and EPMD registration costs are in both
// measurements and cancel out; they are reported per node separately.
func goMemory(ctx context.Context, cookie string, epmdPort, links int, hold time.Duration) (*memResult, error) {
	r0, g0, err := settle(ctx)
	if err != nil {
		return nil, err
	}
	nodes, err := startMany(ctx, uniqueName("m"), cookie, epmdPort, links+1)
	if err != nil {
		return nil, err
	}
	defer stopAll(nodes)
	hub, leaves := nodes[0], nodes[1:]
	r1, g1, err := settle(ctx)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(leaves))
	for i, l := range leaves {
		names[i] = l.Self()
	}
	if err := connectAll(ctx, hub, names); err != nil {
		return nil, err
	}
	h, err := health.Check(ctx, hub, &health.Options{PingTimeout: 30 * time.Second})
	if err != nil {
		return nil, err
	}
	if len(h.ReachableNodes) != links {
		return nil, fmt.Errorf("%d of %d links answered a ping", len(h.ReachableNodes), links)
	}
	sleepCtx(ctx, hold)
	r2, g2, err := settle(ctx)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	held := 0
	if hub.ConnectedCount() == links {
		for _, l := range leaves {
			if l.ConnectedCount() == 1 {
				held++
			}
		}
	}
	nn := float64(links + 1)
	return &memResult{
		links:      links,
		held:       held,
		rssPerLink: float64(r2-r1) / float64(links),
		goPerLink:  float64(g2-g1) / float64(links),
		rssPerNode: float64(r1-r0) / nn,
		goPerNode:  float64(g1-g0) / nn,
		rssBase:    r1,
		rssUp:      r2,
	}, nil
}

// waitFor polls cond every millisecond until it holds, ctx ends or limit
// passes.
func waitFor(ctx context.Context, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	for !cond() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v", limit)
		}
		time.Sleep(time.Millisecond)
	}
	return nil
}

// sleepCtx sleeps for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }
