package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/gen"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
	"github.com/distribute-go/distribute/rpc"
)

// Example serves a Go function to erpc and a Go gen_server on one node, and calls both from
// another node, the way a BEAM node would reach them (erpc:call(Node, calc, add, [1, 2]) and
// gen_server:call({counter, Node}, bump)). Both nodes share a private pure-Go EPMD on a free
// port so that the example runs anywhere.
func Example() {
	if err := example(); err != nil {
		fmt.Println("error:", err)
	}
	// Output:
	// calc:add(1, 2) = 3
	// calc:nope() raised error:undef
	// counter answered 1, then 2
}

func example() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &epmd.Server{}
	go func() { _ = srv.Serve(ln) }() // Serve closes ln
	defer srv.Close()
	link := node.Options{EPMD: node.EPMDExternal, EPMDPort: ln.Addr().(*net.TCPAddr).Port, ListenAddr: "127.0.0.1"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// The serving node: Go functions by module and function name, and a gen_server.
	reg := rpc.NewRegistry()
	reg.Register("calc", "add", 2, func(ctx context.Context, args etf.List) (etf.Term, error) {
		a, ok1 := args[0].(int64)
		b, ok2 := args[1].(int64)
		if !ok1 || !ok2 {
			return nil, rpc.Error(etf.Atom("badarg"))
		}
		return a + b, nil
	})
	opts := &process.Options{Node: link}
	reg.Configure(opts) // serve erpc's spawn requests (and advertise them)
	server, err := process.Start(ctx, "server@127.0.0.1", "example-cookie", opts)
	if err != nil {
		return err
	}
	defer server.Stop()
	if _, err := reg.ServeRex(server); err != nil { // rex: rpc:call from old callers, erl_call
		return err
	}
	count := int64(0)
	if _, err := gen.StartServer(server, gen.Funcs{Call: func(_ gen.From, req etf.Term) (etf.Term, error) {
		count++
		return count, nil
	}}, &gen.ServerOptions{Name: "counter"}); err != nil {
		return err
	}

	// The calling node.
	client, err := process.Start(ctx, "client@127.0.0.1", "example-cookie", &process.Options{Node: link})
	if err != nil {
		return err
	}
	defer client.Stop()
	v, err := rpc.Call(ctx, client, "server@127.0.0.1", "calc", "add", etf.List{int64(1), int64(2)})
	if err != nil {
		return err
	}
	fmt.Println("calc:add(1, 2) =", etf.Format(v))
	_, err = rpc.Call(ctx, client, "server@127.0.0.1", "calc", "nope", nil)
	var ex *rpc.Exception
	if !errors.As(err, &ex) {
		return fmt.Errorf("want an exception, got %v", err)
	}
	fmt.Printf("calc:nope() raised %s:%s\n", ex.Class, etf.Format(ex.Reason))
	counter := process.Name{Name: "counter", Node: "server@127.0.0.1"}
	first, err := gen.Call(ctx, client, counter, etf.Atom("bump"))
	if err != nil {
		return err
	}
	second, err := gen.Call(ctx, client, counter, etf.Atom("bump"))
	if err != nil {
		return err
	}
	fmt.Printf("counter answered %s, then %s\n", etf.Format(first), etf.Format(second))
	return nil
}
