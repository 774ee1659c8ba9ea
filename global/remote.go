package global

import (
	"context"
	"fmt"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/process"
	"github.com/distribute-go/distribute/rpc"
)

// WhereisOn asks the BEAM node nodeName where the global name is (an rpc of
// global:whereis_name/1), for a node that does not run global itself: a hidden or short-lived
// node such as a command-line tool. The node n must be able to make rpc calls (its handshake
// flags include handshake.FlagSpawn, as rpc.Registry.Configure sets).
func WhereisOn(ctx context.Context, n *process.Node, nodeName string, name etf.Term) (etf.Pid, bool, error) {
	v, err := rpc.Call(ctx, n, nodeName, "global", "whereis_name", etf.List{name})
	if err != nil {
		return etf.Pid{}, false, fmt.Errorf("global: whereis %s on %s: %w", etf.Format(name), nodeName, err)
	}
	pid, ok := v.(etf.Pid)
	return pid, ok, nil
}

// SendOn sends msg to the process registered under the global name, looked up on the BEAM node
// nodeName (see WhereisOn), from a process of n's own; it returns the pid sent to, or an error
// matching ErrNotRegistered when the name is not registered there.
func SendOn(ctx context.Context, n *process.Node, nodeName string, name, msg etf.Term) (etf.Pid, error) {
	pid, ok, err := WhereisOn(ctx, n, nodeName, name)
	if err != nil {
		return etf.Pid{}, err
	}
	if !ok {
		return etf.Pid{}, fmt.Errorf("global: send to %s on %s: %w", etf.Format(name), nodeName, ErrNotRegistered)
	}
	return pid, n.Send(pid, msg)
}
