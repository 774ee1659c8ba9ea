package main

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/health"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// Handshake failure reasons: a small fixed set, so the label stays bounded.
var handshakeReasons = []string{
	"auth", "not_allowed", "timeout", "closed", "protocol", "simultaneous",
	"name_mismatch", "not_found", "network", "tls", "other",
}

// maxAuthAddrs bounds the addr label of the inbound authentication
// failures; further addresses are counted under "other".
const maxAuthAddrs = 100

// metrics are the Prometheus metrics of `distribute run`, on a private
// registry.
type metrics struct {
	reg          *prometheus.Registry
	handshakes   *prometheus.CounterVec
	linkDowns    prometheus.Counter
	nodeUps      prometheus.Counter
	nodeDowns    prometheus.Counter
	rtt          prometheus.Histogram
	peerUp       *prometheus.GaugeVec
	peerRTT      *prometheus.GaugeVec
	pingFailures *prometheus.CounterVec
	authFailures *prometheus.CounterVec
	tls          *tlsMetrics // tls.go

	mu        sync.Mutex
	authAddrs map[string]bool
	peers     map[string]float64 // the nodes with a distribute_peer_up series
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "distribute_handshakes_total",
			Help: "Distribution handshakes by direction (inbound: the peer dialled), outcome (ok, failed) and reason.",
		}, []string{"direction", "outcome", "reason"}),
		linkDowns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "distribute_link_downs_total",
			Help: "Distribution links that went down.",
		}),
		nodeUps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "distribute_nodeup_total",
			Help: "Links that came up (BEAM's nodeup), either direction.",
		}),
		nodeDowns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "distribute_nodedown_total",
			Help: "Links that went down (BEAM's nodedown).",
		}),
		rtt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "distribute_ping_rtt_seconds",
			Help:    "Round-trip time of the pings made by the background health check, successful pings only.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9), // 100us .. 6.5s
		}),
		peerUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "distribute_peer_up",
			Help: "1 if the node answered the last background health check, else 0; for the --connect nodes and the connected ones.",
		}, []string{"node"}),
		peerRTT: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "distribute_peer_rtt_seconds",
			Help: "Round-trip time of the node's ping in the last background health check (reachable nodes only).",
		}, []string{"node"}),
		pingFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "distribute_ping_failures_total",
			Help: "Failed pings of connected nodes by the background health check.",
		}, []string{"node"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "distribute_inbound_auth_failures_total",
			Help: "Inbound handshakes refused for a wrong cookie, by the peer's IP address (\"other\" beyond 100 addresses).",
		}, []string{"addr"}),
		authAddrs: map[string]bool{},
	}
	buildInfo := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "distribute_build_info",
		Help: "Always 1; the labels say which build of distribute runs.",
	}, []string{"version", "goversion"})
	buildInfo.WithLabelValues(versionString(), runtime.Version()).Set(1)
	m.reg.MustRegister(m.handshakes, m.linkDowns, m.nodeUps, m.nodeDowns, m.rtt, m.peerUp, m.peerRTT,
		m.pingFailures, m.authFailures, buildInfo,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector(),
	)
	m.tls = newTLSMetrics(m.reg)
	// Create the series up front, so they exist (at 0) before the first event.
	for _, dir := range []string{"inbound", "outbound"} {
		m.handshakes.WithLabelValues(dir, "ok", "ok")
		for _, r := range handshakeReasons {
			m.handshakes.WithLabelValues(dir, "failed", r)
		}
	}
	return m
}

// watchNode adds the gauges read from n at scrape time.
func (m *metrics) watchNode(n *process.Node) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "distribute_connected_nodes",
			Help: "Nodes connected now.",
		}, func() float64 { return float64(n.ConnectedCount()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "distribute_epmd_registered",
			Help: "1 while the node holds an EPMD registration, else 0 (always 0 with --epmd none).",
		}, func() float64 {
			if n.EPMDRegistered() {
				return 1
			}
			return 0
		}),
	)
}

// onEvent counts node events; it is node.Options.OnEvent.
func (m *metrics) onEvent(e node.Event) {
	dir := "outbound"
	if e.Inbound {
		dir = "inbound"
	}
	m.tls.observe(e)
	switch e.Kind {
	case node.EventHandshakeOK:
		m.handshakes.WithLabelValues(dir, "ok", "ok").Inc()
		m.nodeUps.Inc()
	case node.EventHandshakeFailed:
		r := handshakeReason(e.Err)
		m.handshakes.WithLabelValues(dir, "failed", r).Inc()
		if e.Inbound && r == "auth" {
			m.authFailures.WithLabelValues(m.authAddr(e.Addr)).Inc()
		}
	case node.EventLinkDown:
		m.linkDowns.Inc()
		m.nodeDowns.Inc()
	}
}

// authAddr is the addr label for a peer address: its IP, or "other" once
// maxAuthAddrs addresses have a series.
func (m *metrics) authAddr(addr string) string {
	ip, _, err := net.SplitHostPort(addr)
	if err != nil || ip == "" {
		ip = "unknown"
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.authAddrs[ip] {
		if len(m.authAddrs) >= maxAuthAddrs {
			return "other"
		}
		m.authAddrs[ip] = true
	}
	return ip
}

// observe records a background health check: the round trips, the
// per-peer gauges (for the expected and the connected nodes) and the failed
// pings of connected nodes.
func (m *metrics) observe(h *health.ClusterHealth, expected []string) {
	up := map[string]float64{}
	for _, p := range expected {
		up[p] = 0
	}
	for _, d := range h.Details {
		if d.Reachable {
			m.rtt.Observe(d.RTTSeconds)
			up[d.Node] = 1
			m.peerRTT.WithLabelValues(d.Node).Set(d.RTTSeconds)
			continue
		}
		up[d.Node] = 0
		if slices.Contains(h.ConnectedNodes, d.Node) {
			m.pingFailures.WithLabelValues(d.Node).Inc()
		}
	}
	for p, v := range up {
		m.peerUp.WithLabelValues(p).Set(v)
		if v == 0 {
			m.peerRTT.DeleteLabelValues(p)
		}
	}
	// Series of nodes gone since the last check go too (set first, delete
	// after: a scrape never sees a known node without its series).
	m.mu.Lock()
	for p := range m.peers {
		if _, ok := up[p]; !ok {
			m.peerUp.DeleteLabelValues(p)
			m.peerRTT.DeleteLabelValues(p)
		}
	}
	m.peers = up
	m.mu.Unlock()
}

// handshakeReason classifies a handshake failure by its error's identity
// (errors.Is/As), never by its text.
func handshakeReason(err error) string {
	var dns *net.DNSError
	var op *net.OpError
	var epe *epmd.ProtocolError
	switch {
	case err == nil:
		return "other"
	case errors.Is(err, handshake.ErrAuth):
		return "auth"
	case isTLSFailure(err):
		return "tls"
	case errors.Is(err, handshake.ErrNotAllowed):
		return "not_allowed"
	case errors.Is(err, handshake.ErrSimultaneous):
		return "simultaneous"
	case errors.Is(err, handshake.ErrNameMismatch):
		return "name_mismatch"
	case errors.Is(err, handshake.ErrProtocol), errors.As(err, &epe):
		return "protocol"
	case errors.Is(err, handshake.ErrTimeout), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, node.ErrConnectTimeout):
		return "timeout"
	case errors.Is(err, handshake.ErrClosed):
		return "closed"
	case errors.Is(err, epmd.ErrNotRegistered), errors.Is(err, node.ErrNodeNotFound),
		errors.As(err, &dns) && dns.IsNotFound:
		return "not_found"
	case errors.Is(err, node.ErrAuth):
		return "auth"
	case errors.Is(err, node.ErrConnectNetwork), errors.As(err, &dns), errors.As(err, &op):
		return "network"
	}
	return "other"
}
