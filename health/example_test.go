package health_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/health"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// Example starts two nodes, connects and pings one from the other, and
// checks the cluster health, handling every error. Each network step gets
// its own deadline, so a frozen peer that uses up the connect step's time
// still leaves the health check its own.
//
// The nodes share a private pure-Go EPMD on a free port so that the
// example runs anywhere; a real program leaves Options nil and uses the
// EPMD on 4369 ($ERL_EPMD_PORT), starting an embedded one when none runs.
func Example() {
	if err := example(); err != nil {
		fmt.Println("error:", err)
	}
	// Output:
	// connected: [app@127.0.0.1]
	// ping: pong
	// reachable: [app@127.0.0.1] unreachable: []
}

func example() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &epmd.Server{}
	go func() { _ = srv.Serve(ln) }() // Serve closes ln
	defer srv.Close()
	opts := &process.Options{Node: node.Options{
		EPMD: node.EPMDExternal, EPMDPort: ln.Addr().(*net.TCPAddr).Port, ListenAddr: "127.0.0.1",
	}}

	const cookie = "example-cookie"
	startCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	app, err := process.Start(startCtx, "app@127.0.0.1", cookie, opts)
	if err != nil {
		return err
	}
	defer app.Stop()
	n, err := process.Start(startCtx, "gopher@127.0.0.1", cookie, opts)
	if err != nil {
		var se *node.StartError
		if errors.As(err, &se) && se.Kind == node.AlreadyStarted {
			return fmt.Errorf("the name is taken: %w", err)
		}
		return err
	}
	defer n.Stop()

	connCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Connect(connCtx, "app@127.0.0.1"); err != nil {
		switch {
		case errors.Is(err, node.ErrNodeNotFound): // no such node at that host's EPMD
		case errors.Is(err, node.ErrConnectTimeout): // the deadline or net_setuptime passed
		case errors.Is(err, node.ErrAuth): // cookie rejected
		}
		return err
	}
	fmt.Println("connected:", n.Nodes())

	pingCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := n.PingRTT(pingCtx, "app@127.0.0.1"); err != nil {
		fmt.Println("ping: pang:", err)
	} else {
		fmt.Println("ping: pong")
	}

	checkCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	h, err := health.Check(checkCtx, n, &health.Options{PingTimeout: time.Second})
	if err != nil {
		return err // only when checkCtx was already done
	}
	fmt.Println("reachable:", h.ReachableNodes, "unreachable:", h.UnreachableNodes)
	return nil
}
