package handshake

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds how long a test waits for a handshake it started.
const waitLimit = 5 * time.Second

func newCfg(name, cookie string, creation uint32) *Config {
	return &Config{Name: name, Cookie: cookie, Creation: creation, Timeout: 3 * time.Second}
}

// pipe returns both ends of a net.Pipe, closed at the end of the test.
func pipe(t testing.TB) (net.Conn, net.Conn) {
	a, b := net.Pipe()
	t.Cleanup(func() { _ = a.Close(); _ = b.Close() })
	return a, b
}

// tcpPair returns a connected 127.0.0.1 TCP pair (dialled, accepted),
// closed at the end of the test.
func tcpPair(t testing.TB) (net.Conn, net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	type acc struct {
		c   net.Conn
		err error
	}
	ch := make(chan acc, 1)
	go func() { c, err := l.Accept(); ch <- acc{c, err} }()
	d, err := net.Dial("tcp", l.Addr().String())
	require.NoError(t, err)
	a := <-ch
	require.NoError(t, a.err)
	t.Cleanup(func() { _ = d.Close(); _ = a.c.Close() })
	return d, a.c
}

type outcome struct {
	res *Result
	err error
	dur time.Duration
}

// goAccept runs Accept in a goroutine; like a real caller it closes conn
// when Accept fails.
func goAccept(ctx context.Context, conn net.Conn, cfg *Config, decide Decide) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		start := time.Now()
		res, err := Accept(ctx, conn, cfg, decide)
		if err != nil {
			_ = conn.Close()
		}
		ch <- outcome{res, err, time.Since(start)}
	}()
	return ch
}

// goInitiate runs Initiate in a goroutine, closing conn when it fails.
func goInitiate(ctx context.Context, conn net.Conn, cfg *Config, peer string) <-chan outcome {
	ch := make(chan outcome, 1)
	go func() {
		start := time.Now()
		res, err := Initiate(ctx, conn, cfg, peer)
		if err != nil {
			_ = conn.Close()
		}
		ch <- outcome{res, err, time.Since(start)}
	}()
	return ch
}

func wait(t testing.TB, ch <-chan outcome) outcome {
	t.Helper()
	select {
	case o := <-ch:
		return o
	case <-time.After(waitLimit):
		t.Fatal("handshake did not return")
		return outcome{}
	}
}

// runPair runs Initiate on one end and Accept on the other, concurrently.
func runPair(t testing.TB, ic, ac net.Conn, icfg, acfg *Config, peer string, decide Decide) (ini, acc outcome) {
	t.Helper()
	ach := goAccept(context.Background(), ac, acfg, decide)
	ich := goInitiate(context.Background(), ic, icfg, peer)
	return wait(t, ich), wait(t, ach)
}

// requireHSError checks that err is an *Error of the given kind and step,
// and that its message names the step.
func requireHSError(t testing.TB, err error, kind error, step Step) *Error {
	t.Helper()
	require.Error(t, err)
	var he *Error
	require.ErrorAs(t, err, &he)
	assert.ErrorIs(t, err, kind, "error: %v", err)
	assert.Equal(t, step, he.Step, "error: %v", err)
	assert.True(t, strings.HasPrefix(err.Error(), "handshake "+string(step)+": "),
		"message %q does not name step %s", err.Error(), step)
	return he
}

// Frame builders: each returns a frame body (no length prefix).

func nameN(flags Flags, creation uint32, name string) []byte {
	b := []byte{'N'}
	b = binary.BigEndian.AppendUint64(b, uint64(flags))
	b = binary.BigEndian.AppendUint32(b, creation)
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	return append(b, name...)
}

func nameV5(flags uint32, name string) []byte {
	b := []byte{'n', 0, 5}
	b = binary.BigEndian.AppendUint32(b, flags)
	return append(b, name...)
}

func challengeN(flags Flags, challenge, creation uint32, name string) []byte {
	b := []byte{'N'}
	b = binary.BigEndian.AppendUint64(b, uint64(flags))
	b = binary.BigEndian.AppendUint32(b, challenge)
	b = binary.BigEndian.AppendUint32(b, creation)
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	return append(b, name...)
}

func challengeV5(flags uint32, challenge uint32, name string) []byte {
	b := []byte{'n', 0, 5}
	b = binary.BigEndian.AppendUint32(b, flags)
	b = binary.BigEndian.AppendUint32(b, challenge)
	return append(b, name...)
}

func complement(high, creation uint32) []byte {
	b := []byte{'c'}
	b = binary.BigEndian.AppendUint32(b, high)
	return binary.BigEndian.AppendUint32(b, creation)
}

func reply(challenge uint32, digest [16]byte) []byte {
	b := binary.BigEndian.AppendUint32([]byte{'r'}, challenge)
	return append(b, digest[:]...)
}

func ack(digest [16]byte) []byte { return append([]byte{'a'}, digest[:]...) }

func status(s string) []byte { return append([]byte{'s'}, s...) }

func namedStatus(name string, creation uint32) []byte {
	b := append([]byte{'s'}, "named:"...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(name)))
	b = append(b, name...)
	return binary.BigEndian.AppendUint32(b, creation)
}

// frames concatenates bodies, each with its 2-byte length.
func frames(bodies ...[]byte) []byte {
	var out []byte
	for _, b := range bodies {
		out = binary.BigEndian.AppendUint16(out, uint16(len(b)))
		out = append(out, b...)
	}
	return out
}

// rawPeer is a hand-written other side, driven from the test goroutine.
type rawPeer struct {
	t    testing.TB
	conn net.Conn
}

func (p *rawPeer) send(bodies ...[]byte) {
	p.t.Helper()
	_ = p.conn.SetWriteDeadline(time.Now().Add(waitLimit))
	_, err := p.conn.Write(frames(bodies...))
	require.NoError(p.t, err)
}

func (p *rawPeer) recv() []byte {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(waitLimit))
	var h [2]byte
	_, err := io.ReadFull(p.conn, h[:])
	require.NoError(p.t, err)
	b := make([]byte, binary.BigEndian.Uint16(h[:]))
	_, err = io.ReadFull(p.conn, b)
	require.NoError(p.t, err)
	return b
}

// expectClosed checks that the other side closed the connection without
// sending anything more.
func (p *rawPeer) expectClosed() {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(waitLimit))
	n, err := p.conn.Read(make([]byte, 1))
	assert.Equal(p.t, 0, n)
	assert.True(p.t, errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe), "got %v", err)
}

// parsedChallenge is a 'N' challenge as sent by Accept.
type parsedChallenge struct {
	flags     Flags
	challenge uint32
	creation  uint32
	name      string
}

func parseChallengeN(t testing.TB, f []byte) parsedChallenge {
	t.Helper()
	require.GreaterOrEqual(t, len(f), 19)
	require.Equal(t, byte('N'), f[0])
	n := int(binary.BigEndian.Uint16(f[17:19]))
	require.Len(t, f, 19+n)
	return parsedChallenge{
		flags:     Flags(binary.BigEndian.Uint64(f[1:9])),
		challenge: binary.BigEndian.Uint32(f[9:13]),
		creation:  binary.BigEndian.Uint32(f[13:17]),
		name:      string(f[19:]),
	}
}

// parseNameN parses a 'N' name message as sent by Initiate.
func parseNameN(t testing.TB, f []byte) (Flags, uint32, string) {
	t.Helper()
	require.GreaterOrEqual(t, len(f), 15)
	require.Equal(t, byte('N'), f[0])
	n := int(binary.BigEndian.Uint16(f[13:15]))
	require.Len(t, f, 15+n)
	return Flags(binary.BigEndian.Uint64(f[1:9])), binary.BigEndian.Uint32(f[9:13]), string(f[15:])
}

// fixedRand returns a Rand source whose first bytes are the given
// challenge, followed by a fixed filler (enough for a named: status too).
func fixedRand(challenge uint32) io.Reader {
	b := binary.BigEndian.AppendUint32(nil, challenge)
	return bytes.NewReader(append(b, bytes.Repeat([]byte{0x5a}, 60)...))
}

// feedResult is what feed observed.
type feedResult struct {
	res     *Result
	err     error
	elapsed time.Duration
	written []byte // everything the package side wrote
}

// feed runs fn (Initiate or Accept) on one end of a net.Pipe while the
// other end writes input and records what fn writes. When closeAfter is
// set, the writer closes its end once input is consumed, so fn sees EOF
// instead of waiting for more; otherwise it stays open until fn returns.
func feed(input []byte, closeAfter bool, fn func(net.Conn) (*Result, error)) feedResult {
	a, p := net.Pipe()
	var wg sync.WaitGroup
	var out bytes.Buffer
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, _ = p.Write(input)
		if closeAfter {
			_ = p.Close()
		}
	}()
	go func() {
		defer wg.Done()
		_, _ = io.Copy(&out, p)
	}()
	start := time.Now()
	res, err := fn(a)
	elapsed := time.Since(start)
	_ = a.Close()
	_ = p.Close()
	wg.Wait()
	return feedResult{res: res, err: err, elapsed: elapsed, written: out.Bytes()}
}

// splitFrames splits a byte stream of 2-byte-length frames; a trailing
// partial frame is dropped.
func splitFrames(b []byte) [][]byte {
	var out [][]byte
	for len(b) >= 2 {
		n := int(binary.BigEndian.Uint16(b))
		if len(b) < 2+n {
			break
		}
		out = append(out, b[2:2+n])
		b = b[2+n:]
	}
	return out
}

var sentinels = []error{ErrAuth, ErrNotAllowed, ErrNameMismatch, ErrSimultaneous,
	ErrAlreadyConnected, ErrTimeout, ErrClosed, ErrProtocol, ErrConfig, ErrPeerTLS}

// checkInvariants holds for every outcome of Initiate and Accept.
func checkInvariants(t testing.TB, res *Result, err error) {
	t.Helper()
	if err == nil {
		require.NotNil(t, res)
		require.NoError(t, ValidateNodeName(res.Peer.Name))
		require.NoError(t, ValidateNodeName(res.Name))
		return
	}
	require.Nil(t, res)
	var he *Error
	require.ErrorAs(t, err, &he)
	require.NotEmpty(t, he.Step)
	require.Contains(t, sentinels, he.Kind)
	require.True(t, strings.HasPrefix(err.Error(), "handshake "+string(he.Step)+": "), err.Error())
}
