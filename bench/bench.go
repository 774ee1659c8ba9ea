package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/distribute-go/distribute/process"
	"github.com/distribute-go/distribute/rpc"
	"github.com/ergo-services/ergo/gen"
)

//go:embed bench_erl.erl
var erlDriverSrc []byte

// config sets the sizes of a run.
type config struct {
	quick                  bool
	run                    *regexp.Regexp // nil: every measurement
	connects, warmConnects int            // connect rounds kept / thrown away
	gap                    time.Duration  // rest between connect rounds
	pings, warmPings       int            // pings kept / thrown away
	healthRuns, warmHealth int            // health checks kept / thrown away
	beamHealthNodes        int            // BEAM nodes in the health row
	goHealthNodes          int            // Go nodes in the other health row
	links                  int            // links in the memory row
	hold                   time.Duration  // idle time before the memory is measured
	callers                int            // concurrent callers in the throughput rows
	tput                   time.Duration  // measured time of a throughput row (and a call row)
	msgs                   int            // messages per messaging row (split over the senders)
	procs                  []int          // idle Go processes in the process-memory rows
	cpuprofile             string
}

func configFor(quick bool) config {
	if quick {
		return config{quick: true, connects: 5, warmConnects: 1, gap: 20 * time.Millisecond,
			pings: 2000, warmPings: 200, healthRuns: 5, warmHealth: 1, beamHealthNodes: 16,
			goHealthNodes: 64, links: 200, hold: 200 * time.Millisecond, callers: 64, tput: 300 * time.Millisecond,
			msgs: 20000, procs: []int{10000, 100000}}
	}
	return config{connects: 25, warmConnects: 2, gap: 50 * time.Millisecond,
		pings: 20000, warmPings: 2000, healthRuns: 25, warmHealth: 3, beamHealthNodes: 16,
		goHealthNodes: 256, links: 1000, hold: 2 * time.Second, callers: 64, tput: 2 * time.Second,
		msgs: 400000, procs: []int{100000, 1000000}}
}

// Measurement ids, in the order they run.
const (
	idTCP        = "ping/tcp"
	idConnBB     = "connect/beam-beam"
	idConnEB     = "connect/ergo-beam"
	idConnOB     = "connect/ours-beam"
	idConnOO     = "connect/ours-ours"
	idPingBB     = "ping/beam-beam"
	idPingEB     = "ping/ergo-beam"
	idPingOB     = "ping/ours-beam"
	idPingBO     = "ping/beam-ours"
	idPingOO     = "ping/ours-ours"
	idTputOB     = "throughput/ours-beam"
	idTputEB     = "throughput/ergo-beam"
	idTputOO     = "throughput/ours-ours"
	idMsgBB1     = "msg/beam-beam-1"
	idMsgBB16    = "msg/beam-beam-16"
	idMsgBO1     = "msg/beam-ours-1"
	idMsgBO16    = "msg/beam-ours-16"
	idMsgOB1     = "msg/ours-beam-1"
	idMsgOB16    = "msg/ours-beam-16"
	idMsgEB1     = "msg/ergo-beam-1"
	idMsgEB16    = "msg/ergo-beam-16"
	idCallBB     = "call/beam-beam"
	idCallBO     = "call/beam-ours"
	idCallOB     = "call/ours-beam"
	idCallEB     = "call/ergo-beam"
	idCallBE     = "call/beam-ergo"
	idErpcBB     = "erpc/beam-beam"
	idErpcBO     = "erpc/beam-ours"
	idProcBEAM   = "procmem/beam"
	idProcErgo   = "procmem/ergo"
	idProcOurs   = "procmem/ours"
	idHealthSeq  = "health/seq-16beam"
	idHealthOurs = "health/ours-16beam"
	idHealthGo   = "health/ours-256go"
	idMemory     = "memory/1000links"
)

// What a measurement needs started before it runs.
const (
	needBEAM       = 1 << iota // the target BEAM node B
	needDriver                 // the erl driver D (default settings)
	needSeqDriver              // the erl driver S (-connect_all false)
	needHealthBEAM             // the 16 BEAM health nodes
	needOurs                   // our nodes ga (initiator) and gb (target)
	needOursHealth             // our node gh for the 16-node health row
	needServe                  // bench_sink and bench_echo running on B (loaded by D)
	needErl        = needBEAM | needDriver | needSeqDriver | needHealthBEAM | needServe
)

// step is one measurement.
type step struct {
	id    string
	needs int
	fn    func(b *bench, ctx context.Context) *result
}

var steps = []step{
	{idTCP, 0, (*bench).tcp},
	{idConnBB, needBEAM | needDriver, (*bench).connBB},
	{idConnEB, needBEAM, (*bench).connEB},
	{idConnOB, needBEAM | needOurs, (*bench).connOB},
	{idConnOO, needOurs, (*bench).connOO},
	{idPingBB, needBEAM | needDriver, (*bench).pingBB},
	{idPingEB, needBEAM, (*bench).pingEB},
	{idPingOB, needBEAM | needOurs, (*bench).pingOB},
	{idPingBO, needDriver | needOurs, (*bench).pingBO},
	{idPingOO, needOurs, (*bench).pingOO},
	{idTputOB, needBEAM | needOurs, (*bench).tputOB},
	{idTputEB, needBEAM, (*bench).tputEB},
	{idTputOO, needOurs, (*bench).tputOO},
	{idMsgBB1, needServe, func(b *bench, ctx context.Context) *result { return b.msgBEAM(ctx, b.beamName(), 1) }},
	{idMsgBB16, needServe, func(b *bench, ctx context.Context) *result { return b.msgBEAM(ctx, b.beamName(), 16) }},
	{idMsgBO1, needDriver | needOurs, func(b *bench, ctx context.Context) *result { return b.msgBEAM(ctx, b.gb.Self(), 1) }},
	{idMsgBO16, needDriver | needOurs, func(b *bench, ctx context.Context) *result { return b.msgBEAM(ctx, b.gb.Self(), 16) }},
	{idMsgOB1, needServe | needOurs, func(b *bench, ctx context.Context) *result { return b.msgOurs(ctx, 1) }},
	{idMsgOB16, needServe | needOurs, func(b *bench, ctx context.Context) *result { return b.msgOurs(ctx, 16) }},
	{idMsgEB1, needServe, func(b *bench, ctx context.Context) *result { return b.msgErgo(ctx, 1) }},
	{idMsgEB16, needServe, func(b *bench, ctx context.Context) *result { return b.msgErgo(ctx, 16) }},
	{idCallBB, needServe, func(b *bench, ctx context.Context) *result { return b.callBEAM(ctx, b.beamName(), nil) }},
	{idCallBO, needDriver | needOurs, func(b *bench, ctx context.Context) *result { return b.callBEAM(ctx, b.gb.Self(), nil) }},
	{idCallOB, needServe | needOurs, (*bench).callOB},
	{idCallEB, needServe, (*bench).callEB},
	{idCallBE, needDriver, (*bench).callBE},
	{idErpcBB, needServe, func(b *bench, ctx context.Context) *result { return b.erpcBEAM(ctx, b.beamName()) }},
	{idErpcBO, needDriver | needOurs, func(b *bench, ctx context.Context) *result { return b.erpcBEAM(ctx, b.gb.Self()) }},
	{idProcBEAM, needDriver, (*bench).procBEAM},
	{idHealthSeq, needSeqDriver | needHealthBEAM, (*bench).healthSeq},
	{idHealthOurs, needHealthBEAM | needOursHealth, (*bench).healthOurs},
	{idHealthGo, 0, (*bench).healthGo},
	{idMemory, 0, (*bench).memory},
	{idProcErgo, 0, (*bench).procErgo},
	{idProcOurs, 0, (*bench).procOurs},
}

// result is what one measurement produced.
type result struct {
	lat  *dist      // latency rows
	rate float64    // throughput, messaging and call rows: operations per second
	ops  int64      // operations the CPU figures are spread over (rate rows)
	cpu  []cpuPart  // CPU per operation of each process involved
	pmem []procMem  // the process-memory rows
	mem  *memResult // the memory row
	note string     // extra detail for the table
	skip string     // why it did not run
	err  error      // why it failed
}

func failed(err error) *result { return &result{err: err} }

func latency(ds []time.Duration, err error) *result {
	if err != nil {
		return failed(err)
	}
	d := distOf(ds)
	return &result{lat: &d}
}

// bench is one run: what it started, what it measured.
type bench struct {
	cfg      config
	log      io.Writer
	ps       procs
	cookie   string
	epmdPort int
	dir      string
	res      map[string]*result
	start    time.Time

	beam, drv, seqDrv *proc
	hnodes            []*proc
	ga, gb, gh        *process.Node
	info              machineInfo
}

func (b *bench) logf(format string, args ...any) {
	if b.log != nil {
		fmt.Fprintf(b.log, "[%5.1fs] "+format+"\n", append([]any{time.Since(b.start).Seconds()}, args...)...)
	}
}

func (b *bench) selected(id string) bool { return b.cfg.run == nil || b.cfg.run.MatchString(id) }

// needs returns what the selected measurements need.
func (b *bench) needs() int {
	n := 0
	for _, s := range steps {
		if b.selected(s.id) {
			n |= s.needs
		}
	}
	return n
}

// runBench runs the selected measurements and returns the report; progress
// lines go to log. The error is non-nil when the harness broke (a
// measurement failed, a process did not start) or ctx ended; the report
// then still has every figure measured so far.
func runBench(ctx context.Context, cfg config, log io.Writer) (rep *report, err error) {
	b := &bench{cfg: cfg, log: log, cookie: randomCookie(), res: map[string]*result{}, start: time.Now()}
	b.info = readMachineInfo()
	defer func() {
		b.teardown()
		rep = b.report()
	}()
	if err := b.setup(ctx); err != nil {
		return nil, err
	}
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return nil, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return nil, err
		}
		defer func() {
			pprof.StopCPUProfile()
			if cerr := f.Close(); cerr != nil && err == nil {
				err = cerr
			}
		}()
	}
	var errs []error
	for _, s := range steps {
		if !b.selected(s.id) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if s.id == idHealthGo || s.id == idMemory || s.id == idProcErgo || s.id == idProcOurs {
			b.releaseErl() // Go-only rows: nothing else running
		}
		if r, ok := b.res[s.id]; ok && r.skip != "" {
			b.logf("%-22s skipped: %s", s.id, r.skip)
			continue
		}
		b.logf("%-22s ...", s.id)
		t0 := time.Now()
		r := s.fn(b, ctx)
		b.res[s.id] = r
		if r.err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			b.logf("%-22s FAILED: %v", s.id, r.err)
			errs = append(errs, fmt.Errorf("%s: %w", s.id, r.err))
			continue
		}
		b.logf("%-22s done in %.1fs", s.id, time.Since(t0).Seconds())
	}
	return nil, errors.Join(errs...)
}

// setup starts the private epmd, the erl nodes and our nodes the selected
// measurements need, in parallel.
func (b *bench) setup(ctx context.Context) error {
	b.info.loadStart = loadAvg()
	need := b.needs()
	if need&needServe != 0 {
		need |= needBEAM | needDriver
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	b.epmdPort = port
	if need&needErl != 0 {
		if _, err := exec.LookPath("erl"); err != nil {
			b.skipNeeding(needErl, "erl not installed")
			need &^= needErl
		} else if _, err := findEpmd(); err != nil {
			b.skipNeeding(needErl, "epmd not found")
			need &^= needErl
		}
	}
	if need&needErl != 0 {
		b.info.otp = otpRelease(ctx)
		if _, err := b.ps.startEPMD(ctx, b.epmdPort); err != nil {
			return err
		}
		if b.dir, err = os.MkdirTemp("", "distribute-bench-"); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(b.dir, "bench_erl.erl"), erlDriverSrc, 0o644); err != nil {
			return err
		}
	}
	b.logf("setup: epmd on 127.0.0.1:%d, starting nodes", b.epmdPort)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	erl := func(dst **proc, e erlNode) {
		wg.Go(func() {
			p, err := b.ps.startErl(ctx, e)
			if err != nil {
				fail(err)
				return
			}
			*dst = p
		})
	}
	base := erlNode{cookie: b.cookie, epmdPort: b.epmdPort}
	if need&needBEAM != 0 {
		e := base
		e.alive, e.connectAll = uniqueName("beam"), true
		erl(&b.beam, e)
	}
	if need&needDriver != 0 {
		e := base
		e.alive, e.connectAll, e.driverDir = uniqueName("drv"), true, b.dir
		erl(&b.drv, e)
	}
	if need&needSeqDriver != 0 {
		e := base
		e.alive, e.driverDir = uniqueName("seq"), b.dir
		erl(&b.seqDrv, e)
	}
	if need&needHealthBEAM != 0 {
		b.hnodes = make([]*proc, b.cfg.beamHealthNodes)
		for i := range b.hnodes {
			e := base
			e.alive = uniqueName("h")
			erl(&b.hnodes[i], e)
		}
	}
	gonode := func(dst **process.Node, prefix string, reg *rpc.Registry) {
		wg.Go(func() {
			n, err := startGoServing(ctx, uniqueName(prefix), b.cookie, b.epmdPort, reg)
			if err != nil {
				fail(err)
				return
			}
			*dst = n
		})
	}
	if need&needOurs != 0 {
		gonode(&b.ga, "ga", nil)
		gonode(&b.gb, "gb", echoRegistry())
	}
	if need&needOursHealth != 0 {
		gonode(&b.gh, "gh", nil)
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if need&needOurs != 0 {
		if err := startServers(ctx, b.gb); err != nil {
			return err
		}
	}
	if need&needServe != 0 {
		if _, err := b.drv.call(ctx, fmt.Sprintf("{serve,'%s',%q}", b.beamName(),
			filepath.Join(b.dir, "bench_erl.erl")), time.Minute); err != nil {
			return err
		}
	}
	b.logf("setup: done")
	return nil
}

// skipNeeding marks every selected measurement needing any of what as
// skipped.
func (b *bench) skipNeeding(what int, why string) {
	for _, s := range steps {
		if b.selected(s.id) && s.needs&what != 0 {
			b.res[s.id] = &result{skip: why}
		}
	}
}

// releaseErl stops every erl node, epmd and our long-lived nodes, so the
// Go-only rows run alone.
func (b *bench) releaseErl() {
	b.ps.killAll(false)
	stopAll([]*process.Node{b.ga, b.gb, b.gh})
}

// teardown stops everything the run started.
func (b *bench) teardown() {
	b.ps.killAll(true)
	stopAll([]*process.Node{b.ga, b.gb, b.gh})
	if b.dir != "" {
		_ = os.RemoveAll(b.dir)
	}
	b.info.loadEnd = loadAvg()
}

func (b *bench) beamName() string { return b.beam.node }

// driverTimeout bounds one driver command.
const driverTimeout = 3 * time.Minute

func (b *bench) tcp(ctx context.Context) *result {
	return measured("round trip", b.pingCalls(), nil, func() *result {
		return latency(tcpFloor(ctx, b.cfg.warmPings, b.cfg.pings))
	})
}

func (b *bench) connects() int { return b.cfg.warmConnects + b.cfg.connects }

func (b *bench) connBB(ctx context.Context) *result {
	return measured("connect", b.connects(), []group{b.driverG(), b.beamG()}, func() *result {
		v, err := b.drv.call(ctx, fmt.Sprintf("{connect,'%s',%d,%d,%d}", b.beamName(),
			b.cfg.warmConnects, b.cfg.connects, b.cfg.gap.Milliseconds()), driverTimeout)
		return latency(nanos(v), err)
	})
}

// withErgo runs f on a fresh ergo node. ergo is a comparison, not the
// subject: when its node fails in a row (on a loaded machine it has
// failed a connect with "no route to node"), the row says so and the run
// goes on, as for a missing erl.
func (b *bench) withErgo(prefix string, f func(e *ergoNode) *result) *result {
	e, err := startErgo(uniqueName(prefix), b.cookie, b.epmdPort)
	if err != nil {
		return &result{skip: "ergo failed: " + err.Error()}
	}
	defer e.stop()
	r := f(e)
	if r.err != nil {
		return &result{skip: "ergo failed: " + r.err.Error()}
	}
	return r
}

func (b *bench) connEB(ctx context.Context) *result {
	return b.withErgo("ergoc", func(e *ergoNode) *result {
		return measured("connect", b.connects(), []group{b.beamG()}, func() *result {
			return latency(ergoRounds(e, ergoPings{ctx: ctx, peer: b.beamName(), warm: b.cfg.warmConnects,
				n: b.cfg.connects, connects: true, gap: b.cfg.gap}, driverTimeout))
		})
	})
}

func (b *bench) connOB(ctx context.Context) *result {
	return measured("connect", b.connects(), []group{b.beamG()}, func() *result {
		return latency(goConnects(ctx, b.ga, b.beamName(), b.cfg.warmConnects, b.cfg.connects, b.cfg.gap, nil))
	})
}

func (b *bench) connOO(ctx context.Context) *result {
	self := b.ga.Self()
	return measured("connect", b.connects(), nil, func() *result {
		return latency(goConnects(ctx, b.ga, b.gb.Self(), b.cfg.warmConnects, b.cfg.connects, b.cfg.gap,
			func() bool { return !contains(b.gb.Nodes(), self) }))
	})
}

func (b *bench) pingBB(ctx context.Context) *result {
	return measured("ping", b.pingCalls(), []group{b.driverG(), b.beamG()}, func() *result {
		v, err := b.drv.call(ctx, fmt.Sprintf("{ping,'%s',%d,%d}", b.beamName(), b.cfg.warmPings, b.cfg.pings), driverTimeout)
		return latency(nanos(v), err)
	})
}

func (b *bench) pingEB(ctx context.Context) *result {
	return b.withErgo("ergop", func(e *ergoNode) *result {
		return measured("ping", b.pingCalls(), []group{b.beamG()}, func() *result {
			return latency(ergoRounds(e, ergoPings{ctx: ctx, peer: b.beamName(), warm: b.cfg.warmPings,
				n: b.cfg.pings}, driverTimeout))
		})
	})
}

func (b *bench) pingOB(ctx context.Context) *result {
	return measured("ping", b.pingCalls(), []group{b.beamG()}, func() *result {
		return latency(goPings(ctx, b.ga, b.beamName(), b.cfg.warmPings, b.cfg.pings))
	})
}

func (b *bench) pingBO(ctx context.Context) *result {
	return measured("ping", b.pingCalls(), []group{b.driverG()}, func() *result {
		v, err := b.drv.call(ctx, fmt.Sprintf("{ping,'%s',%d,%d}", b.gb.Self(), b.cfg.warmPings, b.cfg.pings), driverTimeout)
		return latency(nanos(v), err)
	})
}

func (b *bench) pingOO(ctx context.Context) *result {
	return measured("ping", b.pingCalls(), nil, func() *result {
		return latency(goPings(ctx, b.ga, b.gb.Self(), b.cfg.warmPings, b.cfg.pings))
	})
}

func (b *bench) beamPid() int { return b.beam.pid() }

// Process groups for the CPU notes.
func (b *bench) beamG() group   { return group{"the BEAM target", []int{b.beam.pid()}, "BEAM B"} }
func (b *bench) driverG() group { return group{"the erl driver", []int{b.drv.pid()}, "BEAM D"} }
func (b *bench) healthG() group {
	g := group{name: fmt.Sprintf("the %d BEAM nodes", len(b.hnodes)), abbr: fmt.Sprintf("%d BEAM", len(b.hnodes))}
	for _, p := range b.hnodes {
		g.pids = append(g.pids, p.pid())
	}
	return g
}

// pingCalls is the number of pings a ping row makes, warm-up included
// (its CPU note spans them all).
func (b *bench) pingCalls() int { return b.cfg.warmPings + b.cfg.pings }

func (b *bench) tputOB(ctx context.Context) *result {
	return goThroughput(ctx, b.ga, b.beamName(), b.cfg.callers, b.cfg.tput, b.beamG())
}

func (b *bench) tputEB(ctx context.Context) *result {
	return b.withErgo("ergot", func(e *ergoNode) *result {
		return ergoThroughput(ctx, e, gen.ProcessID{Name: "net_kernel", Node: b.beamName()}, nil, b.cfg.callers, b.cfg.tput, b.beamG())
	})
}

func (b *bench) tputOO(ctx context.Context) *result {
	return goThroughput(ctx, b.ga, b.gb.Self(), b.cfg.callers, b.cfg.tput)
}

func (b *bench) hnames() []string {
	out := make([]string, len(b.hnodes))
	for i, p := range b.hnodes {
		out[i] = p.node
	}
	return out
}

func (b *bench) healthSeq(ctx context.Context) *result {
	quoted := make([]string, 0, len(b.hnodes))
	for _, n := range b.hnames() {
		quoted = append(quoted, "'"+n+"'")
	}
	// The driver's command also connects to the 16 nodes: the note's CPU
	// per check includes that setup spread over the checks.
	return measured("check", b.cfg.warmHealth+b.cfg.healthRuns,
		[]group{{"the erl driver", []int{b.seqDrv.pid()}, "BEAM S"}, b.healthG()}, func() *result {
			v, err := b.seqDrv.call(ctx, fmt.Sprintf("{seqhealth,[%s],%d,%d}", strings.Join(quoted, ","),
				b.cfg.warmHealth, b.cfg.healthRuns), driverTimeout)
			return latency(nanos(v), err)
		})
}

func (b *bench) healthOurs(ctx context.Context) *result {
	names := b.hnames()
	if err := connectAll(ctx, b.gh, names); err != nil {
		return failed(err)
	}
	if got := b.gh.Nodes(); !slices.Equal(got, slices.Sorted(slices.Values(names))) {
		return failed(fmt.Errorf("health node connected to %d nodes, want exactly the %d BEAM nodes", len(got), len(names)))
	}
	return measured("check", b.cfg.warmHealth+b.cfg.healthRuns, []group{b.healthG()}, func() *result {
		return latency(goHealth(ctx, b.gh, len(names), b.cfg.warmHealth, b.cfg.healthRuns))
	})
}

func (b *bench) healthGo(ctx context.Context) *result {
	port, err := freePort()
	if err != nil {
		return failed(err)
	}
	nodes, err := startMany(ctx, uniqueName("hg"), b.cookie, port, b.cfg.goHealthNodes+1)
	if err != nil {
		return failed(err)
	}
	defer stopAll(nodes)
	names := make([]string, 0, len(nodes)-1)
	for _, n := range nodes[1:] {
		names = append(names, n.Self())
	}
	if err := connectAll(ctx, nodes[0], names); err != nil {
		return failed(err)
	}
	return measured("check", b.cfg.warmHealth+b.cfg.healthRuns, nil, func() *result {
		return latency(goHealth(ctx, nodes[0], len(names), b.cfg.warmHealth, b.cfg.healthRuns))
	})
}

func (b *bench) memory(ctx context.Context) *result {
	port, err := freePort()
	if err != nil {
		return failed(err)
	}
	m, err := goMemory(ctx, b.cookie, port, b.cfg.links, b.cfg.hold)
	if err != nil {
		return failed(err)
	}
	return &result{mem: m}
}
