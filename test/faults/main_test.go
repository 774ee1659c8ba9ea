// Package faults is the fault and hostile-input suite: it attacks the real
// product (our node, our EPMD server, the distribute CLI) together with real
// erl and epmd processes, and checks that nothing is lost: slow-loris peers,
// garbage on every listening socket, a BEAM node killed mid-stream, a network
// partition between two network namespaces, an EPMD restart, connection
// storms, and wrong cookies.
//
// Each test adds rows to a shared report (what was tried, how many times,
// what survived, what was lost). Run with -args -faults.summary (or
// FAULTS_SUMMARY=1) to print the table at the end: `make faults` does.
package faults

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

var summaryFlag = flag.Bool("faults.summary", false, "print the fault suite's summary table at the end")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(summaryM{m})
}

// summaryM runs the tests, then prints the report when asked.
type summaryM struct{ m *testing.M }

func (s summaryM) Run() int {
	code := s.m.Run()
	if *summaryFlag || os.Getenv("FAULTS_SUMMARY") == "1" {
		report.print(os.Stdout)
	}
	return code
}

// row is one line of the report.
type row struct {
	test     string
	tried    string        // what was tried
	times    int           // how many times
	survived string        // what kept working
	lost     string        // what was lost: "nothing" unless the test failed
	took     time.Duration // wall time of the scenario
	failed   bool
}

// faultReport collects the rows of every test.
type faultReport struct {
	mu   sync.Mutex
	rows []*row
}

var report faultReport

// add records a scenario for t. The row is finished on t's cleanup: if t
// failed, lost says so, whatever the test claimed.
func (r *faultReport) add(t *testing.T, tried string, times int, survived string) *row {
	t.Helper()
	rw := &row{test: t.Name(), tried: tried, times: times, survived: survived, lost: "nothing"}
	start := time.Now()
	r.mu.Lock()
	r.rows = append(r.rows, rw)
	r.mu.Unlock()
	t.Cleanup(func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		rw.took = time.Since(start)
		if t.Failed() {
			rw.failed = true
			if rw.lost == "nothing" {
				rw.lost = "TEST FAILED (see its log)"
			}
		}
		if t.Skipped() && !t.Failed() {
			rw.lost = "not run (skipped)"
		}
	})
	return rw
}

// set updates a row's counts and survivors once they are known.
func (r *faultReport) set(rw *row, times int, survived string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rw.times = times
	rw.survived = survived
}

// lose records what a scenario lost (the test fails too).
func (r *faultReport) lose(rw *row, lost string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rw.lost = lost
}

func (r *faultReport) print(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cols := []string{"test", "tried", "times", "survived", "lost", "took"}
	cells := [][]string{cols}
	failed := 0
	for _, rw := range r.rows {
		if rw.failed {
			failed++
		}
		cells = append(cells, []string{rw.test, rw.tried, fmt.Sprint(rw.times), rw.survived, rw.lost,
			rw.took.Round(10 * time.Millisecond).String()})
	}
	width := make([]int, len(cols))
	for _, c := range cells {
		for i, s := range c {
			width[i] = max(width[i], len(s))
		}
	}
	fmt.Fprintf(w, "\n== fault suite summary: %d scenarios, %d failed\n", len(r.rows), failed)
	for i, c := range cells {
		var b strings.Builder
		b.WriteString("|")
		for j, s := range c {
			fmt.Fprintf(&b, " %-*s |", width[j], s)
		}
		fmt.Fprintln(w, b.String())
		if i == 0 {
			b.Reset()
			b.WriteString("|")
			for j := range c {
				b.WriteString(strings.Repeat("-", width[j]+2) + "|")
			}
			fmt.Fprintln(w, b.String())
		}
	}
}
