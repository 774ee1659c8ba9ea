package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/distribute-go/distribute/health"
	"github.com/distribute-go/distribute/process"
)

// checker runs the health check of `distribute run` in the background and
// keeps the last result, so that the HTTP probes answer at once.
type checker struct {
	n        *process.Node
	expected []string // the --connect peers, sorted
	timeout  time.Duration
	interval time.Duration
	m        *metrics
	kick     chan struct{} // a check is wanted now (a link went up or down)

	mu      sync.Mutex
	last    *checkResult
	connErr map[string]error // the last connect error of each expected peer, nil once connected
}

// checkResult is one finished check.
type checkResult struct {
	h       *health.ClusterHealth
	healthy bool
	why     string // why not healthy
	at      time.Time
	took    time.Duration
}

func newChecker(n *process.Node, expected []string, timeout, interval time.Duration, m *metrics) *checker {
	exp := slices.Compact(slices.Sorted(slices.Values(expected)))
	if exp == nil {
		exp = []string{} // JSON []
	}
	return &checker{
		n: n, expected: exp, timeout: timeout,
		interval: interval, m: m, kick: make(chan struct{}, 1), connErr: map[string]error{},
	}
}

// setConnErr records the outcome of the last connect to an expected peer.
func (c *checker) setConnErr(peer string, err error) {
	c.mu.Lock()
	c.connErr[peer] = err
	c.mu.Unlock()
}

// wake asks for a check soon, without waiting for it.
func (c *checker) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// loop checks at once, then every interval and after each wake, until ctx
// ends.
func (c *checker) loop(ctx context.Context) {
	t := time.NewTicker(c.interval)
	defer t.Stop()
	for {
		c.checkOnce(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
	}
}

// checkOnce runs health.Check over the connected nodes, adds the expected
// peers that are not connected as unreachable, and stores the result.
func (c *checker) checkOnce(ctx context.Context) {
	start := time.Now()
	hctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	h, err := health.Check(hctx, c.n, &health.Options{PingTimeout: c.timeout})
	if err != nil {
		return // ctx ended: the command stops
	}
	c.mu.Lock()
	for _, p := range c.expected {
		if slices.Contains(h.ConnectedNodes, p) {
			continue
		}
		msg := "not connected yet"
		if err := c.connErr[p]; err != nil {
			msg = "not connected: " + reason(err)
		}
		h.UnreachableNodes = append(h.UnreachableNodes, p)
		h.Details = append(h.Details, health.NodeStatus{Node: p, Error: msg})
	}
	c.mu.Unlock()
	slices.Sort(h.UnreachableNodes)
	slices.SortStableFunc(h.Details, func(a, b health.NodeStatus) int { return strings.Compare(a.Node, b.Node) })

	r := &checkResult{h: h, at: time.Now(), took: time.Since(start)}
	r.healthy, r.why = c.judge(h)
	c.m.observe(h, c.expected)
	c.mu.Lock()
	c.last = r
	c.mu.Unlock()
}

// judge says whether h is healthy. With expected peers (--connect), every
// one of them must be reachable, and other connections (a stray `distribute
// ping` from elsewhere, say) count for nothing either way. Without, at
// least one node must be connected and every connected node reachable.
func (c *checker) judge(h *health.ClusterHealth) (bool, string) {
	if !h.IsDistributed {
		return false, "the node is stopped"
	}
	if len(c.expected) > 0 {
		var bad []string
		for _, p := range c.expected {
			if !slices.Contains(h.ReachableNodes, p) {
				bad = append(bad, p)
			}
		}
		if len(bad) > 0 {
			return false, "expected nodes unreachable: " + strings.Join(bad, ", ")
		}
		return true, ""
	}
	if h.ConnectedCount == 0 {
		return false, "no node connected"
	}
	if len(h.UnreachableNodes) > 0 {
		return false, "unreachable: " + strings.Join(h.UnreachableNodes, ", ")
	}
	return true, ""
}

// current returns the last result and whether it is healthy now: a result
// older than two intervals plus two timeouts is stale, as if the checker
// were stuck. r is nil before the first check finished.
func (c *checker) current(now time.Time) (r *checkResult, healthy bool, why string) {
	c.mu.Lock()
	r = c.last
	c.mu.Unlock()
	switch {
	case r == nil:
		return nil, false, "no health check has finished yet"
	case now.Sub(r.at) > 2*(c.interval+c.timeout):
		return r, false, fmt.Sprintf("stale: the last health check finished %s ago", now.Sub(r.at).Round(time.Millisecond))
	}
	return r, r.healthy, r.why
}

// healthResponse is the JSON of GET /health: the last ClusterHealth with
// the verdict and its age.
type healthResponse struct {
	Healthy       bool      `json:"healthy"`
	Reason        string    `json:"reason,omitempty"`
	ExpectedNodes []string  `json:"expected_nodes"`
	CheckedAt     time.Time `json:"checked_at"`
	AgeSeconds    float64   `json:"age_seconds"`
	CheckSeconds  float64   `json:"check_seconds"`
	*health.ClusterHealth
}

func noStore(w http.ResponseWriter, contentType string) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-store")
}

// serveHealth is GET /health: the last result as JSON, 200 when healthy,
// else 503.
func (c *checker) serveHealth(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	r, healthy, why := c.current(now)
	if r == nil {
		noStore(w, "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, why+"\n")
		return
	}
	resp := healthResponse{
		Healthy: healthy, Reason: why, ExpectedNodes: c.expected, CheckedAt: r.at.UTC(),
		AgeSeconds: now.Sub(r.at).Seconds(), CheckSeconds: r.took.Seconds(), ClusterHealth: r.h,
	}
	b, err := json.Marshal(resp)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	noStore(w, "application/json")
	if !healthy {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write(append(b, '\n'))
}

// serveReady is GET /readyz: "ok" (200) when the last result is healthy,
// else 503 and the reason; both say how old the result is.
func (c *checker) serveReady(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	r, healthy, why := c.current(now)
	noStore(w, "text/plain; charset=utf-8")
	age := ""
	if r != nil {
		age = fmt.Sprintf(" (checked %s ago)", now.Sub(r.at).Round(time.Millisecond))
	}
	if !healthy {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "not ready: "+why+age+"\n")
		return
	}
	_, _ = io.WriteString(w, "ok"+age+"\n")
}
