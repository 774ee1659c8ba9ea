package procs

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/distribute-go/distribute/internal/logbuf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestPortFreeAndNeverRepeated(t *testing.T) {
	seen := map[int]bool{}
	for range 200 {
		p, err := Port()
		require.NoError(t, err)
		require.False(t, seen[p], "port %d handed out twice", p)
		seen[p] = true
	}
	p, err := Port()
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	require.NoError(t, err)
	require.NoError(t, ln.Close())
}

func TestUniqueName(t *testing.T) {
	re := regexp.MustCompile(`^[0-9A-Za-z_]+$`)
	seen := map[string]bool{}
	for range 500 {
		n := UniqueName("a-b.c")
		require.Regexp(t, re, n)
		require.True(t, strings.HasPrefix(n, "abc_"), n)
		require.False(t, seen[n])
		seen[n] = true
	}
	assert.True(t, strings.HasPrefix(UniqueName("@"), "n_"))
}

func TestRecorder(t *testing.T) {
	var r Recorder[int]
	for i := range 5 {
		r.Add(i)
	}
	m := r.Mark()
	r.Add(10)
	assert.Equal(t, []int{10}, r.Since(m))
	assert.Equal(t, []int{0, 1, 2, 3, 4, 10}, r.List())
	assert.Equal(t, 4, r.Count(0, func(v int) bool { return v%2 == 0 }))
	assert.Equal(t, 1, r.Count(m, nil))
	assert.Empty(t, r.Since(99))
}

// TestGroupKillsWholeProcessGroup starts a shell whose child sleeps: KillAll must take both.
func TestGroupKillsWholeProcessGroup(t *testing.T) {
	var g Group
	cmd := exec.Command("sh", "-c", "sleep 300 & echo $!; wait")
	var out logbuf.Buffer
	cmd.Stdout = &out
	p, err := g.Start(cmd, false)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return strings.Contains(out.String(), "\n") }, 10*time.Second, 5*time.Millisecond)
	g.KillAll(true, 10*time.Second)
	<-p.Done()
	assert.Error(t, p.Err(), "killed")
	// The orphaned sleep is reaped by init a moment later.
	assert.Eventually(t, func() bool { return errors.Is(syscall.Kill(-p.Pid(), 0), syscall.ESRCH) }, 5*time.Second,
		5*time.Millisecond, "no process of the group is left")
	assert.ErrorIs(t, p.Signal(syscall.SIGTERM), os.ErrProcessDone)
	_, err = g.Start(exec.Command("true"), false)
	assert.Error(t, err, "no start after the final KillAll")
}

// TestNoSignalAfterReaped (regression): Kill and Signal of a process that has exited and been
// reaped send nothing. Its pid is its process group id; once reaped, the number may be another
// process group's (pids wrap within minutes on a busy machine: 32768 pids, about 125 new ones a
// second here with several test runs), and the test cleanups that kill every started program
// long after it exited would kill that stranger.
func TestNoSignalAfterReaped(t *testing.T) {
	var sent []int
	orig := killGroup
	killGroup = func(pgid int, sig syscall.Signal) error {
		sent = append(sent, pgid)
		return orig(pgid, sig)
	}
	t.Cleanup(func() { killGroup = orig })

	p, err := Start(exec.Command("true"), false)
	require.NoError(t, err)
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("true did not exit")
	}
	assert.ErrorIs(t, p.Signal(syscall.SIGTERM), os.ErrProcessDone)
	assert.True(t, p.Kill(time.Second))
	assert.Empty(t, sent, "no signal to the group id of a reaped process")

	// A live one is still killed, group and all.
	q, err := Start(exec.Command("sleep", "60"), false)
	require.NoError(t, err)
	assert.True(t, q.Kill(10*time.Second))
	assert.Equal(t, []int{q.Pid()}, sent)
}

// TestPortClaimedAcrossProcesses: a port handed out holds an flock on its claim file, which
// another process (here, another open file description) cannot take, so no other test process
// hands the same port out.
func TestPortClaimedAcrossProcesses(t *testing.T) {
	p, err := Port()
	require.NoError(t, err)
	f, err := os.OpenFile(filepath.Join(portDir, strconv.Itoa(p)), os.O_RDWR, 0)
	require.NoError(t, err, "the claim file exists")
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	assert.ErrorIs(t, err, syscall.EWOULDBLOCK, "the claim is held")
	assert.False(t, claimPort(p), "a port is claimed once")
}
