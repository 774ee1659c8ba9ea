// Command distribute runs, probes and inspects Erlang distribution nodes
// with the node package: ping nodes, print the cluster health, run a node
// with an HTTP health and metrics endpoint, list EPMD names, or serve as a
// pure-Go EPMD. "distribute help" lists the commands; each has --help.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build info is used.
var version = ""

const topUsage = `distribute: an Erlang distribution node in Go.

Usage: distribute COMMAND [flags] [arguments]

Commands:
  ping     ping nodes: one line per node, "NODE pong" or "NODE pang REASON"
  health   connect to nodes and print the cluster health (table, or --json)
  send     send a term (Erlang syntax) to a registered name on a node
  call     call MODULE:FUNCTION(ARGS) on a node and print the value (erl_call -a)
  eval     evaluate Erlang expressions on a node and print the value (erl_call -e)
  run      run a node until SIGINT/SIGTERM, with optional probes (/livez,
           /readyz, /health) and /metrics over HTTP
  names    list the names registered with an EPMD, like epmd -names
  epmd     run the pure-Go EPMD server in the foreground; takes epmd's flags
  version  print the version
  help     print this help, or a command's: distribute help COMMAND

Flags may come before or after the arguments; "distribute COMMAND --help"
describes each command's flags. Exit status: 0 on success, 1 on failure,
2 for a usage error, 128+N after signal N (130 for SIGINT, 143 for SIGTERM),
except for run and epmd, which exit 0 after a clean stop on SIGINT or SIGTERM.
`

const versionUsage = `Usage: distribute version

Prints the version of distribute, and the Go version and platform it was
built for.
`

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	var got atomic.Value // the first signal
	done := make(chan struct{})
	go func() {
		select {
		case s := <-sigc:
			got.Store(s)
			signal.Stop(sigc) // a second signal has its default effect
			cancel()
		case <-done:
		}
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	close(done)
	cancel()
	if s, ok := got.Load().(syscall.Signal); ok {
		code = exitAfterSignal(os.Args[1:], code, s)
	}
	os.Exit(code)
}

// exitAfterSignal is the exit code of a command that a signal ended:
// 128 + the signal number (130 for SIGINT, 143 for SIGTERM), as shells
// report it, except for a usage error (2) and for run and epmd, for which
// SIGINT and SIGTERM are the way to stop, with exit code 0 after a clean
// stop.
func exitAfterSignal(args []string, code int, s syscall.Signal) int {
	if code == exitUsage || len(args) > 0 && (args[0] == "run" || args[0] == "epmd") {
		return code
	}
	return 128 + int(s)
}

type commandFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) int

var commands = map[string]commandFunc{
	"ping":   cmdPing,
	"send":   cmdSend,
	"call":   cmdCall,
	"eval":   cmdEval,
	"health": cmdHealth,
	"run":    cmdRun,
	"names":  cmdNames,
	"epmd":   cmdEPMD,
}

// run runs the command line args (without the program name) and returns
// the exit code. ctx ends the long-running commands (run, epmd) and
// aborts the others.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, topUsage)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if name == "help" && len(rest) > 0 {
			if f, ok := commands[rest[0]]; ok {
				return f(ctx, []string{"--help"}, stdout, stderr)
			}
			switch rest[0] {
			case "version":
				fmt.Fprint(stdout, versionUsage)
				return exitOK
			case "help":
				fmt.Fprint(stdout, topUsage)
				return exitOK
			}
			fmt.Fprintf(stderr, "distribute help: unknown command %q\n", rest[0])
			return exitUsage
		}
		fmt.Fprint(stdout, topUsage)
		return exitOK
	case "version", "-version", "--version":
		if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "--help" || rest[0] == "-help") {
			fmt.Fprint(stdout, versionUsage)
			return exitOK
		}
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "distribute version: unexpected argument %q\n", rest[0])
			return exitUsage
		}
		fmt.Fprintf(stdout, "distribute %s %s %s/%s\n", versionString(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return exitOK
	}
	f, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "distribute: unknown command %q\nRun 'distribute help' for usage.\n", name)
		return exitUsage
	}
	return f(ctx, rest, stdout, stderr)
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
