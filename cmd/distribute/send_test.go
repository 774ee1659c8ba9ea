package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/internal/erltest"
)

// sendTerm is written in Erlang syntax on the command line; erl must receive exactly it.
const sendTerm = `{hello, <<"x">>, [1,2,3], #{k => v}, "str", 'Quoted atom', -12345678901234567890, 1.5}`

// TestSendToErl: distribute send reaches a registered process of a real erl node, with the
// term intact (=:= the same term parsed by erl), on every runtime.
func TestSendToErl(t *testing.T) {
	isolate(t)
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		erl := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, Cookie: testCookie, Control: true})
		_, err := erl.Eval(`register(inbox, spawn(fun() -> receive M -> io:format("GOT ~w~n", [M =:= `+sendTerm+`]) end end)), ok`, 10*time.Second)
		require.NoError(t, err)
		out, errOut, code := runCmd(t, "send", "--cookie", testCookie, "--epmd-port", itoa(erl.Port()), erl.Node(), "inbox", sendTerm)
		require.Equal(t, exitOK, code, "stdout: %s\nstderr: %s", out, errOut)
		line, err := erl.WaitLine("GOT ", 10*time.Second)
		require.NoError(t, err)
		assert.Equal(t, "GOT true", strings.TrimSpace(line), "erl received the same term")
	})
}

// TestSendUsageErrors: a TERM that does not parse is a usage error pointing at its column;
// wrong arity and bad names too; none of them starts a node.
func TestSendUsageErrors(t *testing.T) {
	isolate(t)
	_, errOut, code := runCmd(t, "send", "--cookie", testCookie, "a@localhost", "inbox", "{ok, [1,2}")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "TERM does not parse: line 1, column 10")
	assert.Contains(t, errOut, "\n           ^", "a caret under column 10 (after two spaces of indent)")
	_, errOut, code = runCmd(t, "send", "--cookie", testCookie, "a@localhost", "inbox")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "want NODE NAME TERM")
	_, _, code = runCmd(t, "send", "--cookie", testCookie, "not-a-node", "inbox", "ok")
	assert.Equal(t, exitUsage, code)
	_, errOut, code = runCmd(t, "send", "--cookie", testCookie, "a@localhost", "", "ok")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "empty name")
}

// TestSendNoEPMD: nothing on the EPMD port is a fast failure that says so, exit 1.
func TestSendNoEPMD(t *testing.T) {
	isolate(t)
	start := time.Now()
	_, errOut, code := runCmd(t, "send", "--cookie", testCookie, "--epmd-port", itoa(freePort(t)), "a@localhost", "inbox", "ok")
	assert.Equal(t, exitFail, code)
	assert.Contains(t, errOut, "no EPMD at")
	assert.Less(t, time.Since(start), 4*time.Second)
}

// TestRunMailbox: run --mailbox NAME prints what erl and Elixir send to {NAME, Node}, one line
// per message as ~0tp prints it, in order, on every runtime.
func TestRunMailbox(t *testing.T) {
	isolate(t)
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		ep := freePort(t)
		rt.StartEPMD(t, ep)
		b := startBackground(t, "run", "--sname", uniqueAlive("mbox"), "--cookie", testCookie, "--epmd", "external",
			"--epmd-port", itoa(ep), "--mailbox", "inbox", "--mailbox", "other")
		name := strings.Fields(b.waitLine(t, "node "))[1]
		erl := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, Cookie: testCookie, EPMDPort: ep, Control: true})
		_, err := erl.Eval(`T = `+sendTerm+`, [{inbox, '`+name+`'} ! {I, T} || I <- lists:seq(1, 50)], {other, '`+name+`'} ! "caf\x{e9}", io:format("WANT ~0tp~n", [{50, T}])`, 10*time.Second)
		require.NoError(t, err)
		want, err := erl.WaitLine("WANT ", 5*time.Second)
		require.NoError(t, err)
		last := b.waitLine(t, "inbox {50,")
		assert.Equal(t, "inbox "+strings.TrimSpace(strings.TrimPrefix(want, "WANT ")), last, "printed exactly as ~0tp")
		assert.Equal(t, `other "café"`, b.waitLine(t, "other "))
		var seen []string
		for l := range strings.Lines(b.stdout.String()) {
			if strings.HasPrefix(l, "inbox {") {
				seen = append(seen, strings.SplitN(strings.TrimPrefix(l, "inbox {"), ",", 2)[0])
			}
		}
		require.Len(t, seen, 50, "every message printed once")
		for i, s := range seen {
			assert.Equal(t, itoa(i+1), s, "in the order sent")
		}
		if rt.Elixir != "" {
			erltest.ElixirEval(t, erltest.ErlOptions{Runtime: rt, Name: uniqueAlive("ex"), Cookie: testCookie, EPMDPort: ep},
				// Connect first, and ping after the send: a message queued while the connection
				// is still being set up would be lost if the VM halted first.
				`n = :"`+name+`"; true = Node.connect(n); send({:inbox, n}, {:from_elixir, "bin"}); :pong = Node.ping(n)`)
			assert.Equal(t, `inbox {from_elixir,<<"bin">>}`, b.waitLine(t, "inbox {from_elixir"))
		}
	})
}
