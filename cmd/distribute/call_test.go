package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/internal/erltest"
)

// TestCallAndEval: call and eval against a real erl on every runtime print values as ~0tp
// does, report exceptions with their class, fetch stdout, and reach a node by --address.
func TestCallAndEval(t *testing.T) {
	isolate(t)
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		erl := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, Cookie: testCookie, Control: true})
		base := []string{"--cookie", testCookie, "--epmd-port", itoa(erl.Port())}
		run := func(args ...string) (string, string, int) {
			t.Helper()
			return runCmd(t, append(append([]string{args[0]}, base...), args[1:]...)...)
		}
		out, errOut, code := run("call", erl.Node(), "erlang", "node")
		require.Equal(t, exitOK, code, errOut)
		assert.Equal(t, erl.Node()+"\n", out, "distribute call NODE erlang node prints the node's name")

		out, errOut, code = run("eval", erl.Node(), "X = 6, X * 7.")
		require.Equal(t, exitOK, code, errOut)
		assert.Equal(t, "42\n", out)

		out, _, code = run("call", erl.Node(), "lists", "seq", "1", "5")
		assert.Equal(t, exitOK, code)
		assert.Equal(t, "[1,2,3,4,5]\n", out)

		out, _, code = run("call", erl.Node(), "erlang", "element", "2", `{a, <<"b">>, c}`)
		assert.Equal(t, exitOK, code)
		assert.Equal(t, "<<\"b\">>\n", out)

		out, _, code = run("call", "--json", erl.Node(), "maps", "from_list", `[{k, <<"v">>}, {n, 1}]`)
		assert.Equal(t, exitOK, code)
		var j map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &j), out)
		assert.Equal(t, map[string]any{"k": "v", "n": 1.0}, j)

		_, errOut, code = run("call", erl.Node(), "erlang", "error", "badarith")
		assert.Equal(t, exitFail, code)
		assert.True(t, strings.HasPrefix(errOut, "error: badarith\n"), errOut)
		assert.Contains(t, errOut, "stacktrace: ")
		_, errOut, code = run("call", erl.Node(), "erlang", "throw", "oops")
		assert.Equal(t, exitFail, code)
		assert.Equal(t, "throw: oops\n", errOut)
		_, errOut, code = run("call", erl.Node(), "erlang", "exit", "{shutdown, x}")
		assert.Equal(t, exitFail, code)
		assert.Equal(t, "exit: {shutdown,x}\n", errOut)
		_, errOut, code = run("call", erl.Node(), "no_such_module", "f")
		assert.Equal(t, exitFail, code)
		assert.True(t, strings.HasPrefix(errOut, "error: undef\n"), errOut)
		_, errOut, code = run("eval", erl.Node(), "X = .")
		assert.Equal(t, exitFail, code)
		assert.Contains(t, errOut, "parse error", errOut)

		out, errOut, code = run("call", "--fetch-stdout", erl.Node(), "io", "format", `"hello ~p~n"`, "[world]")
		require.Equal(t, exitOK, code, errOut)
		assert.Equal(t, "hello world\nok\n", out, "the output, then the value")
		out, errOut, code = run("eval", "--fetch-stdout", erl.Node(), `io:format("a~n"), io:format("b~n"), done.`)
		require.Equal(t, exitOK, code, errOut)
		assert.Equal(t, "a\nb\ndone\n", out)
		out, errOut, code = run("call", "--method", "rex", erl.Node(), "erlang", "node")
		require.Equal(t, exitOK, code, errOut)
		assert.Equal(t, erl.Node()+"\n", out)

		// --address: the node's distribution port, no EPMD asked (an EPMD port nothing listens on).
		port, err := erl.Eval(`{ok, [{_, P}]} = net_adm:names(), P`, 10*time.Second)
		require.NoError(t, err)
		out, errOut, code = runCmd(t, "call", "--cookie", testCookie, "--epmd-port", itoa(freePort(t)),
			"--address", ":"+strings.TrimSpace(port), erl.Node(), "erlang", "node")
		require.Equal(t, exitOK, code, errOut)
		assert.Equal(t, erl.Node()+"\n", out)
	})
}

// TestCallUsageErrors: bad arguments are usage errors, pointing at the ARG that does not parse.
func TestCallUsageErrors(t *testing.T) {
	isolate(t)
	_, errOut, code := runCmd(t, "call", "--cookie", testCookie, "a@localhost", "m", "f", "ok", "{bad")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "ARG 2 does not parse")
	_, _, code = runCmd(t, "call", "--cookie", testCookie, "a@localhost", "m")
	assert.Equal(t, exitUsage, code)
	_, _, code = runCmd(t, "eval", "--cookie", testCookie, "a@localhost")
	assert.Equal(t, exitUsage, code)
	_, errOut, code = runCmd(t, "call", "--cookie", testCookie, "--method", "smoke", "a@localhost", "m", "f")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "--method")
	_, errOut, code = runCmd(t, "call", "--cookie", testCookie, "--address", "nope", "a@localhost", "m", "f")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "--address")
}

// TestRunServesDistributeModule: BEAM asks a running sidecar with one erpc:call (and rpc:call,
// and erl_call) on every runtime.
func TestRunServesDistributeModule(t *testing.T) {
	isolate(t)
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		ep := freePort(t)
		rt.StartEPMD(t, ep)
		b := startBackground(t, "run", "--sname", uniqueAlive("side"), "--cookie", testCookie, "--epmd", "external",
			"--epmd-port", itoa(ep))
		name := strings.Fields(b.waitLine(t, "node "))[1]
		erl := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, Cookie: testCookie, EPMDPort: ep, Control: true})
		out, err := erl.Eval(`H = erpc:call('`+name+`', distribute, health, []), {maps:get(self_node, H), maps:get(is_distributed, H), lists:member(node(), maps:get(connected_nodes, H)), lists:member(node(), maps:get(reachable_nodes, H)), maps:get(unreachable_nodes, H), lists:sort(maps:keys(H))}`, 15*time.Second)
		require.NoError(t, err)
		assert.Equal(t, "{"+name+",true,true,true,[],[connected_count,connected_nodes,details,is_distributed,reachable_nodes,self_node,unreachable_nodes]}", out)
		out, err = erl.Eval(`{rpc:call('`+name+`', distribute, nodes, []), is_binary(erpc:call('`+name+`', distribute, version, [])), catch erpc:call('`+name+`', distribute, nope, [])}`, 15*time.Second)
		require.NoError(t, err)
		// undef raised as erpc:call raises it between BEAM nodes.
		assert.Contains(t, out, "{["+erl.Node()+"],true,{'EXIT',{{exception,undef,[{distribute,nope,[],[]}]},")
	})
}
