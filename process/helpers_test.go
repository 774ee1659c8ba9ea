package process_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/process"
)

const testCookie = "processtestcookie"

// startGo starts a Go node with processes on the EPMD at epmdPort, stopped when the test ends.
func startGo(t *testing.T, epmdPort int, opts *process.Options) *process.Node {
	t.Helper()
	var o process.Options
	if opts != nil {
		o = *opts
	}
	o.Node.EPMDPort = epmdPort
	if o.Node.ListenAddr == "" {
		o.Node.ListenAddr = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := process.Start(ctx, erltest.UniqueName("go")+"@localhost", testCookie, &o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// recv waits for one message matching match.
func recv(t *testing.T, p *process.Process, d time.Duration, match func(etf.Term) bool) etf.Term {
	t.Helper()
	m, err := p.ReceiveMatch(ctxFor(t, d), match)
	require.NoError(t, err)
	return m
}

func tuple(t etf.Term) etf.Tuple { tt, _ := t.(etf.Tuple); return tt }

var _ = node.ErrNotConnected
