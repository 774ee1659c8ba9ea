package process_test

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/process"
)

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// depth returns how many 1-tuples are nested around the innermost term.
func depth(t etf.Term) int {
	d := 0
	for {
		tt, ok := t.(etf.Tuple)
		if !ok || len(tt) != 1 {
			return d
		}
		d, t = d+1, tt[0]
	}
}

// TestOneMessageNeverCostsTheLink: a 70 MB binary (over MaxMessageSize), a term nested 2,000
// deep (to a pid and to net_kernel) and messages to missing names and pids are each skipped or
// delivered alone, counted, and the connection carries on.
func TestOneMessageNeverCostsTheLink(t *testing.T) {
	erltest.ForEachRuntime(t, testOneMessageNeverCostsTheLink)
}

func testOneMessageNeverCostsTheLink(t *testing.T, rt *erltest.Runtime) {
	e := setup(t, rt, nil, erltest.ErlOptions{})
	conn := e.g.Conn(e.erl.Node())
	require.NotNil(t, conn)

	// 70 MB to a name: over the 64 MiB limit, skipped.
	e.eval(t, `{inbox, %s} ! {huge, binary:copy(<<7>>, 70000000)}, {inbox, %s} ! after_huge, ok`, e.goNode(), e.goNode())
	assert.Equal(t, etf.Atom("after_huge"), recv(t, e.inbox, nil), "the huge message is skipped, the next one arrives")
	assert.Equal(t, uint64(1), e.g.Stats().TooLarge)

	// 2,000 deep to a pid and to net_kernel: delivered, or counted as undecodable; either way
	// the link stays and net_kernel still answers.
	p := e.g.Spawn()
	e.give(t, "p", p.Pid())
	e.eval(t, `D = lists:foldl(fun(_, A) -> {A} end, x, lists:seq(1, 2000)), get(p) ! D, get(p) ! after_deep, `+
		`{net_kernel, %s} ! D, ok`, e.goNode())
	m := recv(t, p, nil)
	if m != etf.Atom("after_deep") {
		assert.Equal(t, 2000, depth(m))
		assert.Equal(t, etf.Atom("after_deep"), recv(t, p, nil))
	} else {
		assert.GreaterOrEqual(t, e.g.ProcessStats().Undecodable, uint64(1))
	}
	assert.Equal(t, "pong", e.eval(t, `net_adm:ping(%s)`, e.goNode()))

	// A missing name and a dead pid: counted, the link stays.
	before := e.g.ProcessStats().NoProcess
	gone := e.g.Spawn()
	gone.Exit(etf.Atom("normal"))
	e.give(t, "gone", gone.Pid())
	e.eval(t, `{nosuch, %s} ! lost, get(gone) ! lost, {inbox, %s} ! after_lost, ok`, e.goNode(), e.goNode())
	assert.Equal(t, etf.Atom("after_lost"), recv(t, e.inbox, nil))
	assert.Equal(t, before+2, e.g.ProcessStats().NoProcess)
	// A fragmented 20 MB message to a missing name: its fragments are skipped as they come.
	e.eval(t, `{nosuch, %s} ! binary:copy(<<1>>, 20000000), {inbox, %s} ! after_big_lost, ok`, e.goNode(), e.goNode())
	assert.Equal(t, etf.Atom("after_big_lost"), recv(t, e.inbox, nil))
	assert.Equal(t, before+3, e.g.ProcessStats().NoProcess)

	assert.Same(t, conn, e.g.Conn(e.erl.Node()), "the same connection all along")
	assert.NoError(t, conn.Err())
}

// TestMailboxLimit: a mailbox nobody reads fills up to MailboxLimit; the messages after are
// dropped, counted (ProcessStats().MailboxFull, Process.Dropped) and logged, and the connection
// still serves the other processes.
func TestMailboxLimit(t *testing.T) { erltest.ForEachRuntime(t, testMailboxLimit) }

func testMailboxLimit(t *testing.T, rt *erltest.Runtime) {
	var logs logBuffer
	opts := &process.Options{MailboxLimit: 10}
	opts.Node.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	e := setup(t, rt, opts, erltest.ErlOptions{})
	full := e.g.Spawn()
	require.NoError(t, full.Register("full"))
	e.eval(t, `lists:foreach(fun(I) -> {full, %s} ! {n, I} end, lists:seq(1, 25)), {inbox, %s} ! after_full, ok`, e.goNode(), e.goNode())
	assert.Equal(t, etf.Atom("after_full"), recv(t, e.inbox, nil))
	assert.Equal(t, 10, full.Len())
	assert.Equal(t, uint64(15), full.Dropped())
	assert.Equal(t, uint64(15), e.g.ProcessStats().MailboxFull)
	assert.Contains(t, logs.String(), "mailbox full")
	for i := 1; i <= 10; i++ {
		assert.Equal(t, etf.Tuple{etf.Atom("n"), int64(i)}, recv(t, full, nil), "the first ten are kept, in order")
	}
	// Read, the mailbox takes messages again.
	e.eval(t, `{full, %s} ! again, ok`, e.goNode())
	assert.Equal(t, etf.Atom("again"), recv(t, full, nil))
	assert.NotContains(t, logs.String(), testCookie)
}

// TestDeepExitReason: a BEAM process linked to and monitored by Go processes exits with a reason
// nested 2,000 deep: the link still breaks and the monitor still fires, with the reason or, when
// it does not decode, process.ReasonUndecodable.
func TestDeepExitReason(t *testing.T) { erltest.ForEachRuntime(t, testDeepExitReason) }

func testDeepExitReason(t *testing.T, rt *erltest.Runtime) {
	e := setup(t, rt, nil, erltest.ErlOptions{})
	c := e.crossLinks(t, "x")
	plain := e.g.Spawn()
	require.NoError(t, plain.Link(c.target))
	e.sync(t)
	e.eval(t, `get(x) ! {stop, lists:foldl(fun(_, A) -> {A} end, deep, lists:seq(1, 2000))}, ok`)
	isDeep := func(r etf.Term) bool { return r == process.ReasonUndecodable || depth(r) == 2000 }
	m := tuple(recv(t, c.linked, nil))
	require.Len(t, m, 3)
	assert.Equal(t, etf.Atom("EXIT"), m[0])
	assert.True(t, isDeep(m[2]), "reason %v", m[2])
	d := tuple(recv(t, c.monitor, nil))
	require.Len(t, d, 5)
	assert.Equal(t, c.ref, d[1])
	assert.True(t, isDeep(d[4]), "reason %v", d[4])
	assert.True(t, isDeep(waitDone(t, plain)))
	assert.Empty(t, c.linked.Links())
}
