package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/internal/erltest"
)

// TestRunGlobalMailbox: run --visible --mailbox NAME --global takes part in global on a BEAM
// cluster (global:sync returns, the mailbox is a global name BEAM sends to), and send --global
// reaches global names both ways, on every runtime.
func TestRunGlobalMailbox(t *testing.T) {
	isolate(t)
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		ep := freePort(t)
		rt.StartEPMD(t, ep)
		a := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, Cookie: testCookie, EPMDPort: ep, Control: true})
		b := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, Cookie: testCookie, EPMDPort: ep, Control: true})
		_, err := b.Eval(`pong = net_adm:ping('`+a.Node()+`'), ok`, 10*time.Second)
		require.NoError(t, err)
		run := startBackground(t, "run", "--sname", uniqueAlive("gm"), "--cookie", testCookie, "--epmd", "external",
			"--epmd-port", itoa(ep), "--visible", "--connect", a.Node(), "--mailbox", "inbox", "--global")
		name := strings.Fields(run.waitLine(t, "node "))[1]
		// b learns the Go node through global's mesh (connect_all), and global:sync returns.
		out, err := b.Eval(`Wait = fun W(0) -> no; W(N) -> case lists:member('`+name+`', nodes()) of true -> yes; false -> timer:sleep(50), W(N-1) end end, {Wait(200), global:sync(), node(global:whereis_name(inbox))}`, 20*time.Second)
		require.NoError(t, err)
		assert.Equal(t, "{yes,ok,"+name+"}", out)
		_, err = b.Eval(`global:send(inbox, {from_beam, <<"b">>}), ok`, 10*time.Second)
		require.NoError(t, err)
		assert.Equal(t, `inbox {from_beam,<<"b">>}`, run.waitLine(t, "inbox {from_beam"))

		// send --global from a short-lived hidden node: to the Go mailbox, and to a BEAM name.
		sendOut, errOut, code := runCmd(t, "send", "--global", "--cookie", testCookie, "--epmd-port", itoa(ep), a.Node(), "inbox", "{from_cli, 1}")
		require.Equal(t, exitOK, code, "%s%s", sendOut, errOut)
		assert.Equal(t, "inbox {from_cli,1}", run.waitLine(t, "inbox {from_cli"))
		_, err = b.Eval(`yes = global:register_name(beamname, spawn(fun() -> receive M -> io:format("BEAMGOT ~p~n", [M]) end end)), global:sync()`, 10*time.Second)
		require.NoError(t, err)
		_, errOut, code = runCmd(t, "send", "--global", "--cookie", testCookie, "--epmd-port", itoa(ep), a.Node(), "beamname", "hi")
		require.Equal(t, exitOK, code, errOut)
		line, err := b.WaitLine("BEAMGOT ", 10*time.Second)
		require.NoError(t, err)
		assert.Equal(t, "BEAMGOT hi", strings.TrimSpace(line))
		_, errOut, code = runCmd(t, "send", "--global", "--cookie", testCookie, "--epmd-port", itoa(ep), a.Node(), "nobody", "hi")
		assert.Equal(t, exitFail, code)
		assert.Contains(t, errOut, "nobody")
	})
}

// TestRunGlobalUsage: --global without --visible or without a mailbox is a usage error.
func TestRunGlobalUsage(t *testing.T) {
	isolate(t)
	_, errOut, code := runCmd(t, "run", "--sname", "x", "--cookie", testCookie, "--mailbox", "m", "--global")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "--global needs --visible")
	_, errOut, code = runCmd(t, "run", "--sname", "x", "--cookie", testCookie, "--visible", "--global")
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errOut, "--mailbox")
}
