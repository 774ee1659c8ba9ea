package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// machineInfo describes where the figures come from.
type machineInfo struct {
	cpus               int
	cpuModel, kernel   string
	goVersion, otp     string
	loadStart, loadEnd string
}

func readMachineInfo() machineInfo {
	m := machineInfo{cpus: runtime.NumCPU(), goVersion: runtime.Version(), cpuModel: "unknown", kernel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	return m
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// otpRelease asks erl for the full OTP version.
func otpRelease(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "erl", "-noshell", "-start_epmd", "false", "-eval",
		`R = erlang:system_info(otp_release), `+
			`V = case file:read_file(filename:join([code:root_dir(), "releases", R, "OTP_VERSION"])) of `+
			`{ok, B} -> string:trim(B); _ -> R end, io:format("~s", [V]), halt().`).Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(out))
}

// report is the table of one run.
type report struct {
	info  machineInfo
	cfg   config
	res   map[string]*result
	rows  []tableRow
	notes []string
}

type tableRow struct {
	section, label, value, cpu, ref, ratio, target, verdict string
}

func (b *bench) report() *report {
	r := &report{info: b.info, cfg: b.cfg, res: b.res}
	get := func(id string) *result {
		if !b.selected(id) {
			return nil
		}
		if res, ok := b.res[id]; ok {
			return res
		}
		return &result{skip: "not run"}
	}
	// status returns the text for a result that has no figure, or "".
	status := func(res *result) string {
		switch {
		case res.skip != "":
			msg := res.skip
			if len(msg) > 100 {
				msg = msg[:100] + "..."
			}
			return "skipped: " + msg
		case res.err != nil:
			msg := res.err.Error()
			if i := strings.IndexByte(msg, '\n'); i >= 0 {
				msg = msg[:i]
			}
			if len(msg) > 100 {
				msg = msg[:100] + "..."
			}
			return "FAILED: " + msg
		}
		return ""
	}
	latText := func(res *result, pctl bool) string {
		if s := status(res); s != "" {
			return s
		}
		if pctl {
			return fmt.Sprintf("p50 %s, p99 %s (n=%d)", fmtDur(res.lat.p50), fmtDur(res.lat.p99), res.lat.n)
		}
		return fmt.Sprintf("median %s (n=%d)", fmtDur(res.lat.p50), res.lat.n)
	}
	add := func(row tableRow) { r.rows = append(r.rows, row) }
	// lat adds a latency row; with refID it adds the ratio to that row's
	// p50, judged against limit (limit 0: no target). strict: ratio must be
	// below limit, not equal.
	noted := map[string]bool{}
	lat := func(section, label, id string, pctl bool, refID, refLabel string, limit float64, strict bool, target string) {
		res := get(id)
		if res == nil {
			return
		}
		if res.note != "" && !noted[id] {
			noted[id] = true
			r.notes = append(r.notes, fmt.Sprintf("%s %s: %s.", section, label, res.note))
		}
		row := tableRow{section: section, label: label, value: latText(res, pctl), cpu: cpuText(res.cpu, goInRow(label))}
		if refID == "" {
			add(row)
			return
		}
		ref := get(refID)
		row.target = target
		if ref == nil || status(ref) != "" {
			row.ref = refLabel + ": n/a"
			add(row)
			return
		}
		row.ref = refLabel + " " + fmtDur(ref.lat.p50)
		if status(res) != "" {
			add(row)
			return
		}
		q := float64(res.lat.p50) / float64(ref.lat.p50)
		row.ratio = fmt.Sprintf("%.2fx", q)
		if pctl {
			row.ratio += fmt.Sprintf(" (p99 %.2fx)", float64(res.lat.p99)/float64(ref.lat.p99))
		}
		if limit > 0 {
			row.verdict = verdict(q < limit || (!strict && q == limit))
		}
		add(row)
	}
	const aheadErgo = "< 1x (ahead of ergo)"

	lat("connect", "BEAM->BEAM", idConnBB, false, "", "", 0, false, "")
	lat("connect", "ergo->BEAM", idConnEB, false, idConnBB, "BEAM->BEAM", 0, false, "")
	lat("connect", "ours->BEAM", idConnOB, false, idConnBB, "BEAM->BEAM", 0.5, false, "<= 0.5x")
	lat("connect", "ours->BEAM", idConnOB, false, idConnEB, "ergo->BEAM", 1, true, aheadErgo)
	lat("connect", "ours->ours", idConnOO, false, idConnBB, "BEAM->BEAM", 0.5, false, "<= 0.5x")

	lat("ping", "raw Go TCP 64 B (floor)", idTCP, true, "", "", 0, false, "")
	lat("ping", "BEAM->BEAM", idPingBB, true, "", "", 0, false, "")
	lat("ping", "ergo->BEAM", idPingEB, true, idPingBB, "BEAM->BEAM", 0, false, "")
	lat("ping", "ours->BEAM", idPingOB, true, idPingBB, "BEAM->BEAM", 0.6, false, "p50 <= 0.6x")
	lat("ping", "ours->BEAM", idPingOB, true, idPingEB, "ergo->BEAM", 1, true, "p50 "+aheadErgo)
	lat("ping", "BEAM->ours", idPingBO, true, idPingBB, "BEAM->BEAM", 0.6, false, "p50 <= 0.6x")
	// CPU the answering node spends per BEAM ping: ours (this process)
	// against the BEAM target's, each pinged by the driver D.
	if bo, bb := get(idPingBO), get(idPingBB); bo != nil && bb != nil {
		row := tableRow{section: "ping", label: "CPU per answered BEAM ping", target: "<= 0.5x"}
		ours, ok1 := cpuOf(bo.cpu, selfLabel)
		beam, ok2 := cpuOf(bb.cpu, "BEAM B")
		switch {
		case status(bo) != "":
			row.value = status(bo)
		case status(bb) != "":
			row.value = status(bb)
		case !ok1 || !ok2 || beam <= 0:
			row.value = "n/a (too few CPU ticks)"
		default:
			row.value = "ours " + fmtUs(ours)
			row.ref = "BEAM B " + fmtUs(beam)
			row.ratio = fmt.Sprintf("%.2fx", ours/beam)
			row.verdict = verdict(ours <= 0.5*beam)
		}
		add(row)
	}
	lat("ping", "ours->ours", idPingOO, true, idTCP, "raw TCP", 3, false, "p50 <= 3x")

	lat("health", "seed loop, 16 BEAM (erl)", idHealthSeq, false, "", "", 0, false, "")
	lat("health", "health.Check, 16 BEAM", idHealthOurs, false, idHealthSeq, "seed loop", 0.25, false, "<= 0.25x")
	lat("health", fmt.Sprintf("health.Check, %d Go nodes", b.cfg.goHealthNodes), idHealthGo, false, "", "", 0, false, "")

	// rateRow adds a rate row; refs are (id, label, minimum ratio) to
	// compare with; cpuWho/cpuRefWho, when set, also require this row's
	// CPU per operation of cpuWho to be below the first reference's of
	// cpuRefWho.
	type ref struct {
		id, label string
		min       float64
	}
	rateRow := func(section, label, id string, cpuWho, cpuRefWho string, refs ...ref) {
		res := get(id)
		if res == nil {
			return
		}
		if res.note != "" && !noted[id] {
			noted[id] = true
			r.notes = append(r.notes, fmt.Sprintf("%s %s: %s.", section, label, res.note))
		}
		if len(refs) == 0 {
			row := tableRow{section: section, label: label, value: status(res), cpu: cpuText(res.cpu, goInRow(label))}
			if row.value == "" {
				row.value = fmtRate(res.rate)
			}
			add(row)
			return
		}
		for i, rf := range refs {
			row := tableRow{section: section, label: label, value: status(res)}
			if i == 0 {
				row.cpu = cpuText(res.cpu, goInRow(label))
			}
			if row.value == "" {
				row.value = fmtRate(res.rate)
			}
			row.target = fmt.Sprintf(">= %gx", rf.min)
			ref := get(rf.id)
			switch {
			case ref == nil || status(ref) != "":
				row.ref = rf.label + ": n/a"
			case status(res) != "":
				row.ref = rf.label + " " + fmtRate(ref.rate)
			default:
				row.ref = rf.label + " " + fmtRate(ref.rate)
				q := res.rate / ref.rate
				row.ratio = fmt.Sprintf("%.2fx", q)
				ok := q >= rf.min
				if i == 0 && cpuWho != "" {
					row.target += ", less CPU"
					c, ok1 := cpuOf(res.cpu, cpuWho)
					rc, ok2 := cpuOf(ref.cpu, cpuRefWho)
					if ok1 && ok2 && rc > 0 {
						row.ratio += fmt.Sprintf(", CPU %.2fx (%s %s vs %s %s)", c/rc, cpuWho, fmtUs(c), cpuRefWho, fmtUs(rc))
						ok = ok && c < rc
					} else {
						row.ratio += ", CPU n/a"
					}
				}
				row.verdict = verdict(ok)
			}
			add(row)
		}
	}
	for _, k := range []string{"1", "16"} {
		senders := k + " sender"
		if k != "1" {
			senders += "s"
		}
		bb := ref{"msg/beam-beam-" + k, "BEAM->BEAM", 1}
		rateRow("messages", "BEAM->BEAM, "+senders, bb.id, "", "")
		rateRow("messages", "BEAM->ours, "+senders, "msg/beam-ours-"+k, selfLabel, "BEAM B", bb)
		rateRow("messages", "ours->BEAM, "+senders, "msg/ours-beam-"+k, selfLabel, "BEAM D", bb)
		rateRow("messages", "ergo->BEAM, "+senders, "msg/ergo-beam-"+k, "", "")
	}
	calls := fmt.Sprintf("%d callers", b.cfg.callers)
	rateRow("calls", "BEAM->BEAM, "+calls, idCallBB, "", "")
	rateRow("calls", "ergo->BEAM, "+calls, idCallEB, "", "")
	rateRow("calls", "BEAM->ergo, "+calls, idCallBE, "", "")
	rateRow("calls", "ours->BEAM, "+calls, idCallOB, "", "", ref{idCallBB, "BEAM->BEAM", 1}, ref{idCallEB, "ergo->BEAM", 1.5})
	rateRow("calls", "BEAM->ours, "+calls, idCallBO, "", "", ref{idCallBB, "BEAM->BEAM", 1}, ref{idCallBE, "BEAM->ergo", 1.5})

	rateRow("erpc", "served by BEAM, "+calls, idErpcBB, "", "")
	rateRow("erpc", "served by ours, "+calls, idErpcBO, "", "", ref{idErpcBB, "served by BEAM", 1})

	if res := get(idMemory); res != nil {
		s := status(res)
		links := b.cfg.links
		rowRSS := tableRow{section: "memory", label: "RSS per idle link (both ends)", target: "<= 64 KiB"}
		rowG := tableRow{section: "memory", label: "goroutines per idle link (both ends)"}
		rowHeld := tableRow{section: "memory", label: fmt.Sprintf("links held (%d, idle %v)", links, b.cfg.hold), target: "1,000 held"}
		if s != "" {
			rowRSS.value, rowG.value, rowHeld.value = s, s, s
		} else {
			m := res.mem
			rowRSS.value = fmt.Sprintf("%.1f KiB", m.rssPerLink/1024)
			rowRSS.verdict = verdict(m.rssPerLink <= 64*1024)
			rowG.value = fmt.Sprintf("%.2f", m.goPerLink)
			rowHeld.value = fmt.Sprintf("%d/%d", m.held, m.links)
			switch {
			case m.links < 1000:
				rowHeld.verdict = "n/a (quick)"
			default:
				rowHeld.verdict = verdict(m.held == m.links)
			}
			r.notes = append(r.notes, fmt.Sprintf("memory: %d links between a hub and %d leaf nodes in this process; "+
				"RSS %.1f MiB with the %d nodes unconnected, %.1f MiB with every link up, pinged once and idle %v; "+
				"an unconnected node (listener, EPMD registration) costs %.1f KiB and %.1f goroutines.",
				m.links, m.links, float64(m.rssBase)/(1<<20), m.links+1, float64(m.rssUp)/(1<<20), b.cfg.hold,
				m.rssPerNode/1024, m.goPerNode))
		}
		add(rowRSS)
		add(rowG)
		add(rowHeld)
	}
	for _, id := range []string{idProcBEAM, idProcErgo, idProcOurs} {
		res := get(id)
		if res == nil {
			continue
		}
		if s := status(res); s != "" {
			add(tableRow{section: "memory", label: "idle process (" + strings.TrimPrefix(id, "procmem/") + ")", value: s})
			continue
		}
		for _, m := range res.pmem {
			row := tableRow{section: "memory", label: fmt.Sprintf("per idle process, %s, %s processes", m.who, fmtCount(m.n)),
				value: fmt.Sprintf("%.0f B", m.perProc)}
			if m.who != "BEAM" {
				row.value += fmt.Sprintf(", %.2f goroutines", m.goroutines)
			}
			if m.who == "ours" {
				row.target = "<= 1 KiB"
				ok := m.perProc <= 1024
				if m.n >= 1000000 {
					row.target += ", 1,000,000 held"
					ok = ok && m.held
				}
				row.verdict = verdict(ok)
			}
			if !m.held {
				row.value += " (some exited)"
			}
			add(row)
		}
	}

	tput := func(label, id, refID string) {
		res := get(id)
		if res == nil {
			return
		}
		row := tableRow{section: "throughput", label: label, value: status(res), cpu: cpuText(res.cpu, goInRow(label))}
		if row.value == "" {
			row.value = fmtRate(res.rate)
		}
		if refID != "" {
			row.target = "> 1x (ahead of ergo)"
			ref := get(refID)
			switch {
			case ref == nil || status(ref) != "":
				row.ref = "ergo->BEAM: n/a"
			case status(res) != "":
				row.ref = "ergo->BEAM " + fmtRate(ref.rate)
			default:
				row.ref = "ergo->BEAM " + fmtRate(ref.rate)
				q := res.rate / ref.rate
				row.ratio = fmt.Sprintf("%.2fx", q)
				row.verdict = verdict(q > 1)
			}
		}
		add(row)
		if res.note != "" {
			r.notes = append(r.notes, fmt.Sprintf("throughput %s: %s.", label, res.note))
		}
	}
	tput(fmt.Sprintf("ergo->BEAM, %d callers", b.cfg.callers), idTputEB, "")
	tput(fmt.Sprintf("ours->BEAM, %d callers", b.cfg.callers), idTputOB, idTputEB)
	tput(fmt.Sprintf("ours->ours, %d callers", b.cfg.callers), idTputOO, "")
	return r
}

// goInRow reports whether a Go node of this process takes part in the row
// labelled label (its CPU then belongs in the row's CPU column).
func goInRow(label string) bool {
	return !strings.HasPrefix(label, "BEAM->BEAM") && !strings.HasPrefix(label, "seed loop") &&
		!strings.HasPrefix(label, "served by BEAM")
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

var header = []string{"section", "case", "result", "CPU per op", "reference", "ratio", "target", "verdict"}

func (r *report) params() string {
	mode := "full"
	if r.cfg.quick {
		mode = "quick"
	}
	return fmt.Sprintf("mode %s: %d connect rounds (+%d warm-up), %d pings (+%d warm-up), %d health checks (+%d), "+
		"%d links, throughput and calls %v with %d callers, %d messages per messaging row, idle processes %v",
		mode, r.cfg.connects, r.cfg.warmConnects, r.cfg.pings, r.cfg.warmPings,
		r.cfg.healthRuns, r.cfg.warmHealth, r.cfg.links, r.cfg.tput, r.cfg.callers, r.cfg.msgs, r.cfg.procs)
}

func (r *report) machine() string {
	otp := r.info.otp
	if otp == "" {
		otp = "not used"
	}
	return fmt.Sprintf("%d CPUs (%s), Linux %s, %s, OTP %s; load average %s at start, %s at end",
		r.info.cpus, r.info.cpuModel, r.info.kernel, r.info.goVersion, otp, r.info.loadStart, r.info.loadEnd)
}

// text renders the table for a terminal.
func (r *report) text() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%s\n%s\n\n", r.machine(), r.params())
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	prev := ""
	for _, row := range r.rows {
		sec := row.section
		if sec == prev {
			sec = ""
		}
		prev = row.section
		fmt.Fprintln(tw, strings.Join([]string{sec, row.label, row.value, row.cpu, row.ref, row.ratio, row.target, row.verdict}, "\t"))
	}
	_ = tw.Flush()
	for _, n := range r.notes {
		fmt.Fprintf(&sb, "\n%s\n", n)
	}
	return sb.String()
}

// markdown renders the table as Markdown.
func (r *report) markdown() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Machine: %s.\n\n%s.\n\n", r.machine(), r.params())
	fmt.Fprintf(&sb, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	for _, row := range r.rows {
		cells := []string{row.section, row.label, row.value, row.cpu, row.ref, row.ratio, row.target, row.verdict}
		for i, c := range cells {
			cells[i] = strings.ReplaceAll(c, "|", `\|`)
		}
		fmt.Fprintf(&sb, "| %s |\n", strings.Join(cells, " | "))
	}
	for _, n := range r.notes {
		fmt.Fprintf(&sb, "\n%s\n", n)
	}
	return sb.String()
}
