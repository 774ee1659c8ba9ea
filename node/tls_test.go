package node

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/testcerts"
	"github.com/distribute-go/distribute/tlsdist"
)

// tlsFixture is the certificate material of one test.
type tlsFixture struct {
	ca, wrongCA *testcerts.CA
	a, b        testcerts.Pair // signed by ca
}

func newTLSFixture(t *testing.T) *tlsFixture {
	f := &tlsFixture{ca: testcerts.NewCA(t, "good"), wrongCA: testcerts.NewCA(t, "wrong")}
	f.a, f.b = f.ca.Node(t, "a"), f.ca.Node(t, "b")
	return f
}

// side is mutual verification with p against the good CA.
func (f *tlsFixture) side(p testcerts.Pair) tlsdist.Side {
	return tlsdist.Side{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: f.ca.File}
}

func TestTLSGoToGo(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	port := freePort(t)
	a := startNode(t, shortName("a"), testCookie, Options{EPMDPort: port, TLS: tlsdist.Both(f.side(f.a))})
	b := startNode(t, shortName("b"), testCookie, Options{EPMDPort: port, TLS: tlsdist.Both(f.side(f.b))})
	ctx := testCtx(t, 10*time.Second)
	require.NoError(t, a.Connect(ctx, b.Self()))
	requireLinked(t, a, b)
	require.True(t, a.Disconnect(b.Self()))
	require.Eventually(t, func() bool { return b.ConnectedCount() == 0 }, 5*time.Second, 5*time.Millisecond)
	require.NoError(t, b.Connect(ctx, a.Self()))
	requireLinked(t, a, b)
	l := a.link(b.Self())
	require.NotNil(t, l)
	tc, ok := l.conn.(*tls.Conn)
	require.True(t, ok, "the link runs over TLS")
	st := tc.ConnectionState()
	assert.True(t, st.HandshakeComplete)
	assert.Len(t, st.PeerCertificates, 1)
	assert.NotEmpty(t, st.VerifiedChains, "the peer was verified")
}

// requireLinked waits until a and b list each other as connected.
func requireLinked(t *testing.T, a, b *Node) {
	t.Helper()
	require.Eventually(t, func() bool {
		return slices.Contains(a.Nodes(), b.Self()) && slices.Contains(b.Nodes(), a.Self())
	}, 5*time.Second, 5*time.Millisecond)
}

// TestTLSVersions: TLS 1.2 only on one side still connects; 1.3 is used
// when both allow it.
func TestTLSVersions(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	port := freePort(t)
	s12 := f.side(f.a)
	s12.MaxVersion = tls.VersionTLS12
	a := startNode(t, shortName("a"), testCookie, Options{EPMDPort: port, TLS: tlsdist.Both(s12)})
	b := startNode(t, shortName("b"), testCookie, Options{EPMDPort: port, TLS: tlsdist.Both(f.side(f.b))})
	c := startNode(t, shortName("c"), testCookie, Options{EPMDPort: port, TLS: tlsdist.Both(f.side(f.b))})
	ctx := testCtx(t, 10*time.Second)
	require.NoError(t, a.Connect(ctx, b.Self()))
	require.NoError(t, c.Connect(ctx, b.Self()))
	// The acceptor installs its link a moment after the dialler's Connect returns (the
	// dialler is done when it reads the ack b sent just before).
	require.Eventually(t, func() bool { return b.link(a.Self()) != nil && b.link(c.Self()) != nil },
		5*time.Second, time.Millisecond, "b has both links")
	assert.Equal(t, uint16(tls.VersionTLS12), b.link(a.Self()).conn.(*tls.Conn).ConnectionState().Version)
	assert.Equal(t, uint16(tls.VersionTLS13), b.link(c.Self()).conn.(*tls.Conn).ConnectionState().Version)
}

// TestTLSRefusals: each kind of mismatch is refused fast with its own
// reason, seen by the dialling side's Connect and by the accepting side's
// event.
func TestTLSRefusals(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	wrong := f.wrongCA.Node(t, "w")
	expired := f.ca.Expired(t, "x")
	otherHost := f.ca.Issue(t, "o", []string{"elsewhere.example"}, time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	with := func(s tlsdist.Side, fn func(*tlsdist.Side)) *tlsdist.Config { fn(&s); return tlsdist.Both(s) }
	hookErr := errors.New("not this one")

	cases := []struct {
		name       string
		dialer     *tlsdist.Config // nil: plain
		listener   *tlsdist.Config // nil: plain
		dialReason tlsdist.Reason  // the Connect error's reason
		accReason  tlsdist.Reason  // the acceptor's event's reason ("" for none expected)
		text       string          // in the Connect error or the acceptor's
	}{
		{"server cert from wrong CA", tlsdist.Both(f.side(f.a)), with(f.side(f.b), func(s *tlsdist.Side) { s.CertFile, s.KeyFile = wrong.CertFile, wrong.KeyFile }),
			tlsdist.ReasonUnknownCA, "", "not signed by a CA in our CA bundle"},
		{"client cert from wrong CA", with(f.side(f.a), func(s *tlsdist.Side) { s.CertFile, s.KeyFile = wrong.CertFile, wrong.KeyFile }), tlsdist.Both(f.side(f.b)),
			tlsdist.ReasonUnknownCA, tlsdist.ReasonUnknownCA, "the client's certificate is not signed"},
		{"expired server cert", tlsdist.Both(f.side(f.a)), with(f.side(f.b), func(s *tlsdist.Side) { s.CertFile, s.KeyFile = expired.CertFile, expired.KeyFile }),
			tlsdist.ReasonExpired, "", "expired"},
		{"expired client cert", with(f.side(f.a), func(s *tlsdist.Side) { s.CertFile, s.KeyFile = expired.CertFile, expired.KeyFile }), tlsdist.Both(f.side(f.b)),
			"", tlsdist.ReasonExpired, "expired"},
		{"no client cert", &tlsdist.Config{Server: f.side(f.a), Client: tlsdist.Side{CAFile: f.ca.File}}, tlsdist.Both(f.side(f.b)),
			tlsdist.ReasonNoClientCert, tlsdist.ReasonNoClientCert, "certificate"},
		{"server cert for another host", tlsdist.Both(f.side(f.a)), with(f.side(f.b), func(s *tlsdist.Side) { s.CertFile, s.KeyFile = otherHost.CertFile, otherHost.KeyFile }),
			tlsdist.ReasonHostname, "", "does not name the host"},
		{"hook refuses", with(f.side(f.a), func(s *tlsdist.Side) {
			s.VerifyConnection = func(tls.ConnectionState) error { return hookErr }
		}), tlsdist.Both(f.side(f.b)), tlsdist.ReasonRejected, "", "not this one"},
		{"plain dialer, TLS listener", nil, tlsdist.Both(f.side(f.b)),
			tlsdist.ReasonProtocolMismatch, tlsdist.ReasonProtocolMismatch, "plain distribution handshake on a TLS listener"},
		{"TLS dialer, plain listener", tlsdist.Both(f.side(f.a)), nil,
			tlsdist.ReasonProtocolMismatch, tlsdist.ReasonProtocolMismatch, "TLS record on a plain distribution listener"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			port := freePort(t)
			var evB events
			a := startNode(t, shortName("a"), testCookie, Options{EPMDPort: port, TLS: tc.dialer})
			b := startNode(t, shortName("b"), testCookie, Options{EPMDPort: port, TLS: tc.listener, OnEvent: evB.add})
			start := time.Now()
			err := a.Connect(testCtx(t, 10*time.Second), b.Self())
			took := time.Since(start)
			require.Error(t, err)
			assert.Less(t, took, 2*time.Second, "refused fast, not at the setup timeout")
			require.ErrorIs(t, err, ErrTLS, "%v", err)
			var te *tlsdist.Error
			require.ErrorAs(t, err, &te)
			if tc.dialReason != "" {
				assert.Equal(t, tc.dialReason, te.Reason, "%v", err)
			}
			require.Eventually(t, func() bool { return evB.count(EventHandshakeFailed) > 0 }, 5*time.Second, 5*time.Millisecond)
			var accErr error
			for _, ev := range evB.list() {
				if ev.Kind == EventHandshakeFailed && ev.Inbound {
					accErr = ev.Err
				}
			}
			require.Error(t, accErr)
			if tc.accReason != "" {
				assert.Equal(t, tc.accReason, tlsdist.Classify(accErr), "%v", accErr)
			}
			assert.True(t, strings.Contains(err.Error(), tc.text) || strings.Contains(accErr.Error(), tc.text),
				"%q in neither %q nor %q", tc.text, err, accErr)
			assert.Empty(t, a.Nodes())
			assert.Empty(t, b.Nodes())
		})
	}
}

func TestTLSWrongCookie(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	port := freePort(t)
	a := startNode(t, shortName("a"), "cookie-one", Options{EPMDPort: port, TLS: tlsdist.Both(f.side(f.a))})
	b := startNode(t, shortName("b"), "cookie-two", Options{EPMDPort: port, TLS: tlsdist.Both(f.side(f.b))})
	ctx := testCtx(t, 10*time.Second)
	for _, d := range [][2]*Node{{a, b}, {b, a}} {
		err := d[0].Connect(ctx, d[1].Self())
		require.ErrorIs(t, err, ErrAuth, "%v", err)
		assert.NotErrorIs(t, err, ErrTLS)
		assert.ErrorIs(t, err, handshake.ErrAuth)
	}
}

// TestTLSHostileClients: garbage, a stalled TLS hello and a client that
// stalls after TLS do not keep a good peer out of a TLS node.
func TestTLSHostileClients(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	port := freePort(t)
	var evB events
	b := startNode(t, shortName("b"), testCookie, Options{EPMDPort: port, TLS: tlsdist.Both(f.side(f.b)), SetupTimeout: 5 * time.Second, OnEvent: evB.add})
	a := startNode(t, shortName("a"), testCookie, Options{EPMDPort: port, TLS: tlsdist.Both(f.side(f.a))})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port()))
	dial := func() net.Conn {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	// Garbage: refused at once with an alert.
	g := dial()
	_, err := g.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	require.NoError(t, err)
	_ = g.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 16)
	k, _ := g.Read(buf)
	assert.Equal(t, []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0a}, buf[:k], "a fatal unexpected_message alert")
	// Slow loris: the first 3 bytes of a TLS record, then nothing.
	sl := dial()
	_, err = sl.Write([]byte{0x16, 0x03, 0x01})
	require.NoError(t, err)
	// A TLS client that completes TLS and then says nothing.
	raw := dial()
	cfg := f.side(f.a)
	d, err := tlsdist.Both(cfg).Build()
	require.NoError(t, err)
	tc := tls.Client(raw, d.Client("localhost"))
	require.NoError(t, tc.Handshake())

	start := time.Now()
	ctx := testCtx(t, 10*time.Second)
	require.NoError(t, a.Connect(ctx, b.Self()))
	requireLinked(t, a, b)
	assert.Less(t, time.Since(start), 2*time.Second)
	// The stalled ones end at b's setup time.
	_ = sl.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = sl.Read(buf)
	assert.Error(t, err, "the stalled hello is dropped")
	assert.Less(t, time.Since(start), 8*time.Second)
}

func TestTLSStartErrors(t *testing.T) {
	t.Parallel()
	f := newTLSFixture(t)
	port := freePort(t)
	missing := f.side(f.a)
	missing.CertFile = f.a.CertFile + ".missing"
	mismatched := f.side(f.a)
	mismatched.KeyFile = f.b.KeyFile
	noCert := tlsdist.Side{CAFile: f.ca.File}
	for _, tc := range []struct {
		cfg  *tlsdist.Config
		want error
		text string
	}{
		{tlsdist.Both(missing), os.ErrNotExist, "certificate file"},
		{tlsdist.Both(mismatched), tlsdist.ErrBadKey, "key file"},
		{tlsdist.Both(noCert), nil, "needs a certificate"},
	} {
		_, err := Start(testCtx(t, 5*time.Second), shortName("s"), testCookie, &Options{EPMDPort: port, TLS: tc.cfg})
		require.ErrorIs(t, err, ErrStartFailed)
		if tc.want != nil {
			assert.ErrorIs(t, err, tc.want)
		}
		assert.Contains(t, err.Error(), tc.text)
	}
}
