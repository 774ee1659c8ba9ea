package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/gen"
	"github.com/distribute-go/distribute/process"
	"github.com/distribute-go/distribute/rpc"
	ergoetf "github.com/ergo-services/ergo/etf"
	ergogen "github.com/ergo-services/ergo/gen"
)

// The messaging and call rows, and the process-memory rows.

// Names of the servers the messaging and call rows use, the same on every
// node: BEAM's come from bench_erl.erl, ours from startServers, ergo's from
// ergoEcho.
const (
	sinkName = "bench_sink"
	echoName = "bench_echo"
)

var (
	atomSync   = etf.Atom("sync")
	atomSynced = etf.Atom("synced")
	// benchMsg is the message of the messaging rows: {msg, 12345, <<16 bytes>>}.
	benchMsg = etf.Tuple{etf.Atom("msg"), 12345, []byte("0123456789abcdef")}
	echoReq  = etf.Tuple{etf.Atom("echo"), 1}
)

// startServers starts on n what BEAM's bench_erl starts on B, as gen
// servers (gen.StartServer: one process, one goroutine, as a gen_server):
// bench_sink counts the messages it is sent and answers the call `sync`
// with {synced, Count}, counting again from 0; bench_echo answers every call
// with its request. They end when the node stops.
func startServers(ctx context.Context, n *process.Node) error {
	count := 0
	if _, err := gen.StartServer(n, gen.Funcs{
		Call: func(_ gen.From, req etf.Term) (etf.Term, error) {
			c := count
			count = 0
			return etf.Tuple{atomSynced, c}, nil
		},
		Info: func(etf.Term) error { count++; return nil },
	}, &gen.ServerOptions{Name: sinkName}); err != nil {
		return err
	}
	_, err := gen.StartServer(n, gen.Funcs{
		Call: func(_ gen.From, req etf.Term) (etf.Term, error) { return req, nil },
	}, &gen.ServerOptions{Name: echoName})
	return err
}

// echoRegistry serves bench_erl:echo/1 to erpc, as B's bench_erl does.
func echoRegistry() *rpc.Registry {
	reg := rpc.NewRegistry()
	reg.Register("bench_erl", "echo", 1, func(_ context.Context, args etf.List) (etf.Term, error) {
		return args[0], nil
	})
	return reg
}

// errSync: the sink saw another count of messages than were sent.
var errSync = errors.New("sink count does not match the messages sent")

// msgBEAM: the driver D sends, with k processes, cfg.msgs messages in all
// to bench_sink on node to (B or our gb), then syncs.
func (b *bench) msgBEAM(ctx context.Context, to string, k int) *result {
	m := b.cfg.msgs / k
	groups := []group{b.driverG()}
	if b.beam != nil && to == b.beamName() {
		groups = append(groups, b.beamG())
	}
	cmd := func(m int) string { return fmt.Sprintf("{send,{%s,'%s'},%d,%d}", sinkName, to, k, m) }
	if _, err := b.drv.call(ctx, cmd(max(1, m/10)), driverTimeout); err != nil { // warm-up
		return failed(err)
	}
	var v []int64
	r := measured("message", k*m, groups, func() *result {
		var err error
		v, err = b.drv.call(ctx, cmd(m), driverTimeout)
		if err != nil {
			return failed(err)
		}
		return &result{}
	})
	if r.err != nil {
		return r
	}
	if len(v) != 2 || v[0] != int64(k*m) {
		return failed(fmt.Errorf("%w: sent %d, the sink counted %v", errSync, k*m, v))
	}
	r.rate, r.ops = float64(v[0])/time.Duration(v[1]).Seconds(), v[0]
	return r
}

// msgOurs: ga sends, with k processes (one goroutine each), cfg.msgs
// messages in all to bench_sink on B, then syncs with a call.
func (b *bench) msgOurs(ctx context.Context, k int) *result {
	ctx, cancel := context.WithTimeout(ctx, loopTimeout)
	defer cancel()
	to := process.Name{Name: sinkName, Node: b.beamName()}
	senders := make([]*process.Process, k)
	for i := range senders {
		senders[i] = b.ga.Spawn()
		defer senders[i].Exit(etf.Atom("normal"))
	}
	round := func(m int) (time.Duration, error) {
		t0 := time.Now()
		errs := make([]error, k)
		var wg sync.WaitGroup
		for i, p := range senders {
			wg.Go(func() {
				for range m {
					if err := p.Send(to, benchMsg); err != nil {
						errs[i] = err
						return
					}
				}
			})
		}
		wg.Wait()
		if err := firstErr(errs); err != nil {
			return 0, err
		}
		r, err := gen.CallFrom(ctx, senders[0], to, atomSync)
		if err != nil {
			return 0, err
		}
		if t, ok := r.(etf.Tuple); !ok || len(t) != 2 || t[1] != int64(k*m) {
			return 0, fmt.Errorf("%w: sent %d, the sink answered %v", errSync, k*m, r)
		}
		return time.Since(t0), nil
	}
	m := b.cfg.msgs / k
	if _, err := round(max(1, m/10)); err != nil {
		return failed(err)
	}
	var d time.Duration
	r := measured("message", k*m, []group{b.beamG()}, func() *result {
		var err error
		if d, err = round(m); err != nil {
			return failed(err)
		}
		return &result{}
	})
	if r.err == nil {
		r.rate, r.ops = float64(k*m)/d.Seconds(), int64(k*m)
	}
	return r
}

// ergoSend asks an ergoCaller to send n messages to the registered process
// sink on peer.
type ergoSend struct {
	peer, sink string
	msg        etf.Term
	n          int
}

// msgErgo: an ergo node sends, with k processes, cfg.msgs messages in all
// to bench_sink on B, then syncs with a call.
func (b *bench) msgErgo(ctx context.Context, k int) *result {
	return b.withErgo("ergom", func(e *ergoNode) *result {
		if err := e.n.Connect(b.beamName()); err != nil {
			return failed(fmt.Errorf("ergo: connect: %w", err))
		}
		ps := make([]ergogen.Process, k)
		for i := range ps {
			p, err := e.caller()
			if err != nil {
				return failed(err)
			}
			ps[i] = p
		}
		msg := ergoetf.Tuple{ergoetf.Atom("msg"), 12345, []byte("0123456789abcdef")}
		sink := ergogen.ProcessID{Name: sinkName, Node: b.beamName()}
		round := func(m int) (time.Duration, error) {
			t0 := time.Now()
			errs := make([]error, k)
			var wg sync.WaitGroup
			for i, p := range ps {
				wg.Go(func() {
					_, errs[i] = p.DirectWithTimeout(ergoSend{peer: b.beamName(), sink: sinkName, msg: msg, n: m}, 120)
				})
			}
			wg.Wait()
			if err := firstErr(errs); err != nil {
				return 0, err
			}
			// ergo's call can overtake messages the same process sent
			// before it (seen here: the sink had 19,966 of 20,000), so
			// sync until the sink has counted them all.
			seen := 0
			for tries := 0; seen < k*m; tries++ {
				if tries == 1000 {
					return 0, fmt.Errorf("%w: sent %d, the sink counted %d", errSync, k*m, seen)
				}
				r, err := ps[0].DirectWithTimeout(ergoCallOnce{to: sink, req: ergoetf.Atom("sync")}, 120)
				if err != nil {
					return 0, err
				}
				t, ok := r.(ergoetf.Tuple)
				if !ok || len(t) != 2 {
					return 0, fmt.Errorf("%w: the sink answered %v", errSync, r)
				}
				c, err := strconv.Atoi(fmt.Sprint(t[1]))
				if err != nil {
					return 0, fmt.Errorf("%w: the sink answered %v", errSync, r)
				}
				seen += c
			}
			if seen != k*m {
				return 0, fmt.Errorf("%w: sent %d, the sink counted %d", errSync, k*m, seen)
			}
			return time.Since(t0), nil
		}
		m := b.cfg.msgs / k
		if _, err := round(max(1, m/10)); err != nil {
			return failed(err)
		}
		var d time.Duration
		r := measured("message", k*m, []group{b.beamG()}, func() *result {
			var err error
			if d, err = round(m); err != nil {
				return failed(err)
			}
			return &result{}
		})
		if r.err == nil {
			r.rate, r.ops = float64(k*m)/d.Seconds(), int64(k*m)
		}
		return r
	})
}

// callBEAM: the driver D makes cfg.callers concurrent gen_server calls to
// bench_echo on node to, for cfg.tput after a warm-up of cfg.tput/5;
// extra is the process group serving them when it is not B or this
// process (ergo's node is in this process).
func (b *bench) callBEAM(ctx context.Context, to string, extra []group) *result {
	return b.driverLoad(ctx, "calls", to, extra)
}

// driverLoad runs the driver's command cmd ({calls, ...} or {erpc, ...})
// against node to and returns the rate, with the CPU of D, of extra and,
// when to is B, of B.
func (b *bench) driverLoad(ctx context.Context, cmd, to string, extra []group) *result {
	groups := append([]group{b.driverG()}, extra...)
	if b.beam != nil && to == b.beamName() {
		groups = append(groups, b.beamG())
	}
	var v []int64
	r := measured("call", 0, groups, func() *result {
		var err error
		v, err = b.drv.call(ctx, fmt.Sprintf("{calls,{%s,'%s'},%d,%d,%d}", echoName, to, b.cfg.callers,
			(b.cfg.tput/5).Milliseconds(), b.cfg.tput.Milliseconds()), driverTimeout)
		if err != nil {
			return failed(err)
		}
		if len(v) != 2 || v[1] <= 0 {
			return failed(fmt.Errorf("%s: unexpected result %v", cmd, v))
		}
		// The CPU spans the warm-up too: spread it over the calls made
		// in all, estimated from the measured rate.
		total := float64(v[0]) * float64(b.cfg.tput+b.cfg.tput/5) / float64(v[1])
		return &result{ops: int64(total)}
	})
	if r.err == nil {
		r.rate = float64(v[0]) / time.Duration(v[1]).Seconds()
	}
	return r
}

// erpcBEAM: the driver D makes cfg.callers concurrent erpc:call(to,
// bench_erl, echo, [{echo, 1}]) one after another per caller, for cfg.tput
// after a warm-up of cfg.tput/5: served by B's bench_erl or by gb's
// rpc.Registry (a SPAWN_REQUEST per call either way).
func (b *bench) erpcBEAM(ctx context.Context, to string) *result {
	return b.driverLoad(ctx, "erpc", to, nil)
}

// callOB: cfg.callers goroutines of ga, each with its own process, call
// bench_echo on B.
func (b *bench) callOB(ctx context.Context) *result {
	to := process.Name{Name: echoName, Node: b.beamName()}
	ps := make([]*process.Process, b.cfg.callers)
	for i := range ps {
		ps[i] = b.ga.Spawn()
		defer ps[i].Exit(etf.Atom("normal"))
	}
	return goLoad(ctx, b.ga, b.beamName(), b.cfg.callers, b.cfg.tput, func(ctx context.Context, i int) error {
		r, err := gen.CallFrom(ctx, ps[i], to, echoReq)
		if err == nil && !equalEcho(r) {
			err = fmt.Errorf("call %v answered %v", to, r)
		}
		return err
	}, b.beamG())
}

func equalEcho(r etf.Term) bool {
	t, ok := r.(etf.Tuple)
	return ok && len(t) == 2 && t[0] == echoReq[0] && t[1] == int64(1)
}

// callEB: cfg.callers ergo processes call bench_echo on B.
func (b *bench) callEB(ctx context.Context) *result {
	return b.withErgo("ergoc", func(e *ergoNode) *result {
		return ergoThroughput(ctx, e, ergogen.ProcessID{Name: echoName, Node: b.beamName()}, ergoetf.Tuple{ergoetf.Atom("echo"), 1},
			b.cfg.callers, b.cfg.tput, b.beamG())
	})
}

// callBE: the driver calls bench_echo on an ergo node (a gen.Server in
// this process).
func (b *bench) callBE(ctx context.Context) *result {
	return b.withErgo("ergoe", func(e *ergoNode) *result {
		if _, err := e.n.Spawn(echoName, ergogen.ProcessOptions{}, &ergoEcho{}); err != nil {
			return failed(fmt.Errorf("ergo: spawn %s: %w", echoName, err))
		}
		return b.callBEAM(ctx, e.n.Name(), nil)
	})
}

// procMem is one process-memory row.
type procMem struct {
	who        string
	n          int
	perProc    float64 // bytes
	goroutines float64 // per process
	held       bool    // every process was still alive when measured
}

// procBEAM: erlang:memory(processes) per idle process on the driver, over
// the largest count of the Go rows.
func (b *bench) procBEAM(ctx context.Context) *result {
	n := b.cfg.procs[0]
	v, err := b.drv.call(ctx, fmt.Sprintf("{procmem,%d}", n), driverTimeout)
	if err != nil {
		return failed(err)
	}
	if len(v) != 2 {
		return failed(fmt.Errorf("procmem: unexpected result %v", v))
	}
	return &result{pmem: []procMem{{who: "BEAM", n: n, perProc: float64(v[0]) / float64(n), held: true}}}
}

// heap returns the Go heap in use after a full GC.
func heap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// procOurs: heap and goroutines per idle Go process (Spawn: a mailbox, no
// goroutine), for each count of cfg.procs, on a fresh node.
func (b *bench) procOurs(ctx context.Context) *result {
	port, err := freePort()
	if err != nil {
		return failed(err)
	}
	n, err := startGo(ctx, uniqueName("pm"), b.cookie, port)
	if err != nil {
		return failed(err)
	}
	defer stopAll([]*process.Node{n})
	var out []procMem
	for _, count := range b.cfg.procs {
		h0, g0 := heap(), runtime.NumGoroutine()
		ps := make([]*process.Process, count)
		for i := range ps {
			ps[i] = n.Spawn()
		}
		h1, g1 := heap(), runtime.NumGoroutine()
		held := true
		for _, p := range ps {
			select {
			case <-p.Done():
				held = false
			default:
			}
		}
		// The slice of handles is the harness's, not the processes'.
		slice := float64(count * 8)
		out = append(out, procMem{who: "ours", n: count, perProc: (float64(h1-h0) - slice) / float64(count),
			goroutines: float64(g1-g0) / float64(count), held: held})
		for _, p := range ps {
			p.Exit(etf.Atom("normal"))
		}
		ps = nil
		if err := ctx.Err(); err != nil {
			return failed(err)
		}
	}
	return &result{pmem: out}
}

// procErgo: the same for idle ergo processes (a gen.Server each), over a
// tenth of the smallest count (each costs about 18 KiB).
func (b *bench) procErgo(ctx context.Context) *result {
	port, err := freePort()
	if err != nil {
		return failed(err)
	}
	// ergo needs a registrar; our embedded EPMD on a private port serves.
	epmd, err := startGo(ctx, uniqueName("pe"), b.cookie, port)
	if err != nil {
		return failed(err)
	}
	defer stopAll([]*process.Node{epmd})
	count := max(1, b.cfg.procs[0]/10)
	var r *result
	func() {
		e, err := startErgo(uniqueName("ergopm"), b.cookie, port)
		if err != nil {
			r = failed(err)
			return
		}
		defer e.stop()
		h0, g0 := heap(), runtime.NumGoroutine()
		for range count {
			if _, err := e.n.Spawn("", ergogen.ProcessOptions{}, &ergoEcho{}); err != nil {
				r = failed(fmt.Errorf("ergo: spawn: %w", err))
				return
			}
		}
		h1, g1 := heap(), runtime.NumGoroutine()
		r = &result{pmem: []procMem{{who: "ergo", n: count, perProc: float64(h1-h0) / float64(count),
			goroutines: float64(g1-g0) / float64(count), held: len(e.n.ProcessList()) >= count}}}
	}()
	return r
}
