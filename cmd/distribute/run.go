package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/global"
	"github.com/distribute-go/distribute/health"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/pg"
	"github.com/distribute-go/distribute/process"
	"github.com/distribute-go/distribute/rpc"
)

const runUsage = `
Usage: distribute run (--name NAME | --sname NAME) [--connect NODE]... [--mailbox NAME]... [--global] [--visible] [--http ADDR] [flags]

Runs a node until SIGINT or SIGTERM, then stops it cleanly (it unregisters
from EPMD and closes its links) and exits 0. The node is hidden, like
erl_call or a jinterface node: BEAM lists it in nodes(hidden), not in
nodes(), and its global and pg never see it. With --visible it is published,
as a BEAM node is: it shows in nodes() of its peers, net_kernel:monitor_nodes
reports it, and BEAM's rex, global and pg talk to it: the node then takes
part in global (global:sync() on its peers returns, it connects to the whole
cluster as BEAM's connect_all does, and global names go both ways) and in the
default pg scope. Use --visible for a node that must be seen as a cluster member
(a health loop that pings nodes()); stay hidden for a sidecar that only
probes. The other commands (ping, send, health) are always hidden. Once up
it prints one of:
  node NAME listening on port P (embedded EPMD started on port E)
  node NAME listening on port P (existing EPMD on port E used)
  node NAME listening on port P (external EPMD on port E)
  node NAME listening on port P (no EPMD: peers expected on port P)
and, with --http:
  http listening on HOST:PORT
Each --connect NODE is connected in the background; a failed connection is
retried after 1, 2, 4, then every 5 seconds, and a lost one at once (the
node's own link-down event says so), with a log line on stderr.

Each --mailbox NAME registers a process NAME on the node that prints every
message it receives on stdout, one line per message: NAME, a space, and the
message as Erlang term text, exactly as io_lib:format("~0tp", [Msg]) prints
it (so Erlang's {NAME, Node} ! Msg and Elixir's send({NAME, Node}, msg)
show up there). With --global (needs --visible) each mailbox is also
registered as a global name, so global:send(NAME, Msg) reaches it from any
node; a name another node holds already is a failure at start.
--name and --sname take erl's meanings: --name is a long name (alive alone
gets this machine's fully qualified host, or 127.0.0.1 when every --connect
node is on a loopback IP), --sname a short one (alive alone gets the host
name up to its first dot). The --connect nodes must all be of this node's
style; anything else is a usage error.

The node serves calls from BEAM: erpc:call, rpc:call, erpc:multicall,
rpc:multicall and erl_call -a reach its built-in module distribute:
  distribute:health()   the health view, a map with self_node,
                        is_distributed, connected_nodes, connected_count,
                        reachable_nodes, unreachable_nodes and details
                        (checked when called, each ping bounded by --timeout)
  distribute:nodes()    the connected nodes
  distribute:version()  this program's version, a binary
Any other function is error:undef to the caller, as on a BEAM node.

Health runs in the background: at start, every --health-interval, and soon
after each link goes up or down, this node pings every connected node at
once (health.Check, bounded by --timeout). The node is healthy when every
--connect node is connected and answered; other connections (a distribute
ping from elsewhere) neither help nor hurt. Without --connect it is healthy
when at least one node is connected and every connected node answered.
A result older than 2 x (--health-interval + --timeout) counts as unhealthy.

With --http ADDR (host:port, :port or a bare port for all interfaces; port
0 picks a free one) it serves, for GET (and HEAD) only (other methods: 405;
other paths: 404), each at once, never waiting for a peer:
  /livez    200 "ok" while the node runs: it says nothing about the peers.
            Point Kubernetes' livenessProbe (and a startupProbe) here.
  /readyz   the last background result: 200 "ok (checked 1.2s ago)", or 503
            "not ready: REASON (checked ... ago)". Point the readinessProbe
            here; the default 1 s probe timeout is enough, as is --timeout.
  /health   the last result as JSON: the ClusterHealth fields plus
            "healthy", "reason", "expected_nodes", "checked_at",
            "age_seconds" and "check_seconds"; 200 when healthy, else 503
            (for people and dashboards)
  /healthz  the same as /livez (kept for older setups)
  /metrics  Prometheus text format: the Go and process collectors,
            distribute_build_info, distribute_connected_nodes,
            distribute_epmd_registered, distribute_peer_up{node} and
            distribute_peer_rtt_seconds{node} (from the last check, for the
            --connect and connected nodes), distribute_ping_rtt_seconds,
            distribute_ping_failures_total{node},
            distribute_nodeup_total, distribute_nodedown_total,
            distribute_handshakes_total{direction,outcome,reason},
            distribute_inbound_auth_failures_total{addr} (the peer's IP),
            distribute_link_downs_total

Logs (stderr): info level, debug with -v. An inbound connection with a wrong
cookie is logged at warn level with the peer's address, at most once every
5 s (with the number left out).
Exit status: 0 after a clean stop, 1 if the node or the HTTP server cannot
start (or the HTTP server fails), 2 for a usage error.
`

// Retry timing of --connect.
const (
	connectRetryMin = time.Second
	connectRetryMax = 5 * time.Second
	connectRecheck  = 2 * time.Second // a Connect that returned nil but left no link (it dropped at once): try again after this
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("run", runUsage, stdout, stderr)
	var rf runFlags
	rf.register(c.fs)
	var peers stringList
	c.fs.Var(&peers, "connect", "a `NODE` to connect to, stay connected with and require for health (repeatable)")
	httpAddr := c.fs.String("http", "", "serve /livez, /readyz, /health, /healthz and /metrics on `ADDR`: host:port, :port or port")
	var mailboxes stringList
	c.fs.Var(&mailboxes, "mailbox", "register a process `NAME` that prints each message it receives on stdout (repeatable)")
	visible := c.fs.Bool("visible", false, "publish the node: BEAM peers list it in nodes() and monitor_nodes reports it; it takes part in global and pg (default hidden)")
	globalNames := c.fs.Bool("global", false, "register every --mailbox NAME as a global name too (needs --visible)")
	interval := secondsValue(5 * time.Second)
	c.fs.Var(&interval, "health-interval", "time `BETWEEN` two background health checks: seconds, or a duration with a unit")
	pos, code, done := c.parse(args)
	if done {
		return code
	}
	if len(pos) > 0 {
		return c.usageFail(fmt.Errorf("unexpected argument %q (use --connect NODE)", pos[0]))
	}
	if interval <= 0 {
		return c.usageFail(fmt.Errorf("--health-interval must be positive"))
	}
	if *globalNames && !*visible {
		return c.usageFail(fmt.Errorf("--global needs --visible: global names live on published nodes"))
	}
	if *globalNames && len(mailboxes) == 0 {
		return c.usageFail(fmt.Errorf("--global registers the --mailbox names: give at least one --mailbox"))
	}
	for i, mb := range mailboxes {
		if err := validAtom(mb); err != nil {
			return c.usageFail(fmt.Errorf("--mailbox %q: %v", mb, err))
		}
		if slices.Contains(mailboxes[:i], mb) {
			return c.usageFail(fmt.Errorf("--mailbox %s given twice", mb))
		}
		if mb == "net_kernel" {
			return c.usageFail(fmt.Errorf("--mailbox net_kernel: the name is the node's own"))
		}
	}
	log := newLogger(stderr, rf.verbose, slog.LevelInfo)
	cfg, err := rf.runConfig(c.fs, peers, log)
	if err != nil {
		return c.fail(err)
	}
	cfg.opts.Visible = *visible
	if slices.Contains(peers, cfg.name) {
		return c.usageFail(fmt.Errorf("--connect %s is this node itself", cfg.name))
	}
	var addr string
	if *httpAddr != "" {
		if addr, err = httpListenAddr(*httpAddr); err != nil {
			return c.usageFail(err)
		}
	}
	timeout := time.Duration(rf.timeout)

	var ln net.Listener
	if addr != "" {
		if ln, err = net.Listen("tcp", addr); err != nil {
			return c.fail(fmt.Errorf("http: %w", err))
		}
		defer ln.Close()
	}

	m := newMetrics()
	var chk *checker
	cfg.opts.OnEvent = func(e node.Event) {
		m.onEvent(e)
		switch e.Kind {
		case node.EventHandshakeOK:
			log.Info("link up", "peer", e.Peer, "inbound", e.Inbound)
			chk.wake()
		case node.EventLinkDown:
			log.Info("link down", "peer", e.Peer, "reason", e.Err)
			chk.wake()
		}
	}
	// chk is set before the node starts, so OnEvent never sees it nil.
	chk = newChecker(nil, peers, timeout, time.Duration(interval), m)
	// The node serves erpc, rpc, multicall and erl_call (rex) for the built-in distribute module.
	reg := rpc.NewRegistry()
	rpc.RegisterDistribute(reg, rpc.Distribute{Version: versionString(), Health: func(ctx context.Context) (rpc.HealthView, error) {
		return healthView(ctx, chk.n, timeout)
	}})
	cfg.process = reg.Configure
	startCtx, cancel := context.WithTimeout(ctx, timeout)
	n, err := startNode(startCtx, cfg)
	cancel()
	if err != nil {
		return c.fail(err)
	}
	chk.n = n
	m.watchNode(n)
	if _, err := reg.ServeRex(n); err != nil {
		_ = n.Stop()
		return c.fail(fmt.Errorf("rex: %w", err))
	}
	// A visible node takes part in global (or BEAM's global:sync() would wait for it) and in
	// the default pg scope.
	var glob *global.Global
	var stops []func() // before the node stops: global and pg, last started first
	if *visible {
		if glob, err = global.Start(n, &global.Options{RPC: reg, Logger: log}); err != nil {
			_ = n.Stop()
			return c.fail(fmt.Errorf("global: %w", err))
		}
		stops = append(stops, glob.Stop)
		scope, err := pg.Start(n, "pg", &pg.Options{Logger: log})
		if err != nil {
			_ = n.Stop()
			return c.fail(fmt.Errorf("pg: %w", err))
		}
		stops = append(stops, scope.Stop)
	}
	out := &lockedWriter{w: stdout}
	for _, mb := range mailboxes {
		p, err := startMailbox(n, mb, out)
		if err != nil {
			_ = n.Stop()
			return c.fail(err)
		}
		if *globalNames {
			gctx, cancel := context.WithTimeout(ctx, timeout)
			ok, err := glob.Register(gctx, etf.Atom(mb), p.Pid())
			cancel()
			if err == nil && !ok {
				err = fmt.Errorf("the global name is taken")
			}
			if err != nil {
				_ = n.Stop()
				return c.fail(fmt.Errorf("--global %s: %w", mb, err))
			}
		}
	}
	out.printf("node %s listening on port %d (%s)\n", n.Self(), n.Port(), epmdState(n, cfg.opts.EPMD))

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { chk.loop(runCtx) })
	var srv *http.Server
	serveErr := make(chan error, 1)
	if ln != nil {
		srv = newHTTPServer(n, m, chk, log)
		out.printf("http listening on %s\n", ln.Addr())
		go func() { serveErr <- srv.Serve(ln) }()
	}
	for _, p := range peers {
		wg.Go(func() { keepConnected(runCtx, n, p, timeout, chk, log) })
	}

	code = exitOK
	select {
	case <-ctx.Done():
		log.Info("stopping", "node", n.Self())
	case err := <-serveErr:
		log.Error("http server failed", "err", err)
		code = exitFail
	}
	stop()
	wg.Wait()
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.Shutdown(sctx); err != nil {
			_ = srv.Close()
		}
		cancel()
	}
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	if err := n.Stop(); err != nil {
		log.Debug("stop", "err", err)
	}
	log.Info("stopped", "node", n.Self())
	return code
}

// epmdState says how the node found its EPMD, for the start line.
func epmdState(n *process.Node, mode node.EPMDMode) string {
	switch {
	case mode == node.EPMDNone:
		return fmt.Sprintf("no EPMD: peers expected on port %d", n.Port())
	case mode == node.EPMDExternal:
		return fmt.Sprintf("external EPMD on port %d", n.EPMDPort())
	case n.StartedEPMD():
		return fmt.Sprintf("embedded EPMD started on port %d", n.EPMDPort())
	}
	return fmt.Sprintf("existing EPMD on port %d used", n.EPMDPort())
}

// httpListenAddr turns --http into a listen address: "18082" and ":18082"
// are port 18082 on all interfaces, "host:port" is that.
func httpListenAddr(v string) (string, error) {
	if _, err := strconv.Atoi(v); err == nil {
		v = ":" + v
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "", fmt.Errorf("--http %q: want host:port, :port or a port number", v)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return "", fmt.Errorf("--http %q: %q is not a port number 0..65535", v, port)
	}
	if strings.ContainsAny(host, " /") {
		return "", fmt.Errorf("--http %q: bad host %q", v, host)
	}
	return net.JoinHostPort(host, port), nil
}

// keepConnected connects n to peer until ctx ends, again whenever the link
// is lost, retrying a failed attempt after 1, 2, 4, then every 5 seconds.
// Each outcome is recorded in chk for the health check.
func keepConnected(ctx context.Context, n *process.Node, peer string, timeout time.Duration, chk *checker, log *slog.Logger) {
	delay := connectRetryMin
	connected := false
	for {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := n.Connect(cctx, peer)
		cancel()
		if ctx.Err() != nil {
			return
		}
		chk.setConnErr(peer, err)
		wait := connectRecheck
		switch {
		case err == nil && !connected:
			log.Info("connected", "peer", peer)
			connected, delay = true, connectRetryMin
		case err != nil:
			if connected {
				chk.wake()
			}
			connected = false
			log.Warn("connect failed; will retry", "peer", peer, "reason", reason(err), "retry_in", delay)
			wait = delay
			delay = min(2*delay, connectRetryMax)
		}
		if c := n.Conn(peer); err == nil && c != nil {
			// Connected: wait for the link to go down (the node's own event), not a timer.
			select {
			case <-ctx.Done():
				return
			case <-c.Done():
				log.Warn("link lost; reconnecting", "peer", peer, "reason", c.Err())
				chk.wake()
				connected = false
				continue
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// lockedWriter serialises lines written by several goroutines (mailboxes, the start lines).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}

// startMailbox registers a process name on n that prints each message it receives on out,
// as "NAME TERM" with TERM as ~0tp prints it. It runs on the delivering goroutine, so the
// messages of one sender come out in their order.
func startMailbox(n *process.Node, name string, out *lockedWriter) (*process.Process, error) {
	p := n.SpawnHandler(func(_ *process.Process, m etf.Term) {
		out.printf("%s %s\n", name, etf.Format(m))
	})
	if err := n.Register(etf.Atom(name), p); err != nil {
		p.Exit(etf.Atom("normal"))
		return nil, fmt.Errorf("--mailbox %s: %w", name, err)
	}
	return p, nil
}

// newHTTPServer serves the probes and /metrics for n.
func newHTTPServer(n *process.Node, m *metrics, chk *checker, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	live := func(w http.ResponseWriter, r *http.Request) {
		noStore(w, "text/plain; charset=utf-8")
		if !n.IsDistributed() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "stopped\n")
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	}
	mux.HandleFunc("GET /livez", live)
	mux.HandleFunc("GET /healthz", live)
	mux.HandleFunc("GET /readyz", chk.serveReady)
	mux.HandleFunc("GET /health", chk.serveHealth)
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError),
	}))
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// healthView runs a health check for distribute:health() and returns it in the rpc package's
// terms.
func healthView(ctx context.Context, n *process.Node, timeout time.Duration) (rpc.HealthView, error) {
	h, err := health.Check(ctx, n, &health.Options{PingTimeout: timeout})
	if err != nil {
		return rpc.HealthView{}, err
	}
	v := rpc.HealthView{
		SelfNode: h.SelfNode, IsDistributed: h.IsDistributed, ConnectedNodes: h.ConnectedNodes,
		ConnectedCount: h.ConnectedCount, ReachableNodes: h.ReachableNodes, UnreachableNodes: h.UnreachableNodes,
	}
	for _, d := range h.Details {
		v.Details = append(v.Details, rpc.NodeHealth{Node: d.Node, Reachable: d.Reachable, RTTSeconds: d.RTTSeconds, Error: d.Error})
	}
	return v, nil
}
