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
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/distribute-go/distribute/epmd"
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
	fmt.Fprintln(w, "\nFlags (before or after the arguments):")
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
		case "", "0", "false", "0s":
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

// nodeFlags are the flags of the commands that start a node.
type nodeFlags struct {
	name       string
	cookie     string
	epmdPort   int
	epmdMode   string
	listenPort int
	timeout    time.Duration
	ticktime   time.Duration
	verbose    bool
}

func (f *nodeFlags) register(fs *flag.FlagSet, nameHelp string) {
	fs.StringVar(&f.name, "name", "", nameHelp)
	fs.StringVar(&f.cookie, "cookie", "", "the `COOKIE` (else $ERLANG_COOKIE, else ~/.erlang.cookie, read like erl does:\n"+
		"created with a random cookie and mode 0400 when missing, refused when its group or others can read it).\n"+
		"Note that other local users can see command-line arguments; prefer $ERLANG_COOKIE or the file.\n"+
		"The cookie is never printed or logged")
	fs.IntVar(&f.epmdPort, "epmd-port", 0, "the EPMD `PORT` to register with and look peers up at (default $ERL_EPMD_PORT, else 4369)")
	fs.StringVar(&f.epmdMode, "epmd", "embedded", "EPMD `MODE`: embedded (use the EPMD on the port, or start a pure-Go one in this process\n"+
		"when none listens), external (require a running EPMD), or none (no EPMD: listen on --listen-port\n"+
		"and expect every peer on that same port, like erl -erl_epmd_port)")
	fs.IntVar(&f.listenPort, "listen-port", 0, "the distribution listen `PORT` (default: any free port; required with --epmd none)")
	fs.DurationVar(&f.timeout, "timeout", 5*time.Second, "time `LIMIT` for connecting and pinging, e.g. 500ms or 10s")
	fs.DurationVar(&f.ticktime, "ticktime", 0, "net_ticktime: a link silent for this `DURATION` is dropped (default 60s)")
	fs.BoolVar(&f.verbose, "v", false, "debug logs on stderr")
}

// nodeConfig is what a command needs to start its node.
type nodeConfig struct {
	name   string
	cookie string
	opts   node.Options
}

// resolve checks the flags and works out the node's name, cookie and
// options. targets are the nodes the command will reach: their short or
// long style sets the host of a name given without one. defaultAlive, if
// not "", names the node when --name is absent (a random suffix is added).
func (f *nodeFlags) resolve(fs *flag.FlagSet, targets []string, defaultAlive string, log *slog.Logger) (*nodeConfig, error) {
	for _, t := range targets {
		if err := node.ValidateName(t); err != nil {
			return nil, usagef("bad node name: %v (want alive@host)", err)
		}
	}
	long, err := targetStyle(targets)
	if err != nil {
		return nil, err
	}
	if f.timeout <= 0 {
		return nil, usagef("--timeout must be positive")
	}
	if f.ticktime < 0 {
		return nil, usagef("--ticktime must not be negative")
	}
	var o node.Options
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
	if o.EPMDPort, err = epmdPort(fs, "epmd-port", f.epmdPort); err != nil {
		return nil, err
	}
	if f.listenPort < 0 || f.listenPort > 65535 {
		return nil, usagef("--listen-port %d is not a port number", f.listenPort)
	}
	if o.EPMD == node.EPMDNone && f.listenPort == 0 {
		return nil, usagef("--epmd none needs --listen-port")
	}
	o.ListenPort = f.listenPort
	o.TickTime = f.ticktime
	o.Logger = log

	name := f.name
	if name == "" {
		if defaultAlive == "" {
			return nil, usagef("--name is required")
		}
		var b [4]byte
		_, _ = rand.Read(b[:])
		name = defaultAlive + "-" + hex.EncodeToString(b[:])
	}
	if !strings.Contains(name, "@") {
		// Warn when other nodes are expected to reach this one by name.
		name += "@" + localHost(long, targets, defaultAlive == "", log)
	}
	if err := node.ValidateName(name); err != nil {
		return nil, usagef("bad --name: %v", err)
	}
	cookie, err := resolveCookie(f.cookie)
	if err != nil {
		return nil, err
	}
	return &nodeConfig{name: name, cookie: cookie, opts: o}, nil
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

// resolveCookie returns the cookie from the flag, else $ERLANG_COOKIE,
// else the cookie file. Errors never contain the cookie.
func resolveCookie(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if c := os.Getenv("ERLANG_COOKIE"); c != "" {
		return c, nil
	}
	path, err := node.DefaultCookieFile()
	if err != nil {
		return "", err
	}
	c, err := node.ReadCookieFile(path)
	if errors.Is(err, node.ErrCookieFileMode) {
		return "", fmt.Errorf("%w (fix it with: chmod 400 %s)", err, path)
	}
	return c, err
}

// newLogger returns a text logger on w: debug level when verbose, else
// level.
func newLogger(w io.Writer, verbose bool, level slog.Level) *slog.Logger {
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// startForTargets parses the NODE arguments of ping and health and starts
// the short-lived hidden node they use, named in the style of the targets.
// It returns the node, the targets and the logger (stderr, warnings unless
// -v). When done is true the command ends with code instead (usage error,
// start failure).
func (c *command) startForTargets(ctx context.Context, nf *nodeFlags, args []string) (n *process.Node, targets []string, log *slog.Logger, code int, done bool) {
	if targets, code, done = c.parse(args); done {
		return nil, nil, nil, code, true
	}
	if len(targets) == 0 {
		return nil, nil, nil, c.usageFail(errors.New("no NODE given")), true
	}
	log = newLogger(c.stderr, nf.verbose, slog.LevelWarn)
	cfg, err := nf.resolve(c.fs, targets, "distribute", log)
	if err != nil {
		return nil, nil, nil, c.fail(err), true
	}
	startCtx, cancel := context.WithTimeout(ctx, nf.timeout)
	defer cancel()
	if n, err = process.Start(startCtx, cfg.name, cfg.cookie, &process.Options{Node: cfg.opts}); err != nil {
		return nil, nil, nil, c.fail(err), true
	}
	return n, targets, log, 0, false
}
