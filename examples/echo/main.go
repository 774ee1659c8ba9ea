// Command echo is the README's walkthrough of the process layer: a Go node with a process
// registered as echo that answers {From, Msg} with {echo, Msg}, monitors any pid sent to it as
// {monitor, Pid}, and prints every message it gets (DOWN messages included) as Erlang term
// text.
//
//	go run ./examples/echo -sname gopher -cookie secret
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

func main() {
	name := flag.String("sname", "gopher", "short node name: alive or alive@host")
	cookie := flag.String("cookie", os.Getenv("ERLANG_COOKIE"), "the cookie (default $ERLANG_COOKIE)")
	epmdPort := flag.Int("epmd-port", 0, "EPMD port (default $ERL_EPMD_PORT, else 4369)")
	flag.Parse()
	if err := run(*name, *cookie, *epmdPort); err != nil {
		fmt.Fprintln(os.Stderr, "echo:", err)
		os.Exit(1)
	}
}

func run(name, cookie string, epmdPort int) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cookie == "" {
		return fmt.Errorf("no cookie: give -cookie or set ERLANG_COOKIE")
	}
	if !strings.Contains(name, "@") {
		host, err := os.Hostname()
		if err != nil {
			return err
		}
		h, _, _ := strings.Cut(host, ".")
		name += "@" + h
	}
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := process.Start(startCtx, name, cookie, &process.Options{Node: node.Options{EPMDPort: epmdPort}})
	if err != nil {
		return err
	}
	defer n.Stop()

	p := n.Spawn()
	if err := p.Register("echo"); err != nil {
		return err
	}
	fmt.Println("node", n.Self(), "ready; process echo is", etf.Format(p.Pid()))
	for {
		msg, err := p.Receive(ctx)
		if err != nil {
			return nil // interrupted
		}
		fmt.Println("got", etf.Format(msg))
		t, ok := msg.(etf.Tuple)
		switch {
		case ok && len(t) == 2 && t[0] == etf.Atom("monitor"):
			if pid, ok := t[1].(etf.Pid); ok {
				if _, err := p.Monitor(pid); err != nil {
					fmt.Println("monitor failed:", err)
				}
			}
		case ok && len(t) == 2:
			if from, ok := t[0].(etf.Pid); ok {
				if err := p.Send(from, etf.Tuple{etf.Atom("echo"), t[1]}); err != nil {
					fmt.Println("reply failed:", err)
				}
			}
		}
	}
}
