package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"

	runner "github.com/distribute-go/distribute/internal/procs"
)

// dist summarizes a set of durations.
type dist struct {
	n             int
	p50, p99, max time.Duration
}

// distOf sorts ds and returns its nearest-rank percentiles.
func distOf(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return dist{n: len(s), p50: pct(s, 50), p99: pct(s, 99), max: s[len(s)-1]}
}

// pct is the nearest-rank percentile q of sorted s.
func pct(s []time.Duration, q int) time.Duration {
	i := (q*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

// nanos converts nanosecond integers (from the Erlang driver) to durations.
func nanos(v []int64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x)
	}
	return out
}

// fmtDur prints a duration with three significant digits in a fixed unit.
func fmtDur(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/1e6)
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d >= 100*time.Microsecond:
		return fmt.Sprintf("%.0f us", float64(d)/1e3)
	default:
		return fmt.Sprintf("%.1f us", float64(d)/1e3)
	}
}

// fmtRate prints calls per second.
func fmtRate(r float64) string {
	if r >= 1000 {
		return fmt.Sprintf("%.1fk/s", r/1000)
	}
	return fmt.Sprintf("%.0f/s", r)
}

// uniqueName returns a node alive part unique to this run: prefix, pid,
// a counter and random hex, all in [0-9A-Za-z_] (runner.UniqueName).
func uniqueName(prefix string) string { return runner.UniqueName(prefix) }

// randomCookie returns a fresh cookie; it is never printed.
func randomCookie() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "B" + hex.EncodeToString(b[:])
}

// fmtCount writes n with thousands separators.
func fmtCount(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
