package process_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/process"
)

// TestSendBothWays: erl sends to a registered Go name and to a Go pid with `!`; Go sends to an
// erl registered name and to an erl pid; each side sees the other's message.
func TestSendBothWays(t *testing.T) { erltest.ForEachRuntime(t, testSendBothWays) }

func testSendBothWays(t *testing.T, rt *erltest.Runtime) {
	e := setup(t, rt, nil, erltest.ErlOptions{})
	// BEAM -> Go, registered name.
	e.eval(t, `{inbox, %s} ! {hello, self(), <<"x">>, [1,2,3], #{k => v}}, ok`, e.goNode())
	m := tuple(recv(t, e.inbox, tagged("hello")))
	require.Len(t, m, 5)
	assert.Equal(t, e.shell, m[1])
	assert.Equal(t, []byte("x"), m[2])
	assert.Equal(t, etf.String("\x01\x02\x03"), m[3], "a small-integer list is STRING_EXT")

	// BEAM -> Go, pid.
	p := e.g.Spawn()
	e.give(t, "gopid", p.Pid())
	e.eval(t, `get(gopid) ! {to_pid, 42}, ok`)
	assert.Equal(t, etf.Tuple{etf.Atom("to_pid"), int64(42)}, recv(t, p, nil))

	// Go -> BEAM, pid: the shell receives it.
	require.NoError(t, p.Send(e.shell, etf.Tuple{etf.Atom("reply"), p.Pid()}))
	out := e.eval(t, `receive {reply, P} when node(P) =:= %s -> P =:= get(gopid) after 20000 -> timeout end`, e.goNode())
	assert.Equal(t, "true", out)

	// Go -> BEAM, registered name.
	e.eval(t, `register(erlbox, self()), ok`)
	require.NoError(t, p.Send(process.Name{Name: "erlbox", Node: e.erl.Node()}, etf.Atom("by_name")))
	assert.Equal(t, "by_name", e.eval(t, `receive by_name -> by_name after 20000 -> timeout end`))
	// Node.Send uses the node's own sender process.
	require.NoError(t, e.g.Send(process.Name{Name: "erlbox", Node: e.erl.Node()}, etf.Atom("from_node")))
	assert.Equal(t, "true", e.eval(t, `receive from_node -> true after 20000 -> timeout end`))
}

// TestElixirSendsToGoPid: Elixir's send/2 to a Go registered name, and to a Go pid it was given.
func TestElixirSendsToGoPid(t *testing.T) { erltest.ForEachRuntime(t, testElixirSendsToGoPid) }

func testElixirSendsToGoPid(t *testing.T, rt *erltest.Runtime) {
	port := erltest.FreePort(t)
	erltest.StartEPMD(t, port)
	g := startGo(t, port, nil)
	inbox := g.Spawn()
	require.NoError(t, inbox.Register("inbox"))
	worker := g.Spawn()
	done := make(chan struct{})
	go func() {
		defer close(done)
		m, err := inbox.ReceiveMatch(ctxFor(t, 2*wait), tagged("hello"))
		if !assert.NoError(t, err) {
			return
		}
		assert.NoError(t, inbox.Send(tuple(m)[1], etf.Tuple{etf.Atom("use"), worker.Pid()}))
	}()
	code := fmt.Sprintf(`true = Node.connect(:%q)
send({:inbox, :%q}, {:hello, self()})
receive do
  {:use, pid} -> send(pid, {:from_elixir, "bin", [1, 2], %%{a: 1}})
after 20000 -> raise "no answer"
end
:timer.sleep(200)`, g.Self(), g.Self())
	erltest.ElixirEval(t, erltest.ErlOptions{Runtime: rt, EPMDPort: port, Cookie: testCookie,
		Name: erltest.UniqueName("ex")}, code)
	<-done
	m := tuple(recv(t, worker, tagged("from_elixir")))
	require.Len(t, m, 4)
	assert.Equal(t, []byte("bin"), m[1])
	assert.Equal(t, etf.String("\x01\x02"), m[2])
	assert.Equal(t, etf.Map{{Key: etf.Atom("a"), Value: int64(1)}}, m[3])
}

// TestSequenced100k: 100,000 sequenced messages BEAM->Go and Go->BEAM, none lost or reordered.
func TestSequenced100k(t *testing.T) { erltest.ForEachRuntime(t, testSequenced100k) }

func testSequenced100k(t *testing.T, rt *erltest.Runtime) {
	const n = 100000
	e := setup(t, rt, nil, erltest.ErlOptions{})
	// BEAM -> Go.
	seq := e.g.Spawn()
	require.NoError(t, seq.Register("seq"))
	e.eval(t, `lists:foreach(fun(I) -> {seq, %s} ! {seq, I} end, lists:seq(1, %d)), ok`, e.goNode(), n)
	for i := 1; i <= n; i++ {
		m, err := seq.Receive(ctxFor(t, wait))
		require.NoError(t, err, "message %d", i)
		require.Equal(t, etf.Tuple{etf.Atom("seq"), int64(i)}, m, "message %d", i)
	}
	assert.Equal(t, 0, seq.Len())

	// Go -> BEAM: a sink checks the order and reports the count.
	sink := e.erlPid(t, "sink", `(fun L(N) -> receive {seq, N} -> L(N + 1); {done, F} -> F ! {count, N - 1}; `+
		`Other -> receive {done, F} -> F ! {bad, N, Other} end end end)(1)`)
	p := e.g.Spawn()
	for i := 1; i <= n; i++ {
		require.NoError(t, p.Send(sink, etf.Tuple{etf.Atom("seq"), int64(i)}))
	}
	require.NoError(t, p.Send(sink, etf.Tuple{etf.Atom("done"), p.Pid()}))
	assert.Equal(t, etf.Tuple{etf.Atom("count"), int64(n)}, recv(t, p, nil))
}

// TestLargeMessages: messages of several MB both ways (BEAM fragments them; we reassemble).
func TestLargeMessages(t *testing.T) { erltest.ForEachRuntime(t, testLargeMessages) }

func testLargeMessages(t *testing.T, rt *erltest.Runtime) {
	e := setup(t, rt, nil, erltest.ErlOptions{})
	// BEAM -> Go: an 8 MB binary and a list of 200,000 integers.
	e.eval(t, `{inbox, %s} ! {big, binary:copy(<<"abcdefgh">>, 1000000), lists:seq(1, 200000)}, ok`, e.goNode())
	m := tuple(recv(t, e.inbox, tagged("big")))
	require.Len(t, m, 3)
	assert.True(t, bytes.Equal(bytes.Repeat([]byte("abcdefgh"), 1000000), m[1].([]byte)), "8 MB binary intact")
	l := m[2].(etf.List)
	require.Len(t, l, 200000)
	assert.Equal(t, int64(200000), l[199999])

	// Go -> BEAM: 6 MB of varied bytes; the shell answers with its md5.
	big := make([]byte, 6<<20)
	for i := range big {
		big[i] = byte(i * 7 / 3)
	}
	require.NoError(t, e.g.Send(e.shell, etf.Tuple{etf.Atom("big"), big}))
	out := e.eval(t, `receive {big, B} -> binary:encode_hex(erlang:md5(B)) after 20000 -> timeout end`)
	sum := md5.Sum(big)
	assert.Equal(t, `<<"`+strings.ToUpper(hex.EncodeToString(sum[:]))+`">>`, out)
	// The link carried on: a small message after.
	e.eval(t, `{inbox, %s} ! after_big, ok`, e.goNode())
	assert.Equal(t, etf.Atom("after_big"), recv(t, e.inbox, nil))
	assert.Zero(t, e.g.Stats().TooLarge)
}

// TestPing: net_adm:ping from BEAM to the Go node is pong, and Go's Ping of BEAM is true.
func TestPing(t *testing.T) { erltest.ForEachRuntime(t, testPing) }

func testPing(t *testing.T, rt *erltest.Runtime) {
	port := erltest.FreePort(t)
	erltest.StartEPMD(t, port)
	g := startGo(t, port, nil)
	erl := erltest.StartErl(t, erltest.ErlOptions{Runtime: rt, EPMDPort: port, Cookie: testCookie, Control: true})
	out, err := erl.Eval(fmt.Sprintf(`net_adm:ping('%s')`, g.Self()), 2*wait)
	require.NoError(t, err)
	assert.Equal(t, "pong", out)
	assert.True(t, g.Ping(ctxFor(t, wait), erl.Node()))
	assert.Contains(t, g.Nodes(), erl.Node())
}

// TestOrderPerSender: 8 BEAM processes send 10,000 sequenced messages each to one Go process, and
// 8 Go processes to one BEAM process, all at once: every sender's messages arrive in order.
func TestOrderPerSender(t *testing.T) { erltest.ForEachRuntime(t, testOrderPerSender) }

func testOrderPerSender(t *testing.T, rt *erltest.Runtime) {
	const senders, each = 8, 10000
	e := setup(t, rt, nil, erltest.ErlOptions{})
	// BEAM -> Go.
	sink := e.g.Spawn()
	require.NoError(t, sink.Register("sink"))
	e.eval(t, `[spawn(fun() -> [{sink, %s} ! {S, I} || I <- lists:seq(1, %d)] end) || S <- lists:seq(1, %d)], ok`,
		e.goNode(), each, senders)
	next := map[int64]int64{}
	for range senders * each {
		m := tuple(recv(t, sink, nil))
		s, i := m[0].(int64), m[1].(int64)
		require.Equal(t, next[s]+1, i, "sender %d", s)
		next[s] = i
	}
	// Go -> BEAM: the erl sink checks each sender's order and reports.
	erlSink := e.erlPid(t, "sink", `(fun L(M) -> receive {S, I} when is_integer(I) -> `+
		`case maps:get(S, M, 0) + 1 of I -> L(M#{S => I}); _ -> L(M#{S => bad}) end; {done, F} -> F ! {result, M} end end)(#{})`)
	done := make(chan struct{})
	for s := 1; s <= senders; s++ {
		go func() {
			defer func() { done <- struct{}{} }()
			p := e.g.Spawn()
			for i := 1; i <= each; i++ {
				if err := p.Send(erlSink, etf.Tuple{int64(s), int64(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range senders {
		<-done
	}
	p := e.g.Spawn()
	require.NoError(t, p.Send(erlSink, etf.Tuple{etf.Atom("done"), p.Pid()}))
	res := tuple(recv(t, p, nil))
	require.Len(t, res, 2)
	m := res[1].(etf.Map)
	require.Len(t, m, senders)
	for _, kv := range m {
		assert.Equal(t, int64(each), kv.Value, "sender %v", kv.Key)
	}
}

// TestInterleavedFragments: BEAM processes send multi-MB messages (fragmented) while another
// sends small ones, all at once: the fragments of different messages interleave on the wire and
// every message arrives whole.
func TestInterleavedFragments(t *testing.T) { erltest.ForEachRuntime(t, testInterleavedFragments) }

func testInterleavedFragments(t *testing.T, rt *erltest.Runtime) {
	const bigs, smalls, size = 4, 2000, 3000000
	e := setup(t, rt, nil, erltest.ErlOptions{})
	e.eval(t, `G = %s, [spawn(fun() -> {inbox, G} ! {big, I, binary:copy(<<I>>, %d)} end) || I <- lists:seq(1, %d)], `+
		`spawn(fun() -> [{inbox, G} ! {small, I} || I <- lists:seq(1, %d)] end), ok`, e.goNode(), size, bigs, smalls)
	seen := map[int64]bool{}
	var small int64
	for range bigs + smalls {
		m := tuple(recv(t, e.inbox, nil))
		switch m[0] {
		case etf.Atom("big"):
			i := m[1].(int64)
			assert.True(t, bytes.Equal(bytes.Repeat([]byte{byte(i)}, size), m[2].([]byte)), "big message %d whole", i)
			seen[i] = true
		case etf.Atom("small"):
			small++
			require.Equal(t, small, m[1].(int64), "small messages in order")
		}
	}
	assert.Len(t, seen, bigs)
	assert.Equal(t, int64(smalls), small)
}
