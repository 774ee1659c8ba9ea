package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ergo-services/ergo"
	"github.com/ergo-services/ergo/etf"
	"github.com/ergo-services/ergo/gen"
	"github.com/ergo-services/ergo/lib"
	ergonode "github.com/ergo-services/ergo/node"
	ergodist "github.com/ergo-services/ergo/proto/dist"
)

// ergoNode is an ergo v1.999.224 node set up for OTP 25: handshake
// version 6 (its default, 5, cannot dial OTP 25.0-25.2), loopback listener,
// the private EPMD (never its embedded one), anonymous metrics off (on,
// it would send a packet off the machine).
type ergoNode struct {
	n     ergonode.Node
	procs []gen.Process
}

// quietErgo turns off ergo's warnings, which it prints through the
// standard logger (flags registered on flag.CommandLine by its lib
// package).
var quietErgo = sync.OnceFunc(func() { _ = flag.CommandLine.Set("ergo.warning", "false") })

func startErgo(alive, cookie string, epmdPort int) (*ergoNode, error) {
	quietErgo()
	opts := ergonode.Options{
		Handshake: ergodist.CreateHandshake(ergodist.HandshakeOptions{Version: ergodist.HandshakeVersion6}),
		Registrar: ergodist.CreateRegistrarWithRemoteEPMD("127.0.0.1", uint16(epmdPort)),
		Listeners: []ergonode.Listener{{Hostname: "127.0.0.1"}},
		System:    ergonode.System{DisableAnonMetrics: true},
	}
	n, err := ergo.StartNode(alive+"@127.0.0.1", cookie, opts)
	if err != nil {
		return nil, fmt.Errorf("ergo: start: %w", err)
	}
	return &ergoNode{n: n}, nil
}

func (e *ergoNode) stop() {
	e.n.Stop()
	_ = e.n.WaitWithTimeout(10 * time.Second)
}

// caller spawns one more process that makes calls on request.
func (e *ergoNode) caller() (gen.Process, error) {
	p, err := e.n.Spawn("", gen.ProcessOptions{}, &ergoCaller{node: e.n})
	if err != nil {
		return nil, fmt.Errorf("ergo: spawn: %w", err)
	}
	e.procs = append(e.procs, p)
	return p, nil
}

// ergoCaller is a gen.Server that runs a measurement loop when asked with
// Direct; the loop runs inside the process, where ergo's Call works, and
// times each call itself (the Direct hand-off is off the clock).
type ergoCaller struct {
	gen.Server
	node ergonode.Node
}

// Requests to ergoCaller.
type (
	ergoPings struct {
		ctx      context.Context
		peer     string
		warm, n  int
		connects bool          // each round from no connection (disconnect after it)
		gap      time.Duration // rest after each connect round
	}
	ergoLoad struct {
		ctx   context.Context
		to    gen.ProcessID // whom to call
		req   etf.Term      // the request; nil: net_kernel's {is_auth, Self}
		start <-chan struct{}
		stop  *atomic.Bool
		count *atomic.Int64 // calls completed after start
	}
)

var errErgoAnswer = errors.New("ergo: is_auth call not answered with yes")

func (c *ergoCaller) isAuth(p *gen.ServerProcess, peer string) error {
	r, err := p.CallWithTimeout(gen.ProcessID{Name: "net_kernel", Node: peer},
		etf.Tuple{etf.Atom("is_auth"), etf.Atom(p.NodeName())}, 10)
	if err != nil {
		return fmt.Errorf("ergo: is_auth call: %w", err)
	}
	if r != etf.Atom("yes") {
		return fmt.Errorf("%w: %v", errErgoAnswer, r)
	}
	return nil
}

// HandleDirect runs one measurement loop.
func (c *ergoCaller) HandleDirect(p *gen.ServerProcess, ref etf.Ref, message interface{}) (interface{}, gen.DirectStatus) {
	switch m := message.(type) {
	case ergoPings:
		out := make([]time.Duration, 0, m.n)
		for i := 0; i < m.warm+m.n; i++ {
			if err := m.ctx.Err(); err != nil {
				return nil, err
			}
			t0 := time.Now()
			if err := c.isAuth(p, m.peer); err != nil {
				return nil, err
			}
			d := time.Since(t0)
			if i >= m.warm {
				out = append(out, d)
			}
			if m.connects {
				_ = c.node.Disconnect(m.peer)
				if err := waitFor(m.ctx, 2*time.Second, func() bool { return !contains(c.node.Nodes(), m.peer) }); err != nil {
					return nil, fmt.Errorf("ergo: link to %s not dropped: %w", m.peer, err)
				}
				sleepCtx(m.ctx, m.gap)
			}
		}
		return out, gen.DirectStatusOK
	case ergoLoad:
		<-m.start
		for !m.stop.Load() {
			if err := m.ctx.Err(); err != nil {
				return nil, err
			}
			if m.req == nil {
				if err := c.isAuth(p, m.to.Node); err != nil {
					return nil, err
				}
			} else if r, err := p.CallWithTimeout(m.to, m.req, 30); err != nil {
				return nil, fmt.Errorf("ergo: call %v: %w", m.to, err)
			} else if !reflect.DeepEqual(r, m.req) {
				return nil, fmt.Errorf("ergo: call %v answered %v", m.to, r)
			}
			m.count.Add(1)
		}
		return nil, gen.DirectStatusOK
	case ergoCallOnce:
		r, err := p.CallWithTimeout(m.to, m.req, 60)
		if err != nil {
			return nil, fmt.Errorf("ergo: call %v: %w", m.to, err)
		}
		return r, gen.DirectStatusOK
	case ergoSend:
		to := gen.ProcessID{Name: m.sink, Node: m.peer}
		for range m.n {
			if err := p.Send(to, m.msg); err != nil {
				return nil, fmt.Errorf("ergo: send: %w", err)
			}
		}
		return nil, gen.DirectStatusOK
	}
	return nil, lib.ErrUnsupportedRequest
}

// ergoRounds runs the ping loop (or connect rounds) on one ergo process.
func ergoRounds(e *ergoNode, req ergoPings, timeout time.Duration) ([]time.Duration, error) {
	p, err := e.caller()
	if err != nil {
		return nil, err
	}
	r, err := p.DirectWithTimeout(req, int(timeout/time.Second)+1)
	if err != nil {
		return nil, err
	}
	return r.([]time.Duration), nil
}

// ergoThroughput runs callers ergo processes making calls to peer for d
// (after a warm-up of d/5) and returns completed calls per second.
func ergoThroughput(ctx context.Context, e *ergoNode, to gen.ProcessID, req etf.Term, callers int, d time.Duration, peers ...group) *result {
	peer := to.Node
	var pids []int
	for _, g := range peers {
		pids = append(pids, g.pids...)
	}
	// Connect first: 64 processes sending to a node not yet connected race
	// in ergo's connection setup and most get "no route to node".
	if err := e.n.Connect(peer); err != nil {
		return failed(fmt.Errorf("ergo: connect: %w", err))
	}
	ps := make([]gen.Process, callers)
	for i := range ps {
		p, err := e.caller()
		if err != nil {
			return failed(err)
		}
		ps[i] = p
	}
	start := make(chan struct{})
	var stop atomic.Bool
	var count atomic.Int64
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() {
			_, errs[i] = p.DirectWithTimeout(ergoLoad{ctx: ctx, to: to, req: req, start: start, stop: &stop, count: &count},
				int((d+d/5)/time.Second)+30)
		})
	}
	close(start)
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

// ergoCallOnce asks an ergoCaller to make one call and return its answer.
type ergoCallOnce struct {
	to  gen.ProcessID
	req etf.Term
}

// ergoEcho is ergo's bench_echo: a gen.Server answering every call with
// its request.
type ergoEcho struct {
	gen.Server
}

// HandleCall answers with the request.
func (*ergoEcho) HandleCall(_ *gen.ServerProcess, _ gen.ServerFrom, message etf.Term) (etf.Term, gen.ServerStatus) {
	return message, gen.ServerStatusOK
}
