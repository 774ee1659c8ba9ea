package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

// usageError is a bad command line: exit 2 with the command's usage.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// command is one subcommand: its flags, its help text and what it does.
type command struct {
	name   string
	usage  string // the synopsis and description printed by --help, before the flags
	fs     *flag.FlagSet
	stdout io.Writer
	stderr io.Writer
}

func newCommand(name, usage string, stdout, stderr io.Writer) *command {
	fs := flag.NewFlagSet("distribute "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{name: name, usage: usage, fs: fs, stdout: stdout, stderr: stderr}
}

// printUsage writes the command's help: its text, then each flag.
func (c *command) printUsage(w io.Writer) {
	fmt.Fprint(w, strings.TrimLeft(c.usage, "\n"))
	fmt.Fprintln(w, "\nFlags (before or after the arguments; -flag and --flag are the same):")
	c.fs.VisitAll(func(f *flag.Flag) {
		arg, help := flag.UnquoteUsage(f)
		dash := "--"
		if len(f.Name) == 1 {
			dash = "-"
		}
		line := "  " + dash + f.Name
		if arg != "" {
			line += " " + arg
		}
		switch f.DefValue {
		case "", "0", "false", "0s", "[]":
		default:
			help += " (default " + f.DefValue + ")"
		}
		fmt.Fprintln(w, line)
		fmt.Fprintln(w, "        "+strings.ReplaceAll(help, "\n", "\n        "))
	})
	fmt.Fprintln(w, "  -h, --help\n        print this help")
}

// parse parses args, letting flags and positional arguments mix ("--" ends
// the flags). It returns the positional arguments, or done with the exit
// code when the command must end now (help asked: 0; bad flags: 2).
func (c *command) parse(args []string) (pos []string, code int, done bool) {
	pos, err := parseInterspersed(c.fs, args)
	if errors.Is(err, flag.ErrHelp) {
		c.printUsage(c.stdout)
		return nil, exitOK, true
	}
	if err != nil {
		return nil, c.usageFail(err), true
	}
	return pos, 0, false
}

// usageFail reports a usage error and returns exit code 2.
func (c *command) usageFail(err error) int {
	fmt.Fprintf(c.stderr, "distribute %s: %v\n", c.name, err)
	fmt.Fprintf(c.stderr, "Run 'distribute %s --help' for usage.\n", c.name)
	return exitUsage
}

// fail reports a runtime error and returns exit code 1 (2 for a usageError).
func (c *command) fail(err error) int {
	var ue *usageError
	if errors.As(err, &ue) {
		return c.usageFail(err)
	}
	fmt.Fprintf(c.stderr, "distribute %s: %v\n", c.name, err)
	return exitFail
}

func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	pos := []string{}
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// isSet reports whether the flag was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// secondsValue is a duration flag where a bare number is seconds, like
// erl_call's -timeout: "5" and "5s" are five seconds, "0.5" and "500ms"
// half a second.
type secondsValue time.Duration

func (d *secondsValue) String() string { return time.Duration(*d).String() }

func (d *secondsValue) Set(s string) error {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		if math.IsNaN(f) || math.IsInf(f, 0) || f > 1e9 {
			return errors.New("not a number of seconds")
		}
		*d = secondsValue(f * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want seconds (5) or a duration with a unit (500ms, 2m)")
	}
	*d = secondsValue(v)
	return nil
}

// tickValue is --ticktime: a whole number of seconds, at least 1, as BEAM
// takes net_ticktime ("60" or "60s").
type tickValue time.Duration

func (d *tickValue) String() string {
	if *d == 0 {
		return "60"
	}
	return strconv.Itoa(int(time.Duration(*d) / time.Second))
}

func (d *tickValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSuffix(s, "s"))
	if err != nil || n < 1 {
		return errors.New("want a whole number of seconds, at least 1, like BEAM's net_ticktime")
	}
	*d = tickValue(time.Duration(n) * time.Second)
	return nil
}

// clientFlags are the flags shared by every command that makes a node:
// its name, cookie, EPMD port, time limit and logging. Commands that only
// dial out (ping, health) use them alone; run adds runFlags.
type clientFlags struct {
	name     string
	sname    string
	cookie   string
	epmdPort int
	timeout  secondsValue
	verbose  bool
	hooks    []func(*node.Options) error // from nodeFlagHooks, for this command line
}

// nodeFlagHooks let other files of this package add flags to every command
// that makes a node (TLS, say): each hook registers its flags on fs and
// returns the function that applies their values to the node's options
// once the command line is parsed (its error, if a usageError, exits 2).
var nodeFlagHooks []func(fs *flag.FlagSet) func(*node.Options) error

const cookieHelp = "the `COOKIE` (--setcookie is the same flag, as in erl). Without it: $RELEASE_COOKIE (as an\n" +
	"Elixir release's start script sets it), else $ERLANG_COOKIE (our own convention, also used by\n" +
	"container setups; erl itself does not read it), else ~/.erlang.cookie read like erl reads it:\n" +
	"created with a random cookie and mode 0400 when missing, refused when its group or others can\n" +
	"read it. Other local users can see command-line arguments: prefer the environment or the file.\n" +
	"The cookie is never printed or logged"

func (f *clientFlags) register(fs *flag.FlagSet, defaultName string) {
	def := ""
	if defaultName != "" {
		def = " (default " + defaultName + ")"
	}
	fs.StringVar(&f.name, "name", "", "this node's long `NAME`, as for erl -name: alive@host, or alive alone for this\n"+
		"machine's fully qualified host (127.0.0.1 when every peer is on a loopback IP)"+def)
	fs.StringVar(&f.sname, "sname", "", "this node's short `NAME`, as for erl -sname: alive@host (no dots), or alive alone\n"+
		"for this machine's host name up to its first dot"+def)
	fs.StringVar(&f.cookie, "cookie", "", cookieHelp)
	fs.StringVar(&f.cookie, "setcookie", "", "the same as --cookie `COOKIE`")
	fs.IntVar(&f.epmdPort, "epmd-port", 0, "the EPMD `PORT` where peers are looked up (default $ERL_EPMD_PORT, else 4369)")
	f.timeout = secondsValue(5 * time.Second)
	fs.Var(&f.timeout, "timeout", "time `LIMIT` of each step (connect, ping): seconds like erl_call's -timeout (5),\n"+
		"or a duration with a unit (500ms, 1m)")
	fs.BoolVar(&f.verbose, "v", false, "debug logs on stderr")
	for _, h := range nodeFlagHooks {
		f.hooks = append(f.hooks, h(fs))
	}
}

// runFlags are the flags of a node that runs and can be reached.
type runFlags struct {
	clientFlags
	epmdMode   string
	listenPort int
	ticktime   tickValue
}

func (f *runFlags) register(fs *flag.FlagSet) {
	f.clientFlags.register(fs, "")
	fs.Lookup("epmd-port").Usage = "the EPMD `PORT` to register with and look peers up at (default $ERL_EPMD_PORT, else 4369)"
	fs.StringVar(&f.epmdMode, "epmd", "embedded", "EPMD `MODE`: embedded (register with the EPMD on the port, or start a pure-Go one in this\n"+
		"process when none listens), external (require a running EPMD), or none (no EPMD: listen on\n"+
		"--listen-port and expect every peer on that same port, like erl -erl_epmd_port)")
	fs.IntVar(&f.listenPort, "listen-port", 0, "the distribution listen `PORT` (default: any free port; required with --epmd none)")
	fs.Var(&f.ticktime, "ticktime", "net_ticktime in whole `SECONDS` (at least 1), as BEAM's -kernel net_ticktime; it must be the\n"+
		"same on this node and its peers. A peer silent for 0.75 to 1.25 times this is dropped")
}

// nodeConfig is what a command needs to start its node.
type nodeConfig struct {
	name   string
	cookie string
	opts   node.Options
	// process, if set, adds to the process layer's options (run serves rpc through it).
	process func(*process.Options)
}

// startNode starts the command's node. It is the one place where the CLI
// makes a node.
func startNode(ctx context.Context, cfg *nodeConfig) (*process.Node, error) {
	po := process.Options{Node: cfg.opts}
	if cfg.process != nil {
		cfg.process(&po)
	}
	return process.Start(ctx, cfg.name, cfg.cookie, &po)
}

// resolve checks the shared flags and works out the node's name, cookie
// and EPMD port. peers are the nodes the command will reach: their short or
// long style must be this node's (checked here, a usage error otherwise),
// and sets the host style of a default name. defaultAlive, if not "", names
// the node when neither --name nor --sname is given (a random suffix is
// added); otherwise one of them is required.
func (f *clientFlags) resolve(fs *flag.FlagSet, peers []string, defaultAlive string, log *slog.Logger) (*nodeConfig, error) {
	for _, p := range peers {
		if err := node.ValidateName(p); err != nil {
			return nil, usagef("bad node name: %v (want alive@host)", err)
		}
	}
	peersLong, err := targetStyle(peers)
	if err != nil {
		return nil, err
	}
	if f.timeout <= 0 {
		return nil, usagef("--timeout must be positive")
	}
	var o node.Options
	if o.EPMDPort, err = epmdPort(fs, "epmd-port", f.epmdPort); err != nil {
		return nil, err
	}
	o.Logger = log

	var name string
	switch {
	case f.name != "" && f.sname != "":
		return nil, usagef("give --name (a long name) or --sname (a short name), not both")
	case f.sname != "":
		name = f.sname
		if strings.Contains(name, "@") {
			if node.IsLongName(name) {
				return nil, usagef("--sname %s: a short name's host has no dots and is no IP (use --name for long names)", name)
			}
		} else {
			name += "@" + localHost(false, nil, false, log)
		}
	case f.name != "":
		name = f.name
		if !strings.Contains(name, "@") {
			// Like erl -name: a bare alive part gets the long host.
			name += "@" + localHost(true, peers, true, log)
		}
	default:
		if defaultAlive == "" {
			return nil, usagef("--name or --sname is required")
		}
		var b [4]byte
		_, _ = rand.Read(b[:])
		name = defaultAlive + "-" + hex.EncodeToString(b[:]) + "@" + localHost(peersLong, peers, false, log)
	}
	if err := node.ValidateName(name); err != nil {
		return nil, usagef("bad node name: %v", err)
	}
	if long := node.IsLongName(name); len(peers) > 0 && long != peersLong {
		if long {
			return nil, usagef("this node's name %s is a long name but %s is a short name: long-name and short-name nodes cannot reach each other (use --sname, or long peer names)", name, peers[0])
		}
		return nil, usagef("this node's name %s is a short name but %s is a long name: short-name and long-name nodes cannot reach each other (use --name, or short peer names)", name, peers[0])
	}
	for _, apply := range f.hooks {
		if err := apply(&o); err != nil {
			return nil, err
		}
	}
	cookie, err := resolveCookie(f.cookie)
	if err != nil {
		return nil, err
	}
	return &nodeConfig{name: name, cookie: cookie, opts: o}, nil
}

// clientConfig is resolve for a node that only dials out: it looks peers up
// at the EPMD but registers nowhere and never starts an EPMD, and listens
// on loopback only.
func (f *clientFlags) clientConfig(fs *flag.FlagSet, peers []string, log *slog.Logger) (*nodeConfig, error) {
	cfg, err := f.resolve(fs, peers, "distribute", log)
	if err != nil {
		return nil, err
	}
	cfg.opts.EPMD = node.EPMDClient
	cfg.opts.ListenAddr = "127.0.0.1"
	cfg.opts.SetupTimeout = time.Duration(f.timeout)
	return cfg, nil
}

// runConfig is resolve plus the flags of a node that runs.
func (f *runFlags) runConfig(fs *flag.FlagSet, peers []string, log *slog.Logger) (*nodeConfig, error) {
	cfg, err := f.resolve(fs, peers, "", log)
	if err != nil {
		return nil, err
	}
	o := &cfg.opts
	switch f.epmdMode {
	case "embedded":
		o.EPMD = node.EPMDEmbedded
	case "external":
		o.EPMD = node.EPMDExternal
	case "none":
		o.EPMD = node.EPMDNone
	default:
		return nil, usagef("--epmd must be embedded, external or none, not %q", f.epmdMode)
	}
	if f.listenPort < 0 || f.listenPort > 65535 {
		return nil, usagef("--listen-port %d is not a port number", f.listenPort)
	}
	if o.EPMD == node.EPMDNone && f.listenPort == 0 {
		return nil, usagef("--epmd none needs --listen-port")
	}
	o.ListenPort = f.listenPort
	o.TickTime = time.Duration(f.ticktime)
	return cfg, nil
}

// targetStyle reports whether the targets use long names; mixing short and
// long names is a usage error, as one node cannot reach both.
func targetStyle(targets []string) (long bool, err error) {
	for i, t := range targets {
		l := node.IsLongName(t)
		if i > 0 && l != long {
			return false, usagef("cannot mix short names (%s) and long names (%s): a node uses one or the other",
				pick(!l, t, targets[0]), pick(l, t, targets[0]))
		}
		long = l
	}
	return long, nil
}

func pick(first bool, a, b string) string {
	if first {
		return a
	}
	return b
}

// epmdPort returns the port given with flag name, else $ERL_EPMD_PORT,
// else 4369.
func epmdPort(fs *flag.FlagSet, name string, v int) (int, error) {
	if isSet(fs, name) {
		if v < 1 || v > 65535 {
			return 0, usagef("--%s %d is not a port number 1..65535", name, v)
		}
		return v, nil
	}
	p, err := epmd.PortFromEnv()
	if err != nil {
		return 0, usagef("%v", err)
	}
	return p, nil
}

// localHost returns this machine's host for a node name: the host name up
// to its first dot for short names (like erl -sname). For long names:
// 127.0.0.1 when every target is on a loopback address, else the fully
// qualified name (the host name if it has a dot, else its canonical name
// from the resolver), else 127.0.0.1 with a warning when warn is set.
func localHost(long bool, targets []string, warn bool, log *slog.Logger) string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "localhost"
	}
	if !long {
		short, _, _ := strings.Cut(h, ".")
		return short
	}
	if len(targets) > 0 && !slices.ContainsFunc(targets, func(t string) bool {
		_, host, _ := strings.Cut(t, "@")
		ip := net.ParseIP(host)
		return ip == nil || !ip.IsLoopback()
	}) {
		return "127.0.0.1"
	}
	if strings.Contains(h, ".") {
		return h
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if c, err := net.DefaultResolver.LookupCNAME(ctx, h); err == nil {
		if c = strings.TrimSuffix(c, "."); strings.Contains(c, ".") {
			return c
		}
	}
	level := slog.LevelDebug
	if warn {
		level = slog.LevelWarn
	}
	log.Log(context.Background(), level, "no fully qualified host name found; using 127.0.0.1 (give --name alive@host to choose)", "hostname", h)
	return "127.0.0.1"
}

// resolveCookie returns the cookie from the flag, else $RELEASE_COOKIE,
// else $ERLANG_COOKIE, else the cookie file. A cookie longer than BEAM
// takes is a usage error. Errors never contain the cookie.
func resolveCookie(flagValue string) (string, error) {
	c, src := flagValue, "--cookie"
	if c == "" {
		c, src = os.Getenv("RELEASE_COOKIE"), "$RELEASE_COOKIE"
	}
	if c == "" {
		c, src = os.Getenv("ERLANG_COOKIE"), "$ERLANG_COOKIE"
	}
	if c == "" {
		path, err := node.DefaultCookieFile()
		if err != nil {
			return "", err
		}
		c, err = node.ReadCookieFile(path)
		if errors.Is(err, node.ErrCookieFileMode) {
			return "", fmt.Errorf("%w (fix it with: chmod 400 %s)", err, path)
		}
		if err != nil {
			return "", err
		}
		src = path
	}
	if len(c) > handshake.MaxCookie {
		return "", usagef("the cookie from %s is %d bytes; at most %d", src, len(c), handshake.MaxCookie)
	}
	return c, nil
}

// newLogger returns a text logger on w: debug level when verbose, else
// level.
func newLogger(w io.Writer, verbose bool, level slog.Level) *slog.Logger {
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// noEPMDError says that no EPMD answered on a peer's host.
type noEPMDError struct {
	addr string
	err  error
}

func (e *noEPMDError) Error() string { return "no EPMD at " + e.addr + " (" + e.err.Error() + ")" }
func (e *noEPMDError) Unwrap() error { return e.err }

// probeEPMD checks that something listens on the EPMD port of host, so
// that a missing EPMD is reported as such, at once. A host that does not
// resolve is left to the connection to report.
func probeEPMD(ctx context.Context, host string, port int) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err == nil {
		return conn.Close()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return nil
	}
	if ctx.Err() != nil {
		err = errors.New("no answer in time")
	} else {
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err
			var se *os.SyscallError
			if errors.As(err, &se) {
				err = se.Err
			}
		}
	}
	return &noEPMDError{addr: addr, err: err}
}

// startClient parses the NODE arguments of a client-only command (ping,
// health) and starts the short-lived hidden node it uses: named in the
// style of the targets, looking them up at the EPMD, registered nowhere.
// It returns the node, the targets and the logger (stderr, warnings unless
// -v). When done is true the command ends with code instead (usage error,
// start failure).
func (c *command) startClient(ctx context.Context, cf *clientFlags, args []string) (n *process.Node, targets []string, log *slog.Logger, code int, done bool) {
	if targets, code, done = c.parse(args); done {
		return nil, nil, nil, code, true
	}
	if len(targets) == 0 {
		return nil, nil, nil, c.usageFail(errors.New("no NODE given")), true
	}
	n, log, code, done = c.startClientFor(ctx, cf, targets)
	return n, targets, log, code, done
}

// startClientFor starts the short-lived node of a client-only command that will reach the
// nodes peers (their names were taken from the command line already).
func (c *command) startClientFor(ctx context.Context, cf *clientFlags, peers []string) (n *process.Node, log *slog.Logger, code int, done bool) {
	log = newLogger(c.stderr, cf.verbose, slog.LevelWarn)
	cfg, err := cf.clientConfig(c.fs, peers, log)
	if err != nil {
		return nil, nil, c.fail(err), true
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Duration(cf.timeout))
	defer cancel()
	if n, err = startNode(startCtx, cfg); err != nil {
		return nil, nil, c.fail(err), true
	}
	return n, log, 0, false
}

// reachOne connects n to target and pings it, each step bounded by
// timeout, after checking that target's host has an EPMD. It returns the
// round trip, or why the target cannot be reached.
func reachOne(ctx context.Context, n *process.Node, target string, timeout time.Duration) (time.Duration, error) {
	_, host, _ := strings.Cut(target, "@")
	pctx, cancel := context.WithTimeout(ctx, timeout)
	err := probeEPMD(pctx, host, n.EPMDPort())
	cancel()
	if err != nil {
		return 0, err
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	err = n.Connect(cctx, target)
	cancel()
	if err != nil {
		return 0, err
	}
	pctx, cancel = context.WithTimeout(ctx, timeout)
	defer cancel()
	return n.PingRTT(pctx, target)
}
