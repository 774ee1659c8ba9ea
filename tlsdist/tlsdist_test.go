package tlsdist

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/testcerts"
)

func TestBuildDefaults(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	p := ca.Node(t, "n")
	d, err := Both(Side{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: ca.File}).Build()
	require.NoError(t, err)
	s := d.Server()
	assert.Equal(t, tls.RequireAndVerifyClientCert, s.ClientAuth, "a CA means mutual verification")
	assert.Equal(t, uint16(tls.VersionTLS12), s.MinVersion)
	assert.Equal(t, uint16(tls.VersionTLS13), s.MaxVersion)
	c := d.Client("myhost")
	assert.Equal(t, "myhost", c.ServerName, "SNI is the peer's host")
	assert.False(t, c.InsecureSkipVerify)
	assert.NotNil(t, c.RootCAs)
	assert.NotSame(t, c, d.Client("myhost"), "a fresh copy per dial")

	// No CA: encryption only, and the server asks for nothing.
	d, err = Both(Side{CertFile: p.CertFile, KeyFile: p.KeyFile}).Build()
	require.NoError(t, err)
	assert.Equal(t, tls.NoClientCert, d.Server().ClientAuth)
	assert.True(t, d.Client("h").InsecureSkipVerify)

	// Explicit choices.
	d, err = Both(Side{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: ca.File, AllowNoPeerCert: true}).Build()
	require.NoError(t, err)
	assert.Equal(t, tls.VerifyClientCertIfGiven, d.Server().ClientAuth)
	d, err = Both(Side{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: ca.File, Verify: VerifyNone}).Build()
	require.NoError(t, err)
	assert.Equal(t, tls.NoClientCert, d.Server().ClientAuth)
	assert.True(t, d.Client("h").InsecureSkipVerify)
	d, err = Both(Side{CertFile: p.CertFile, KeyFile: p.KeyFile, ServerName: "other"}).Build()
	require.NoError(t, err)
	assert.Equal(t, "other", d.Client("h").ServerName)
}

func TestBuildErrors(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	p, q := ca.Node(t, "p"), ca.Node(t, "q")
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(junk, []byte("not pem"), 0o600))
	enc := filepath.Join(dir, "enc.key")
	require.NoError(t, os.WriteFile(enc, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600))
	for _, tc := range []struct {
		name string
		side Side
		is   error
		as   any
		text string
	}{
		{"missing cert", Side{CertFile: filepath.Join(dir, "nope.pem"), KeyFile: p.KeyFile}, os.ErrNotExist, &FileError{}, "certificate file"},
		{"missing key", Side{CertFile: p.CertFile, KeyFile: filepath.Join(dir, "nope.key")}, os.ErrNotExist, &FileError{}, "key file"},
		{"not PEM", Side{CertFile: junk, KeyFile: p.KeyFile}, ErrNoPEM, &FileError{}, "junk.pem"},
		{"key of another cert", Side{CertFile: p.CertFile, KeyFile: q.KeyFile}, ErrBadKey, &FileError{}, "key file"},
		{"encrypted key", Side{CertFile: p.CertFile, KeyFile: enc}, ErrEncryptedKey, &FileError{}, "encrypted"},
		{"CA not PEM", Side{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: junk}, ErrNoPEM, &FileError{}, "CA file"},
		{"no server cert", Side{CAFile: ca.File}, nil, &ConfigError{}, "needs a certificate"},
		{"verify without CA", Side{CertFile: p.CertFile, KeyFile: p.KeyFile, Verify: VerifyPeer}, nil, &ConfigError{}, "needs a CA bundle"},
		{"TLS 1.1", Side{CertFile: p.CertFile, KeyFile: p.KeyFile, MinVersion: tls.VersionTLS11}, nil, &ConfigError{}, "only TLS 1.2 and 1.3"},
		{"key without cert", Side{KeyFile: p.KeyFile}, nil, &ConfigError{}, "key file without"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Both(tc.side).Build()
			require.Error(t, err)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			switch tc.as.(type) {
			case *FileError:
				var fe *FileError
				assert.ErrorAs(t, err, &fe)
			case *ConfigError:
				var ce *ConfigError
				assert.ErrorAs(t, err, &ce)
			}
			assert.Contains(t, err.Error(), tc.text)
		})
	}
}

// TestVerifyHookAndDepth: the hook runs after the standard checks; depth
// limits intermediates.
func TestVerifyHookAndDepth(t *testing.T) {
	ca := testcerts.NewCA(t, "ca")
	p := ca.Node(t, "n")
	var seen []*x509.Certificate
	s := Side{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: ca.File,
		VerifyConnection: func(cs tls.ConnectionState) error {
			seen = cs.PeerCertificates
			return errors.New("no thanks")
		}}
	d, err := (&Config{Server: Side{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: ca.File}, Client: s}).Build()
	require.NoError(t, err)
	cerr, _ := handshakePair(t, d, "localhost")
	require.Error(t, cerr)
	assert.Equal(t, ReasonRejected, Classify(cerr))
	require.Len(t, seen, 1)
	assert.Equal(t, p.Cert.SerialNumber, seen[0].SerialNumber)

	// depth 0: the node certificate is signed by the CA directly: fine.
	s.VerifyConnection, s.Depth = nil, NoIntermediates
	d, err = Both(s).Build()
	require.NoError(t, err)
	cerr, serr := handshakePair(t, d, "localhost")
	require.NoError(t, cerr)
	require.NoError(t, serr)

	// A certificate from an intermediate CA: depth 1 takes it, depth 0
	// refuses it.
	sub := ca.SubCA(t, "sub").Node(t, "s")
	for _, tc := range []struct {
		depth int
		ok    bool
	}{{1, true}, {0, true}, {NoIntermediates, false}} {
		srv := Side{CertFile: sub.CertFile, KeyFile: sub.KeyFile, CAFile: ca.File}
		cli := Side{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: ca.File, Depth: tc.depth}
		d, err := (&Config{Server: srv, Client: cli}).Build()
		require.NoError(t, err)
		cerr, _ := handshakePair(t, d, "localhost")
		if tc.ok {
			assert.NoError(t, cerr, "depth %d", tc.depth)
		} else {
			assert.Equal(t, ReasonRejected, Classify(Wrap(cerr, false)), "depth %d: %v", tc.depth, cerr)
		}
	}
}

func TestClassify(t *testing.T) {
	ca, other := testcerts.NewCA(t, "ca"), testcerts.NewCA(t, "other")
	good, wrong, expired := ca.Node(t, "g"), other.Node(t, "w"), ca.Expired(t, "x")
	side := func(p testcerts.Pair) Side { return Side{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: ca.File} }
	for _, tc := range []struct {
		name           string
		client, server Side
		host           string
		cli, srv       Reason
	}{
		{"unknown CA", side(good), side(wrong), "localhost", ReasonUnknownCA, ""},
		{"expired", side(good), side(expired), "localhost", ReasonExpired, ""},
		{"hostname", side(good), side(good), "elsewhere.example", ReasonHostname, ""},
		{"client unknown CA", side(wrong), side(good), "localhost", "", ReasonUnknownCA},
		{"no client cert", Side{CAFile: ca.File}, side(good), "localhost", "", ReasonNoClientCert},
		{"versions", Side{CAFile: ca.File, CertFile: good.CertFile, KeyFile: good.KeyFile, MaxVersion: tls.VersionTLS12},
			Side{CAFile: ca.File, CertFile: good.CertFile, KeyFile: good.KeyFile, MinVersion: tls.VersionTLS13}, "localhost", ReasonVersion, ReasonVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := (&Config{Server: tc.server, Client: tc.client}).Build()
			require.NoError(t, err)
			cerr, serr := handshakePair(t, d, tc.host)
			if tc.cli != "" {
				assert.Equal(t, tc.cli, Classify(Wrap(cerr, false)), "%v", cerr)
			}
			if tc.srv != "" {
				assert.Equal(t, tc.srv, Classify(Wrap(serr, true)), "%v", serr)
			}
			var te *Error
			assert.True(t, cerr != nil || serr != nil)
			if cerr != nil {
				assert.ErrorAs(t, Wrap(cerr, false), &te)
				assert.ErrorIs(t, Wrap(cerr, false), ErrTLS)
			}
		})
	}
	assert.Equal(t, Reason(""), Classify(nil))
	assert.Equal(t, Reason(""), Classify(io.EOF), "a bare EOF is no TLS failure")
	assert.Equal(t, ReasonProtocolMismatch, Classify(&handshake.Error{Kind: handshake.ErrPeerTLS}))
	assert.Equal(t, ReasonClosed, Classify(Wrap(io.EOF, false)))
}

// handshakePair runs a TLS handshake between d's client (dialling host)
// and d's server over TCP, and writes and reads one byte so that TLS 1.3's
// late client-certificate verdict arrives.
func handshakePair(t *testing.T, d *Dist, host string) (cerr, serr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		s := tls.Server(c, d.Server())
		if err := s.Handshake(); err != nil {
			done <- err
			return
		}
		_, err = s.Write([]byte{1})
		done <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(c, d.Client(host))
	cerr = tc.Handshake()
	if cerr == nil {
		_, cerr = tc.Read(make([]byte, 1))
	}
	if cerr != nil {
		_ = c.Close()
	}
	return cerr, <-done
}

func TestFromTerm(t *testing.T) {
	s := func(v string) etf.String { return etf.String(v) }
	a := func(v string) etf.Atom { return etf.Atom(v) }
	opt := func(k string, v etf.Term) etf.Tuple { return etf.Tuple{a(k), v} }
	term := etf.List{
		etf.Tuple{a("server"), etf.List{opt("certfile", s("/c.pem")), opt("keyfile", s("/k.pem")),
			opt("cacertfile", s("/ca.pem")), opt("verify", a("verify_peer")), opt("fail_if_no_peer_cert", a("true")),
			opt("versions", etf.List{a("tlsv1.2"), a("tlsv1.3")}), opt("secure_renegotiate", a("true"))}},
		etf.Tuple{a("client"), etf.List{opt("certfile", etf.List{int64('/'), int64('x')}), opt("verify", a("verify_none")),
			opt("depth", int64(2)), opt("server_name_indication", a("disable")), opt("hibernate_after", int64(10))}},
	}
	c, err := FromTerm(term)
	require.NoError(t, err)
	assert.Equal(t, Side{CertFile: "/c.pem", KeyFile: "/k.pem", CAFile: "/ca.pem", Verify: VerifyPeer,
		MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13}, c.Server)
	assert.Equal(t, Side{CertFile: "/x", Verify: VerifyNone, Depth: 2, NoServerName: true}, c.Client)
	assert.Equal(t, []string{"server:secure_renegotiate", "client:hibernate_after"}, c.Ignored)

	// fail_if_no_peer_cert false is applied; absent, a client certificate is required.
	c, err = FromTerm(etf.List{etf.Tuple{a("server"), etf.List{opt("fail_if_no_peer_cert", a("false"))}}})
	require.NoError(t, err)
	assert.True(t, c.Server.AllowNoPeerCert)

	for _, tc := range []struct {
		term etf.Term
		text string
	}{
		{a("x"), "expected a list"},
		{etf.List{etf.Tuple{a("both"), etf.List{}}}, "expected server or client"},
		{etf.List{etf.Tuple{a("server"), etf.List{opt("verify_fun", a("x"))}}}, "verify_fun: cannot be honoured"},
		{etf.List{etf.Tuple{a("server"), etf.List{opt("ciphers", etf.List{})}}}, "ciphers"},
		{etf.List{etf.Tuple{a("server"), etf.List{opt("password", s("p"))}}}, "password"},
		{etf.List{etf.Tuple{a("server"), etf.List{opt("crl_check", a("true"))}}}, "CRL"},
		{etf.List{etf.Tuple{a("server"), etf.List{opt("verify", a("maybe"))}}}, "verify_peer or verify_none"},
		{etf.List{etf.Tuple{a("server"), etf.List{opt("versions", etf.List{a("tlsv1.1")})}}}, "only 'tlsv1.2' and 'tlsv1.3'"},
		{etf.List{etf.Tuple{a("server"), etf.List{opt("certfile", int64(3))}}}, "a file name string"},
		{etf.List{etf.Tuple{a("server"), etf.List{opt("verify", a("verify_peer")), opt("verify", a("verify_none"))}}}, "given twice"},
	} {
		_, err := FromTerm(tc.term)
		var ce *ConfigError
		require.ErrorAs(t, err, &ce, "%v", tc.term)
		assert.Contains(t, err.Error(), tc.text)
	}
}

// TestParseOptFile reads the text BEAM reads, comments and all.
func TestParseOptFile(t *testing.T) {
	src := `%% dist.conf
[{server, [{certfile, "/etc/dist/node.pem"}, {keyfile, "/etc/dist/node.key"},
           {cacertfile, "/etc/dist/ca.pem"}, {verify, verify_peer},
           {fail_if_no_peer_cert, true}, {secure_renegotiate, true}]},
 {client, [{certfile, "/etc/dist/n\303\251.pem"}, {cacertfile, "/etc/dist/ca.pem"},
           {verify, verify_peer}, {versions, ['tlsv1.3']}, {server_name_indication, "cluster.example"}]}].
`
	c, err := ParseOptFile(src)
	require.NoError(t, err)
	assert.Equal(t, Side{CertFile: "/etc/dist/node.pem", KeyFile: "/etc/dist/node.key", CAFile: "/etc/dist/ca.pem", Verify: VerifyPeer}, c.Server)
	assert.Equal(t, Side{CertFile: "/etc/dist/n\u00c3\u00a9.pem", CAFile: "/etc/dist/ca.pem", Verify: VerifyPeer,
		MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS13, ServerName: "cluster.example"}, c.Client)
	assert.Equal(t, []string{"server:secure_renegotiate"}, c.Ignored)

	_, err = ParseOptFile(`[{server, [{certfile, "x"}]}`)
	require.Error(t, err, "no closing bracket")
	_, err = ParseOptFile(`[]. [].`)
	var ce *ConfigError
	require.ErrorAs(t, err, &ce)
	_, err = ParseOptFile(`[{server, [{verify_fun, {fun inet_tls_dist:verify_client/3, []}}]}].`)
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, err.Error(), "verify_fun")

	dir := t.TempDir()
	path := filepath.Join(dir, "dist.conf")
	require.NoError(t, os.WriteFile(path, []byte("[{server, [}]."), 0o600))
	_, err = LoadOptFile(path)
	var fe *FileError
	require.ErrorAs(t, err, &fe)
	assert.Contains(t, err.Error(), path)
	_, err = LoadOptFile(filepath.Join(dir, "missing.conf"))
	require.ErrorIs(t, err, os.ErrNotExist)
}
