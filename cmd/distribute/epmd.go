package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/distribute-go/distribute/epmd"
)

const namesUsage = `
Usage: distribute names [--epmd-port P] [flags] [HOST]

Lists the names registered with the EPMD on HOST (default localhost), in the
format of epmd -names:
  epmd: up and running on port P with data:
  name NAME at port PORT

Exit status: 0 on success, 1 if the EPMD cannot be reached or answers
wrongly, 2 for a usage error.
`

func cmdNames(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("names", namesUsage, stdout, stderr)
	port := c.fs.Int("epmd-port", 0, "the EPMD `PORT` (default $ERL_EPMD_PORT, else 4369)")
	timeout := c.fs.Duration("timeout", 5*time.Second, "time `LIMIT` for the request")
	verbose := c.fs.Bool("v", false, "debug logs on stderr")
	pos, code, done := c.parse(args)
	if done {
		return code
	}
	if len(pos) > 1 {
		return c.usageFail(fmt.Errorf("at most one HOST, got %d arguments", len(pos)))
	}
	if *timeout <= 0 {
		return c.usageFail(errors.New("--timeout must be positive"))
	}
	p, err := epmdPort(c.fs, "epmd-port", *port)
	if err != nil {
		return c.fail(err)
	}
	host := "localhost"
	if len(pos) == 1 {
		host = pos[0]
	}
	log := newLogger(stderr, *verbose, slog.LevelWarn)
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	log.Debug("asking EPMD for names", "host", host, "port", p)
	names, err := (&epmd.Client{Port: p}).Names(ctx, host)
	if err != nil {
		return c.fail(fmt.Errorf("cannot list names of the EPMD on %s port %d: %w", host, p, err))
	}
	fmt.Fprintf(stdout, "epmd: up and running on port %d with data:\n", p)
	for _, e := range names {
		fmt.Fprintf(stdout, "name %s at port %d\n", e.Name, e.Port)
	}
	return exitOK
}

const epmdUsage = `
Usage: distribute epmd [--port P] [--address A] [flags]

Runs the pure-Go EPMD server in the foreground until SIGINT or SIGTERM, a
drop-in for epmd (for example in a container without Erlang). Nodes
register with it, and peers look them up, as with OTP's epmd. Once up it
prints one line per listening address:
  epmd listening on ADDR:PORT

Exit status: 0 after SIGINT/SIGTERM, 1 if it cannot listen, 2 for a usage
error.
`

func cmdEPMD(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("epmd", epmdUsage, stdout, stderr)
	port := c.fs.Int("port", 0, "the `PORT` to listen on (default $ERL_EPMD_PORT, else 4369; 0 picks a free port)")
	address := c.fs.String("address", "", "comma-separated IP `ADDRESSES` to listen on, like epmd -address; 127.0.0.1 is\n"+
		"added when no loopback address is in the list (default: all interfaces)")
	verbose := c.fs.Bool("v", false, "debug logs on stderr (registrations, unregistrations, refused requests)")
	pos, code, done := c.parse(args)
	if done {
		return code
	}
	if len(pos) > 0 {
		return c.usageFail(fmt.Errorf("unexpected argument %q", pos[0]))
	}
	p := *port
	if !isSet(c.fs, "port") {
		var err error
		if p, err = epmd.PortFromEnv(); err != nil {
			return c.usageFail(err)
		}
	} else if p < 0 || p > 65535 {
		return c.usageFail(fmt.Errorf("--port %d is not a port number", p))
	}
	hosts, err := listenHosts(*address)
	if err != nil {
		return c.usageFail(err)
	}
	log := newLogger(stderr, *verbose, slog.LevelInfo)

	var lns []net.Listener
	closeAll := func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}
	for _, h := range hosts {
		ln, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(p)))
		if err != nil {
			closeAll()
			return c.fail(err)
		}
		if p == 0 { // the other addresses take the port the first one got
			p = ln.Addr().(*net.TCPAddr).Port
		}
		lns = append(lns, ln)
	}
	srv := &epmd.Server{Logger: log}
	errc := make(chan error, len(lns))
	var wg sync.WaitGroup
	for _, ln := range lns {
		fmt.Fprintf(stdout, "epmd listening on %s\n", ln.Addr())
		wg.Go(func() { errc <- srv.Serve(ln) })
	}
	code = exitOK
	select {
	case <-ctx.Done():
		log.Info("stopping EPMD")
	case err := <-errc:
		log.Error("EPMD failed", "err", err)
		code = exitFail
	}
	_ = srv.Close()
	wg.Wait()
	return code
}

// listenHosts splits --address; "" means all interfaces. Like epmd, a list
// without a loopback address gets 127.0.0.1, where nodes register.
func listenHosts(address string) ([]string, error) {
	if strings.TrimSpace(address) == "" {
		return []string{""}, nil
	}
	var hosts []string
	loopback := false
	for a := range strings.SplitSeq(address, ",") {
		a = strings.TrimSpace(a)
		ip := net.ParseIP(a)
		if ip == nil {
			return nil, fmt.Errorf("--address: %q is not an IP address", a)
		}
		loopback = loopback || ip.IsLoopback()
		if !slices.Contains(hosts, a) {
			hosts = append(hosts, a)
		}
	}
	if !loopback {
		hosts = append(hosts, "127.0.0.1")
	}
	return hosts, nil
}
