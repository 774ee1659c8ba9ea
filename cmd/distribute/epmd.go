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
format of epmd -names. HOST is a host name or an IP address, without a port
(the port is --epmd-port); an IPv6 address may be given in brackets, [::1].
Output:
  epmd: up and running on port P with data:
  name NAME at port PORT

Exit status: 0 on success, 1 if the EPMD cannot be reached or answers
wrongly, 2 for a usage error.
`

func cmdNames(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("names", namesUsage, stdout, stderr)
	port := c.fs.Int("epmd-port", 0, "the EPMD `PORT` (default $ERL_EPMD_PORT, else 4369)")
	timeout := secondsValue(5 * time.Second)
	c.fs.Var(&timeout, "timeout", "time `LIMIT` for the request: seconds (5), or a duration with a unit (500ms)")
	verbose := c.fs.Bool("v", false, "debug logs on stderr")
	pos, code, done := c.parse(args)
	if done {
		return code
	}
	if len(pos) > 1 {
		return c.usageFail(fmt.Errorf("at most one HOST, got %d arguments", len(pos)))
	}
	if timeout <= 0 {
		return c.usageFail(errors.New("--timeout must be positive"))
	}
	p, err := epmdPort(c.fs, "epmd-port", *port)
	if err != nil {
		return c.fail(err)
	}
	host := "localhost"
	if len(pos) == 1 {
		if host, err = namesHost(pos[0]); err != nil {
			return c.usageFail(err)
		}
	}
	log := newLogger(stderr, *verbose, slog.LevelWarn)
	ctx, cancel := context.WithTimeout(ctx, time.Duration(timeout))
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
Usage: distribute epmd [-port P] [-address A] [-relaxed_command_check] [-d]
       distribute epmd -names | -kill | -stop NAME [-port P]

Runs the pure-Go EPMD server in the foreground until SIGINT or SIGTERM, a
drop-in for epmd (for example in a container without Erlang): it takes
epmd's own flags, with one dash or two. Nodes register with it, and peers
look them up, as with OTP's epmd. Once up it prints one line per listening
address:
  epmd listening on ADDR:PORT

-names, -kill and -stop NAME do not start a server; like epmd's, they ask
the EPMD on 127.0.0.1 at the port: -names prints its registered names (as
distribute names does), -kill asks it to exit, -stop NAME asks it to drop
the registration of NAME. OTP's epmd obeys -kill only when no node is
registered or when it runs with -relaxed_command_check, and -stop only with
-relaxed_command_check. This server accepts -relaxed_command_check for
compatibility but never obeys KILL or STOP requests: stop it with a signal.
-daemon is refused: this command stays in the foreground; let the service
manager or container runtime run it in the background.

Exit status: 0 after SIGINT/SIGTERM (or a successful -names, -kill, -stop),
1 if it cannot listen or the request fails, 2 for a usage error.
`

func cmdEPMD(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := newCommand("epmd", epmdUsage, stdout, stderr)
	port := c.fs.Int("port", 0, "the `PORT` to listen on, or to ask with -names/-kill/-stop (default $ERL_EPMD_PORT, else 4369;\n"+
		"0 picks a free port for the server)")
	address := c.fs.String("address", "", "comma-separated IP `ADDRESSES` to listen on, like epmd -address; 127.0.0.1 is\n"+
		"added when no loopback address is in the list (default: all interfaces)")
	names := c.fs.Bool("names", false, "print the names registered with the running EPMD, and exit")
	kill := c.fs.Bool("kill", false, "ask the running EPMD to exit")
	stopName := c.fs.String("stop", "", "ask the running EPMD to drop the registration of `NAME`")
	_ = c.fs.Bool("relaxed_command_check", false, "accepted for compatibility with epmd; this server obeys no KILL or STOP request anyway")
	daemon := c.fs.Bool("daemon", false, "refused: this command runs in the foreground")
	verbose := c.fs.Bool("v", false, "debug logs on stderr (registrations, unregistrations, refused requests)")
	c.fs.BoolVar(verbose, "d", false, "the same as -v (epmd's debug flag)")
	c.fs.BoolVar(verbose, "debug", false, "the same as -v")
	pos, code, done := c.parse(args)
	if done {
		return code
	}
	if len(pos) > 0 {
		return c.usageFail(fmt.Errorf("unexpected argument %q", pos[0]))
	}
	if *daemon {
		return c.usageFail(errors.New("-daemon is not supported: distribute epmd stays in the foreground; " +
			"run it under a service manager or a container runtime, or with & in a shell"))
	}
	actions := 0
	for _, b := range []bool{*names, *kill, *stopName != ""} {
		if b {
			actions++
		}
	}
	if actions > 1 {
		return c.usageFail(errors.New("give at most one of -names, -kill and -stop"))
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
	if actions == 1 {
		if p == 0 {
			return c.usageFail(errors.New("-port 0 names no running EPMD"))
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		switch {
		case *names:
			return epmdNames(rctx, c, p)
		case *kill:
			return epmdRequest(rctx, c, p, []byte{'k'}, map[string]string{"OK": "Killed", "NO": "Killing not allowed - living nodes in database."}, "OK")
		default:
			return epmdRequest(rctx, c, p, append([]byte{'s'}, *stopName...), map[string]string{"STOPPED": "STOPPED", "NOEXIST": "NOEXIST"}, "STOPPED")
		}
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

// epmdNames is epmd -names: the names of the EPMD on 127.0.0.1:port.
func epmdNames(ctx context.Context, c *command, port int) int {
	names, err := (&epmd.Client{Port: port}).Names(ctx, "127.0.0.1")
	if err != nil {
		return c.fail(fmt.Errorf("no EPMD answered at 127.0.0.1:%d: %w", port, err))
	}
	fmt.Fprintf(c.stdout, "epmd: up and running on port %d with data:\n", port)
	for _, e := range names {
		fmt.Fprintf(c.stdout, "name %s at port %d\n", e.Name, e.Port)
	}
	return exitOK
}

// epmdRequest sends one KILL_REQ or STOP_REQ body to the EPMD on
// 127.0.0.1:port and prints what its answer means, as epmd does; success
// is the answer that means it was obeyed.
func epmdRequest(ctx context.Context, c *command, port int, body []byte, says map[string]string, success string) int {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return c.fail(fmt.Errorf("no EPMD at %s: %w", addr, err))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	req := append([]byte{byte(len(body) >> 8), byte(len(body))}, body...)
	if _, err := conn.Write(req); err != nil {
		return c.fail(fmt.Errorf("EPMD at %s: %w", addr, err))
	}
	reply, err := io.ReadAll(io.LimitReader(conn, 64))
	if len(reply) == 0 {
		if err == nil {
			err = errors.New("it closed the connection without an answer")
		}
		return c.fail(fmt.Errorf("the EPMD at %s refused the request (OTP's epmd obeys it only with -relaxed_command_check; "+
			"distribute epmd never does): %w", addr, err))
	}
	answer := strings.TrimRight(string(reply), "\x00\n")
	msg, ok := says[answer]
	if !ok {
		msg = answer
	}
	fmt.Fprintln(c.stdout, msg)
	if answer != success {
		return exitFail
	}
	return exitOK
}

// namesHost checks the HOST argument of names: a host or IP without a
// port; [IPv6] loses its brackets. A port or a URL gets a hint.
func namesHost(arg string) (string, error) {
	if strings.Contains(arg, "://") {
		return "", fmt.Errorf("HOST %q is a URL: give the host alone, e.g. distribute names 127.0.0.1", arg)
	}
	if h, ok := strings.CutPrefix(arg, "["); ok {
		if h, ok = strings.CutSuffix(h, "]"); ok && net.ParseIP(h) != nil {
			return h, nil
		}
	}
	if net.ParseIP(arg) != nil {
		return arg, nil
	}
	if host, port, err := net.SplitHostPort(arg); err == nil {
		return "", fmt.Errorf("HOST %q has a port: give the host alone and the port with --epmd-port, e.g. distribute names --epmd-port %s %s",
			arg, port, host)
	}
	if strings.ContainsAny(arg, "[]/@ ") {
		return "", fmt.Errorf("HOST %q is not a host name or IP address", arg)
	}
	return arg, nil
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
