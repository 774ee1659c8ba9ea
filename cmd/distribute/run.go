package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/distribute-go/distribute/health"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

const runUsage = `
Usage: distribute run --name NAME [--cookie C] [--connect NODE]... [--http ADDR] [--listen-port P] [flags]

Runs a hidden node until SIGINT or SIGTERM, then stops it cleanly (it
unregisters from EPMD and closes its links) and exits 0. Once up it prints:
  node NAME listening on port P (epmd MODE on port E)
and, with --http:
  http listening on HOST:PORT
Each --connect NODE is connected in the background; a failed or lost
connection is retried every few seconds, with a log line on stderr.
A --name without @host gets this machine's short host (like erl -sname), or
a long host when the --connect nodes use long names: 127.0.0.1 if they are
all on loopback IPs, else the fully qualified host name (127.0.0.1, with a
warning, if none is known). The --connect nodes must all use short names or
all long names.

With --http ADDR (e.g. 127.0.0.1:8080 or :8080; port 0 picks a free one)
it serves, for GET (and HEAD) only (other methods: 405; other paths: 404):
  /health   the ClusterHealth JSON of health.Check (every connected node
            pinged at once, bounded by --timeout): 200 when at least one node
            is connected and every connected node answered, else 503
  /healthz  200 "ok" while the node runs (liveness)
  /metrics  Prometheus text format: distribute_connected_nodes,
            distribute_ping_rtt_seconds (observed by /health),
            distribute_handshakes_total{direction,outcome,reason},
            distribute_link_downs_total, distribute_epmd_registered

Logs (stderr): info level, debug with -v.
Exit status: 0 after a clean stop, 1 if the node or the HTTP server cannot
start (or the HTTP server fails), 2 for a usage error.
`

// Retry timing of --connect; variables so that tests can shorten them.
var (
	connectRetryMin = time.Second
	connectRetryMax = 5 * time.Second
	connectRecheck  = 2 * time.Second // how often a connected peer's link is checked (no traffic)
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("run", runUsage, stdout, stderr)
	var nf nodeFlags
	nf.register(c.fs, "this node's `NAME` (required): alive@host, or alive alone")
	var peers stringList
	c.fs.Var(&peers, "connect", "a `NODE` to connect to and stay connected with (repeatable)")
	httpAddr := c.fs.String("http", "", "serve /health, /healthz and /metrics on `ADDR` (host:port)")
	pos, code, done := c.parse(args)
	if done {
		return code
	}
	if len(pos) > 0 {
		return c.usageFail(fmt.Errorf("unexpected argument %q (use --connect NODE)", pos[0]))
	}
	log := newLogger(stderr, nf.verbose, slog.LevelInfo)
	cfg, err := nf.resolve(c.fs, peers, "", log)
	if err != nil {
		return c.fail(err)
	}
	if slices.Contains(peers, cfg.name) {
		return c.usageFail(fmt.Errorf("--connect %s is this node itself", cfg.name))
	}

	var ln net.Listener
	if *httpAddr != "" {
		if ln, err = net.Listen("tcp", *httpAddr); err != nil {
			return c.fail(fmt.Errorf("http: %w", err))
		}
		defer ln.Close()
	}

	m := newMetrics()
	cfg.opts.OnEvent = func(e node.Event) {
		m.onEvent(e)
		switch e.Kind {
		case node.EventHandshakeOK:
			log.Info("link up", "peer", e.Peer, "inbound", e.Inbound)
		case node.EventLinkDown:
			log.Info("link down", "peer", e.Peer, "reason", e.Err)
		}
	}
	startCtx, cancel := context.WithTimeout(ctx, nf.timeout)
	n, err := process.Start(startCtx, cfg.name, cfg.cookie, &process.Options{Node: cfg.opts})
	cancel()
	if err != nil {
		return c.fail(err)
	}
	m.watchNode(n)
	fmt.Fprintf(stdout, "node %s listening on port %d (epmd %s on port %d)\n", n.Self(), n.Port(), nf.epmdMode, n.EPMDPort())

	var srv *http.Server
	serveErr := make(chan error, 1)
	if ln != nil {
		srv = newHTTPServer(n, m, nf.timeout, log)
		fmt.Fprintf(stdout, "http listening on %s\n", ln.Addr())
		go func() { serveErr <- srv.Serve(ln) }()
	}

	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, p := range peers {
		wg.Go(func() { keepConnected(runCtx, n, p, nf.timeout, log) })
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
	if err := n.Stop(); err != nil {
		log.Debug("stop", "err", err)
	}
	log.Info("stopped", "node", n.Self())
	return code
}

// keepConnected connects n to peer until ctx ends, again whenever the link
// is lost, retrying a failed attempt after 1, 2, 4, then every 5 seconds.
func keepConnected(ctx context.Context, n *process.Node, peer string, timeout time.Duration, log *slog.Logger) {
	delay := connectRetryMin
	connected := false
	for {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := n.Connect(cctx, peer)
		cancel()
		if ctx.Err() != nil {
			return
		}
		wait := connectRecheck
		switch {
		case err == nil && !connected:
			log.Info("connected", "peer", peer)
			connected, delay = true, connectRetryMin
		case err != nil:
			connected = false
			log.Warn("connect failed; will retry", "peer", peer, "reason", reason(err), "retry_in", delay)
			wait = delay
			delay = min(2*delay, connectRetryMax)
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

// newHTTPServer serves /health, /healthz and /metrics for n.
func newHTTPServer(n *process.Node, m *metrics, timeout time.Duration, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		h, err := health.Check(ctx, n, &health.Options{PingTimeout: timeout})
		if err != nil {
			http.Error(w, "health check aborted: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		m.observe(h)
		status := http.StatusOK
		if h.ConnectedCount == 0 || len(h.UnreachableNodes) > 0 {
			status = http.StatusServiceUnavailable
		}
		b, err := json.Marshal(h)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_, _ = w.Write(append(b, '\n'))
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !n.IsDistributed() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "stopped\n")
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelError),
	}))
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      timeout + 10*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}
