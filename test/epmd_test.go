package test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// startGoEPMD runs our EPMD server on a private loopback port until the test ends.
func startGoEPMD(t *testing.T) (*epmd.Server, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := &epmd.Server{}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		assert.NoError(t, s.Close())
		assert.ErrorIs(t, <-served, epmd.ErrServerClosed)
	})
	return s, ln.Addr().(*net.TCPAddr).Port
}

// epmdCLI runs the runtime's real epmd binary as a client (`epmd -names`, `-kill`, `-stop N`) against the EPMD at
// port, passed through ERL_EPMD_PORT, and returns its output and exit code.
func epmdCLI(t *testing.T, rt *erltest.Runtime, port int, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := rt.Command(ctx, "epmd", args...)
	cmd.Env = append(os.Environ(), "ERL_EPMD_PORT="+strconv.Itoa(port))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	require.NoError(t, err, "epmd %v: %s", args, out)
	return string(out), 0
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func registeredNames(s *epmd.Server) []string {
	var names []string
	for _, n := range s.Registered() {
		names = append(names, n.Name)
	}
	return names
}

// A real erl registers with our server; the real `epmd -names` client and BEAM's own EPMD client
// (erl_epmd, net_adm) read our replies.
func TestEPMDGoServerServesRealErlAndEpmdClient(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		s, port := startGoEPMD(t)
		goName, erlName := erltest.UniqueName("go"), erltest.UniqueName("erl")
		distPort := erltest.FreePort(t)

		reg, err := (&epmd.Client{Port: port}).Register(ctx10(t), epmd.NodeInfo{Name: goName, Port: 40001})
		require.NoError(t, err)
		defer reg.Close()

		node := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, Name: erlName, EPMDPort: port,
			Extra: []string{"-kernel", "inet_dist_listen_min", strconv.Itoa(distPort), "inet_dist_listen_max", strconv.Itoa(distPort)}})
		assert.Equal(t, erlName+"@localhost", node.Node())

		got := s.Registered()
		require.Len(t, got, 2, "registered: %v", registeredNames(s))
		var erlInfo epmd.NodeInfo
		for _, n := range got {
			if n.Name == erlName {
				erlInfo = n
			}
		}
		assert.Equal(t, epmd.NodeInfo{Name: erlName, Port: distPort, Type: 77, Protocol: 0, HighestVersion: 6, LowestVersion: 5},
			erlInfo, "what OTP 25 sends in ALIVE2_REQ")

		out, code := epmdCLI(t, rt, port, "-names")
		assert.Equal(t, 0, code, out)
		assert.Contains(t, out, fmt.Sprintf("epmd: up and running on port %d with data:\n", port))
		assert.Contains(t, out, fmt.Sprintf("name %s at port %d\n", erlName, distPort))
		assert.Contains(t, out, fmt.Sprintf("name %s at port 40001\n", goName))

		// BEAM's client: NAMES (it checks the port in the reply against its own) and PORT_PLEASE2.
		evalOut := erltest.ErlEval(t, erltest.ErlOptions{Runtime: rt, EPMDPort: port}, fmt.Sprintf(
			`{ok, Names} = erl_epmd:names({127,0,0,1}), io:format("~p~n~p~n~p~n", `+
				`[lists:sort(Names), erl_epmd:port_please(%q, {127,0,0,1}), erl_epmd:port_please("nobody", {127,0,0,1})])`, goName))
		assert.Contains(t, evalOut, fmt.Sprintf(`{"%s",40001}`, goName))
		assert.Contains(t, evalOut, fmt.Sprintf(`{"%s",%d}`, erlName, distPort))
		assert.Contains(t, evalOut, "{port,40001,6}")
		assert.Contains(t, evalOut, "noport")

		// The registration ends with the node.
		node.Kill()
		require.Eventually(t, func() bool { return len(s.Registered()) == 1 }, 10*time.Second, 20*time.Millisecond)
		assert.Equal(t, []string{goName}, registeredNames(s))
		out, _ = epmdCLI(t, rt, port, "-names")
		assert.NotContains(t, out, erlName)
	})
}

// `epmd -kill` and `epmd -stop` get the same answers from our server as from a real epmd that has a
// node registered and runs without -relaxed_command_check; our server keeps running.
func TestEPMDGoServerRefusesKillAndStopLikeEpmd(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		s, goPort := startGoEPMD(t)
		real := rt.StartEPMD(t, 0)
		name := erltest.UniqueName("victim")
		for _, port := range []int{goPort, real.Port()} {
			reg, err := (&epmd.Client{Port: port}).Register(ctx10(t), epmd.NodeInfo{Name: name, Port: 40003})
			require.NoError(t, err)
			defer reg.Close()
		}
		for _, args := range [][]string{{"-kill"}, {"-stop", name}} {
			realOut, realCode := epmdCLI(t, rt, real.Port(), args...)
			goOut, goCode := epmdCLI(t, rt, goPort, args...)
			assert.Equal(t, realOut, goOut, "epmd %v", args)
			assert.Equal(t, realCode, goCode, "epmd %v", args)
			assert.NotEqual(t, 0, goCode, "epmd %v must be refused", args)
		}
		kill, _ := epmdCLI(t, rt, goPort, "-kill")
		assert.Equal(t, "Killing not allowed - living nodes in database.\n", kill)

		select {
		case <-real.Done():
			t.Fatal("the real epmd should have refused too")
		default:
		}
		assert.Equal(t, []string{name}, registeredNames(s), "STOP must not unregister")
		info, err := (&epmd.Client{Port: goPort}).PortPlease(ctx10(t), "", name)
		require.NoError(t, err)
		assert.Equal(t, 40003, info.Port)
	})
}

// Our client against the real epmd: register, list, look up, duplicate, unregister.
func TestEPMDGoClientWithRealEpmd(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		real := rt.StartEPMD(t, 0)
		c := &epmd.Client{Port: real.Port()}
		name := erltest.UniqueName("goclient")

		reg, err := c.Register(ctx10(t), epmd.NodeInfo{Name: name, Port: 40002, Extra: []byte("x")})
		require.NoError(t, err)
		assert.NotZero(t, reg.Creation())

		out, code := epmdCLI(t, rt, real.Port(), "-names")
		assert.Equal(t, 0, code)
		assert.Contains(t, out, fmt.Sprintf("name %s at port 40002\n", name))

		info, err := c.PortPlease(ctx10(t), "127.0.0.1", name)
		require.NoError(t, err)
		assert.Equal(t, epmd.NodeInfo{Name: name, Port: 40002, Type: 77, Protocol: 0, HighestVersion: 6, LowestVersion: 5,
			Extra: []byte("x")}, info)

		list, err := c.Names(ctx10(t), "127.0.0.1")
		require.NoError(t, err)
		assert.Equal(t, []epmd.NameEntry{{Name: name, Port: 40002}}, list)

		_, err = c.Register(ctx10(t), epmd.NodeInfo{Name: name, Port: 40004})
		require.ErrorIs(t, err, epmd.ErrNameTaken)

		// Old-style registration (highest version 5) gets the 16-bit reply, which the client takes.
		old, err := c.Register(ctx10(t), epmd.NodeInfo{Name: name + "_old", Port: 40005, HighestVersion: 5})
		require.NoError(t, err)
		assert.True(t, old.Creation() >= 1 && old.Creation() <= 3, "old creation %d", old.Creation())
		require.NoError(t, old.Close())

		first := reg.Creation()
		require.NoError(t, reg.Close())
		require.Eventually(t, func() bool {
			_, err := c.PortPlease(ctx10(t), "", name)
			return errors.Is(err, epmd.ErrNotRegistered)
		}, 10*time.Second, 20*time.Millisecond)
		again, err := c.Register(ctx10(t), epmd.NodeInfo{Name: name, Port: 40002})
		require.NoError(t, err)
		defer again.Close()
		assert.NotEqual(t, first, again.Creation(), "epmd gives a new creation to a new registration")

		// The registration ends when epmd goes away.
		real.Kill()
		select {
		case <-again.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("Done not closed after epmd died")
		}
	})
}

// PortPlease against the real epmd finds a real erl node's distribution port; its name cannot be taken.
func TestEPMDPortPleaseRealErlNode(t *testing.T) {
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		real := rt.StartEPMD(t, 0)
		name := erltest.UniqueName("porttest")
		distPort := erltest.FreePort(t)
		erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, Name: name, EPMDPort: real.Port(),
			Extra: []string{"-kernel", "inet_dist_listen_min", strconv.Itoa(distPort), "inet_dist_listen_max", strconv.Itoa(distPort)}})

		c := &epmd.Client{Port: real.Port()}
		info, err := c.PortPlease(ctx10(t), "localhost", name)
		require.NoError(t, err)
		assert.Equal(t, distPort, info.Port)
		assert.Equal(t, name, info.Name)
		assert.Equal(t, byte(77), info.Type)
		assert.Equal(t, uint16(6), info.HighestVersion)
		assert.Equal(t, uint16(5), info.LowestVersion)

		_, err = c.Register(ctx10(t), epmd.NodeInfo{Name: name, Port: 40006})
		require.ErrorIs(t, err, epmd.ErrNameTaken)

		list, err := c.Names(ctx10(t), "")
		require.NoError(t, err)
		assert.Contains(t, list, epmd.NameEntry{Name: name, Port: distPort})
		assert.False(t, strings.Contains(fmt.Sprint(list), "@"), "EPMD knows alive parts only")
	})
}
