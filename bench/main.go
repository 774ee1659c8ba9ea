// Command bench measures this project's distribution node side by side
// with BEAM (Erlang/OTP) and ergo, on this machine, in one run, and prints
// one table with ratios and a PASS/MISS column against the project's
// targets:
//
//   - connect: from no connection to the first pong (EPMD lookup,
//     handshake, ping), median over fresh connections;
//   - ping: round-trip p50 and p99 on an established link, with the raw Go
//     TCP loopback round trip of a 64-byte frame as the floor;
//   - health: one health check over 16 BEAM nodes (health.Check against
//     the seed's sequential net_adm:ping loop) and over 256 Go nodes;
//   - messages: messages per second on one link, 1 and 16 senders,
//     BEAM->ours, ours->BEAM, BEAM->BEAM and ergo->BEAM;
//   - calls: 64 concurrent gen_server calls per second, ours->BEAM,
//     BEAM->ours, BEAM->BEAM, ergo->BEAM and BEAM->ergo;
//   - memory: RSS and goroutines per idle established link, 1,000 links;
//     heap and goroutines per idle process (100,000 and 1,000,000 of ours,
//     BEAM's and ergo's next to them);
//   - throughput: pings per second with 64 concurrent callers on one link.
//
// Every row also gives the CPU each process involved spent per operation
// (getrusage for this process, /proc/PID/stat for each erl).
//
// Run it with `make bench` or `go run ./bench`. It starts a private epmd
// and erl nodes (long names on 127.0.0.1, a random cookie, a free EPMD
// port) and kills them all at the end, on error and on Ctrl-C. The
// figures are never a failure: the exit status is non-zero only when the
// harness itself breaks. Rows that need erl are skipped when it is not
// installed.
//
// Flags: -quick (fewer iterations), -o FILE (also write the table as
// Markdown), -run REGEXP (only the measurements whose id matches, e.g.
// 'ping/'), -cpuprofile FILE (a CPU profile of the measurement phase;
// combine with -run 'ping/ours|throughput/ours' to profile our ping path),
// -memprofile FILE (an allocation profile of the whole run, every
// allocation sampled).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"regexp"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"
)

func main() {
	os.Exit(realMain())
}

func realMain() int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "fewer iterations, for a smoke run")
	out := fs.String("o", "", "also write the table as Markdown to this `file`")
	run := fs.String("run", "", "only run the measurements whose id matches this `regexp` (ids: -list)")
	list := fs.Bool("list", false, "list the measurement ids and exit")
	cpu := fs.String("cpuprofile", "", "write a CPU profile of the measurement phase to this `file`")
	mem := fs.String("memprofile", "", "write an allocation profile (every allocation sampled) to this `file` at the end")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *list {
		for _, s := range steps {
			fmt.Println(s.id)
		}
		return 0
	}
	cfg := configFor(*quick)
	cfg.cpuprofile = *cpu
	if *mem != "" {
		runtime.MemProfileRate = 1
		defer func() {
			if f, err := os.Create(*mem); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				_ = f.Close()
			}
		}()
	}
	if *run != "" {
		re, err := regexp.Compile(*run)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: -run:", err)
			return 2
		}
		cfg.run = re
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// After a signal the harness unwinds (killing what it started); if
	// that takes too long, give up waiting.
	go func() {
		<-ctx.Done()
		time.Sleep(15 * time.Second)
		fmt.Fprintln(os.Stderr, "bench: interrupted, forced exit")
		os.Exit(130)
	}()

	rep, err := runBench(ctx, cfg, os.Stderr)
	if rep != nil {
		fmt.Print(rep.text())
		if *out != "" {
			if werr := os.WriteFile(*out, []byte(rep.markdown()), 0o644); werr != nil {
				fmt.Fprintln(os.Stderr, "bench:", werr)
				return 1
			}
		}
	}
	switch {
	case ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "bench: interrupted")
		return 130
	case err != nil:
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}
