package main

import (
	"context"
	"errors"
	"net"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/health"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// Handshake failure reasons: a small fixed set, so the label stays bounded.
var handshakeReasons = []string{
	"auth", "not_allowed", "timeout", "closed", "protocol", "simultaneous",
	"name_mismatch", "not_found", "network", "other",
}

// metrics are the Prometheus metrics of `distribute run`, on a private
// registry.
type metrics struct {
	reg        *prometheus.Registry
	handshakes *prometheus.CounterVec
	linkDowns  prometheus.Counter
	rtt        prometheus.Histogram
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
		rtt: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "distribute_ping_rtt_seconds",
			Help:    "Round-trip time of the pings made by health checks (GET /health), successful pings only.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 9), // 100us .. 6.5s
		}),
	}
	m.reg.MustRegister(m.handshakes, m.linkDowns, m.rtt)
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
	switch e.Kind {
	case node.EventHandshakeOK:
		m.handshakes.WithLabelValues(dir, "ok", "ok").Inc()
	case node.EventHandshakeFailed:
		m.handshakes.WithLabelValues(dir, "failed", handshakeReason(e.Err)).Inc()
	case node.EventLinkDown:
		m.linkDowns.Inc()
	}
}

// observe records the round trips of a health check.
func (m *metrics) observe(h *health.ClusterHealth) {
	for _, d := range h.Details {
		if d.Reachable {
			m.rtt.Observe(d.RTTSeconds)
		}
	}
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
