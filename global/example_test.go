package global_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/global"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

// Two visible Go nodes running global: a name registered on one is found and messaged from the
// other, as between BEAM nodes (a BEAM node in their cluster sees it with global:whereis_name).
func ExampleGlobal_Register() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a private EPMD, so the example runs anywhere
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := &epmd.Server{}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	start := func(name string) (*process.Node, *global.Global) {
		var o process.Options
		o.Node.EPMD = node.EPMDExternal
		o.Node.EPMDPort = ln.Addr().(*net.TCPAddr).Port
		o.Node.ListenAddr = "127.0.0.1"
		o.Node.Flags = handshake.FlagPublished // visible: global ignores hidden connections
		n, err := process.Start(ctx, name+"@localhost", "example-cookie", &o)
		if err != nil {
			panic(err)
		}
		g, err := global.Start(n, nil)
		if err != nil {
			panic(err)
		}
		return n, g
	}
	a, ga := start("example_a")
	defer a.Stop()
	defer ga.Stop()
	b, gb := start("example_b")
	defer b.Stop()
	defer gb.Stop()

	inbox := a.Spawn()
	ok, err := ga.Register(ctx, etf.Atom("inbox"), inbox.Pid())
	fmt.Println("registered:", ok, err)

	if err := b.Connect(ctx, a.Self()); err != nil {
		fmt.Println(err)
		return
	}
	if err := gb.Sync(ctx); err != nil { // like global:sync()
		fmt.Println(err)
		return
	}
	pid, found := gb.Whereis(etf.Atom("inbox"))
	fmt.Println("found from the other node:", found, pid == inbox.Pid())
	if _, err := gb.Send(etf.Atom("inbox"), etf.Atom("hello")); err != nil {
		fmt.Println(err)
		return
	}
	msg, err := inbox.Receive(ctx)
	fmt.Println("received:", msg, err)
	// Output:
	// registered: true <nil>
	// found from the other node: true true
	// received: hello <nil>
}
