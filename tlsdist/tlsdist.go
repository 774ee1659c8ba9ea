// Package tlsdist builds the TLS configuration of TLS Erlang distribution,
// compatible with OTP's inet_tls_dist (erl -proto_dist inet_tls): the
// certificate and key, the CA bundle, peer verification in both
// directions, protocol versions, a custom verification hook, and the SNI
// that BEAM sends (the host part of the peer's node name). It reads BEAM's
// own -ssl_dist_optfile format (see ParseOptFile), classifies TLS failures
// by reason (see Classify), and produces the *tls.Config of each role.
//
// The package only configures TLS; the node package wraps its
// distribution connections with it (node.Options.TLS).
package tlsdist

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
)

// Verify says whether a side checks its peer's certificate.
type Verify int

const (
	// VerifyAuto (the zero value) verifies the peer when a CA is given
	// (CAFile or CAs), and not otherwise.
	VerifyAuto Verify = iota
	// VerifyPeer always verifies the peer (BEAM's {verify, verify_peer}).
	// The server side then needs a CA; the client side without one uses
	// the system roots.
	VerifyPeer
	// VerifyNone never verifies the peer (BEAM's {verify, verify_none}):
	// the link is encrypted but anyone may be at the other end. Only an
	// explicit choice gives it.
	VerifyNone
)

func (v Verify) String() string {
	switch v {
	case VerifyAuto:
		return "auto"
	case VerifyPeer:
		return "verify_peer"
	case VerifyNone:
		return "verify_none"
	}
	return "Verify(" + strconv.Itoa(int(v)) + ")"
}

// Side is the TLS settings of one role: the server side for connections
// the node accepts, the client side for those it dials.
type Side struct {
	// CertFile and KeyFile are PEM files: this side's certificate (with
	// any intermediates after it) and its private key. KeyFile may be
	// empty when CertFile holds the key too. Ignored when Certificates
	// is set.
	CertFile, KeyFile string
	// Certificates, if set, is used instead of CertFile/KeyFile.
	Certificates []tls.Certificate
	// CAFile is a PEM bundle of the CAs that sign peers' certificates.
	CAFile string
	// CAs, if set, is used instead of CAFile.
	CAs *x509.CertPool
	// Verify says whether the peer's certificate is checked; see Verify.
	Verify Verify
	// AllowNoPeerCert (server side only): with verification on, accept a
	// client that sends no certificate, like BEAM's
	// {fail_if_no_peer_cert, false}. The default refuses it, like
	// {fail_if_no_peer_cert, true}.
	AllowNoPeerCert bool
	// MinVersion and MaxVersion bound the TLS version (tls.VersionTLS12,
	// tls.VersionTLS13). 0 means TLS 1.2 and TLS 1.3 respectively; older
	// versions are refused.
	MinVersion, MaxVersion uint16
	// ServerName, client side only, replaces the SNI and the name the
	// server's certificate is checked against; by default both are the
	// host part of the peer's node name, as BEAM sends it.
	ServerName string
	// NoServerName, client side only, sends no SNI and checks the
	// server's certificate chain but not its host name (BEAM's
	// {server_name_indication, disable}).
	NoServerName bool
	// Depth, if positive, is the largest number of intermediate CA
	// certificates allowed between the peer's certificate and the CA
	// (BEAM's {depth, N}); NoIntermediates allows none ({depth, 0}). 0
	// means no limit beyond Go's.
	Depth int
	// VerifyConnection, if set, is called once per TLS handshake after the
	// standard checks passed (with verification off, after none); an
	// error fails the handshake with ReasonRejected. The state carries the
	// peer's certificates and, when verified, the chains.
	VerifyConnection func(tls.ConnectionState) error
}

// NoIntermediates is the Side.Depth that allows no intermediate CA, like
// ssl's {depth, 0}.
const NoIntermediates = -1

// Config is the TLS configuration of both roles.
type Config struct {
	Server Side // connections the node accepts
	Client Side // connections the node dials
	// Ignored lists the options ParseOptFile met and ignored, as
	// "server:name" or "client:name" (see ParseOptFile for which).
	Ignored []string
}

// Both returns a Config with the same settings for both roles, the usual
// case for a node.
func Both(s Side) *Config {
	return &Config{Server: s, Client: s}
}

// Dist is a built Config: the server *tls.Config and the client's, with
// files read and checked once.
type Dist struct {
	server *tls.Config
	client *tls.Config
	cside  Side
}

// Build reads the files, checks the settings and returns the built
// configuration. Errors are *FileError (a file missing or unusable) or
// *ConfigError (settings that contradict each other).
func (c *Config) Build() (*Dist, error) {
	if c == nil {
		return nil, &ConfigError{Detail: "no TLS configuration"}
	}
	srv, err := c.Server.build("server")
	if err != nil {
		return nil, err
	}
	cli, err := c.Client.build("client")
	if err != nil {
		return nil, err
	}
	return &Dist{server: srv, client: cli, cside: c.Client}, nil
}

// Server returns the configuration for accepted connections. Do not
// modify it.
func (d *Dist) Server() *tls.Config { return d.server }

// Client returns the configuration to dial a node on host (the host part
// of its node name): SNI and the certificate's host name check use host,
// like BEAM's {server_name_indication, Host}. It is a fresh copy.
func (d *Dist) Client(host string) *tls.Config {
	c := d.client.Clone()
	switch {
	case d.cside.NoServerName:
	case d.cside.ServerName != "":
		c.ServerName = d.cside.ServerName
	default:
		c.ServerName = host
	}
	return c
}

func (s *Side) verifying() bool {
	switch s.Verify {
	case VerifyPeer:
		return true
	case VerifyNone:
		return false
	}
	return s.CAs != nil || s.CAFile != ""
}

func (s *Side) build(role string) (*tls.Config, error) {
	if s.Verify < VerifyAuto || s.Verify > VerifyNone {
		return nil, &ConfigError{Side: role, Detail: "unknown verify mode " + s.Verify.String()}
	}
	c := &tls.Config{MinVersion: s.MinVersion, MaxVersion: s.MaxVersion}
	if c.MinVersion == 0 {
		c.MinVersion = tls.VersionTLS12
	}
	if c.MaxVersion == 0 {
		c.MaxVersion = tls.VersionTLS13
	}
	for _, v := range []uint16{c.MinVersion, c.MaxVersion} {
		if v != tls.VersionTLS12 && v != tls.VersionTLS13 {
			return nil, &ConfigError{Side: role, Detail: fmt.Sprintf("TLS version 0x%04x: only TLS 1.2 and 1.3 are supported", v)}
		}
	}
	if c.MinVersion > c.MaxVersion {
		return nil, &ConfigError{Side: role, Detail: "minimum TLS version above the maximum"}
	}
	certs := s.Certificates
	if len(certs) == 0 && s.CertFile != "" {
		cert, err := LoadKeyPair(s.CertFile, s.KeyFile)
		if err != nil {
			return nil, err
		}
		certs = []tls.Certificate{cert}
	} else if len(certs) == 0 && s.KeyFile != "" {
		return nil, &ConfigError{Side: role, Detail: "a key file without a certificate file"}
	}
	if role == "server" && len(certs) == 0 {
		return nil, &ConfigError{Side: role, Detail: "the server side needs a certificate and key"}
	}
	c.Certificates = certs
	pool := s.CAs
	if pool == nil && s.CAFile != "" {
		p, err := LoadCAs(s.CAFile)
		if err != nil {
			return nil, err
		}
		pool = p
	}
	verify := s.verifying()
	if s.Verify == VerifyNone && pool != nil {
		// Given a CA but told not to verify: do as told (BEAM does), and
		// do not pretend otherwise.
		pool = nil
	}
	hook := s.VerifyConnection
	depth := s.Depth
	if depth < NoIntermediates {
		return nil, &ConfigError{Side: role, Detail: "depth below NoIntermediates"}
	}
	limit := max(depth, 0)
	switch role {
	case "server":
		switch {
		case !verify:
			c.ClientAuth = tls.NoClientCert
			if hook != nil {
				// The hook sees the client's certificate, if any.
				c.ClientAuth = tls.RequestClientCert
			}
		case pool == nil:
			return nil, &ConfigError{Side: role, Detail: "verifying clients needs a CA bundle (cacertfile)"}
		case s.AllowNoPeerCert:
			c.ClientAuth = tls.VerifyClientCertIfGiven
		default:
			c.ClientAuth = tls.RequireAndVerifyClientCert
		}
		c.ClientCAs = pool
	case "client":
		if len(certs) > 0 {
			// Send our certificate even when the server's list of
			// acceptable CAs does not name its issuer (crypto/tls would
			// send none): the server then says what is wrong with it.
			mine := &certs[0]
			c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return mine, nil }
		}
		c.RootCAs = pool // nil with VerifyPeer: the system roots
		if !verify {
			c.InsecureSkipVerify = true
		} else if s.NoServerName {
			// No name to check: verify the chain ourselves.
			c.InsecureSkipVerify = true
			c.VerifyPeerCertificate = chainVerifier(pool)
		}
	}
	if hook != nil || (verify && depth != 0) {
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			if verify && depth != 0 && len(cs.PeerCertificates) > 0 {
				if err := checkDepth(cs, limit); err != nil {
					return err
				}
			}
			if hook != nil {
				if err := hook(cs); err != nil {
					return &hookError{err}
				}
			}
			return nil
		}
	}
	return c, nil
}

// chainVerifier checks the server's chain against roots (nil: the system
// roots) without a host name, for NoServerName.
func chainVerifier(roots *x509.CertPool) func([][]byte, [][]*x509.Certificate) error {
	return func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("tlsdist: the server sent no certificate")
		}
		certs := make([]*x509.Certificate, len(raw))
		for i, b := range raw {
			c, err := x509.ParseCertificate(b)
			if err != nil {
				return &tls.CertificateVerificationError{Err: err}
			}
			certs[i] = c
		}
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		if err != nil {
			return &tls.CertificateVerificationError{UnverifiedCertificates: certs, Err: err}
		}
		return nil
	}
}

// checkDepth accepts the connection if one verified chain (or, for a chain
// we verified in VerifyPeerCertificate, the sent one) has at most depth
// intermediates.
func checkDepth(cs tls.ConnectionState, depth int) error {
	chains := cs.VerifiedChains
	if len(chains) == 0 {
		// Verified by chainVerifier: count what the peer sent.
		if len(cs.PeerCertificates)-1 <= depth {
			return nil
		}
	}
	for _, ch := range chains {
		if len(ch)-2 <= depth {
			return nil
		}
	}
	return &depthError{depth: depth}
}

type depthError struct{ depth int }

func (e *depthError) Error() string {
	return "tlsdist: the peer's certificate chain has more than " + strconv.Itoa(e.depth) + " intermediate CAs (depth)"
}

type hookError struct{ err error }

func (e *hookError) Error() string { return "tlsdist: rejected by VerifyConnection: " + e.err.Error() }
func (e *hookError) Unwrap() error { return e.err }
