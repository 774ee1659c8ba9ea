package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// usage is a snapshot of CPU time and syscall counts, to say per call what
// a row costs: this process's CPU and read/write syscalls (/proc/self/io),
// and the CPU of other processes (/proc/PID/stat).
type usage struct {
	cpu          time.Duration
	reads, write int64
	ok           bool
	peers        []time.Duration // CPU of each peer pid; -1 when unreadable
}

func snapshot(peerPids ...int) usage {
	var u usage
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		u.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		u.ok = true
	}
	if b, err := os.ReadFile("/proc/self/io"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			k, v, _ := strings.Cut(line, ": ")
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			switch k {
			case "syscr":
				u.reads = n
			case "syscw":
				u.write = n
			}
		}
	} else {
		u.ok = false
	}
	for _, pid := range peerPids {
		c, ok := procCPU(pid)
		if !ok {
			c = -1
		}
		u.peers = append(u.peers, c)
	}
	return u
}

// procCPU reads utime+stime of a process (clock ticks of 10 ms, the Linux
// USER_HZ).
func procCPU(pid int) (time.Duration, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(ut+st) * 10 * time.Millisecond, true
}

// group names a set of processes whose CPU is summed in a note.
type group struct {
	name string
	pids []int
	abbr string // the name in the CPU column ("" : name)
}

func (g group) short() string {
	if g.abbr != "" {
		return g.abbr
	}
	return g.name
}

// measured runs f and notes what it cost per call (calls of them), in
// this process and in each group of processes. A calls of 0 takes the
// count from the result (r.ops).
func measured(what string, calls int, groups []group, f func() *result) *result {
	var pids []int
	for _, g := range groups {
		pids = append(pids, g.pids...)
	}
	u0 := snapshot(pids...)
	r := f()
	u1 := snapshot(pids...)
	if calls == 0 {
		calls = int(r.ops)
	}
	if r.err == nil && r.note == "" {
		r.note = perCall(u0, u1, int64(calls), what, groups...)
	}
	if r.err == nil && r.cpu == nil {
		r.cpu = cpuPer(u0, u1, int64(calls), groups...)
	}
	return r
}

// cpuPart is the CPU one process (or group) spent per operation of a row.
type cpuPart struct {
	who string
	us  float64 // microseconds per operation
	ok  bool    // enough ticks for the figure to mean something
}

// selfLabel names this process in the CPU column: every Go node of a row
// (ours) runs in it.
const selfLabel = "Go"

// cpuPer returns what this process and each group spent per call between
// a and b. /proc counts other processes' CPU in 10 ms ticks, so a group
// with less than 0.2 s in all is marked not ok.
func cpuPer(a, b usage, calls int64, groups ...group) []cpuPart {
	if calls <= 0 || !a.ok || !b.ok {
		return nil
	}
	c := float64(calls)
	self := float64(b.cpu-a.cpu) / 1e3 / c
	out := []cpuPart{{who: selfLabel, us: self, ok: true}}
	i := 0
	for _, g := range groups {
		var sum time.Duration
		ok := len(g.pids) > 0
		for range g.pids {
			if i >= len(a.peers) || i >= len(b.peers) || a.peers[i] < 0 || b.peers[i] < 0 {
				ok = false
			} else {
				sum += b.peers[i] - a.peers[i]
			}
			i++
		}
		out = append(out, cpuPart{who: g.short(), us: float64(sum) / 1e3 / c, ok: ok && sum >= 200*time.Millisecond})
	}
	return out
}

// cpuText renders the CPU column: each part's us per operation; this
// process is left out when no Go node of it takes part in the row
// (self false: BEAM->BEAM rows, the seed loop) or it did next to nothing.
func cpuText(parts []cpuPart, self bool) string {
	var out []string
	for i, p := range parts {
		switch {
		case i == 0 && (!self || p.us < 0.5 && len(parts) > 1):
			continue
		case !p.ok:
			out = append(out, p.who+" n/a")
		default:
			out = append(out, fmt.Sprintf("%s %s", p.who, fmtUs(p.us)))
		}
	}
	return strings.Join(out, ", ")
}

// cpuOf returns the part named who.
func cpuOf(parts []cpuPart, who string) (float64, bool) {
	for _, p := range parts {
		if p.who == who {
			return p.us, p.ok
		}
	}
	return 0, false
}

func fmtUs(us float64) string {
	switch {
	case us >= 1000:
		return fmt.Sprintf("%.2f ms", us/1000)
	case us >= 100:
		return fmt.Sprintf("%.0f us", us)
	case us >= 10:
		return fmt.Sprintf("%.1f us", us)
	}
	return fmt.Sprintf("%.2f us", us)
}

// perCall describes the usage between a and b spread over calls; groups
// label the peer pids given to snapshot, in order.
func perCall(a, b usage, calls int64, what string, groups ...group) string {
	if calls <= 0 || !a.ok || !b.ok {
		return ""
	}
	c := float64(calls)
	s := fmt.Sprintf("per %s: this process %.1f us CPU, %.2f write and %.2f read syscalls",
		what, float64(b.cpu-a.cpu)/1e3/c, float64(b.write-a.write)/c, float64(b.reads-a.reads)/c)
	i := 0
	for _, g := range groups {
		var sum time.Duration
		ok := len(g.pids) > 0
		for range g.pids {
			if i >= len(a.peers) || i >= len(b.peers) || a.peers[i] < 0 || b.peers[i] < 0 {
				ok = false
			} else {
				sum += b.peers[i] - a.peers[i]
			}
			i++
		}
		// /proc counts CPU in 10 ms ticks: below 0.5 s in all, the
		// figure would be mostly rounding.
		if ok && sum >= 500*time.Millisecond {
			s += fmt.Sprintf("; %s %.1f us CPU", g.name, float64(sum)/1e3/c)
		}
	}
	return s
}
