package tlsdist

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"strings"

	"github.com/distribute-go/distribute/handshake"
)

// Reason is why a TLS distribution connection failed, short and stable
// enough to count in metrics.
type Reason string

// The reasons Classify gives.
const (
	ReasonUnknownCA        Reason = "unknown_ca"        // a certificate is not signed by a trusted CA
	ReasonExpired          Reason = "expired"           // a certificate is expired or not yet valid
	ReasonBadCertificate   Reason = "bad_certificate"   // a certificate was refused for another reason
	ReasonHostname         Reason = "hostname_mismatch" // the server's certificate does not name the host dialled
	ReasonNoClientCert     Reason = "no_client_certificate"
	ReasonProtocolMismatch Reason = "protocol_mismatch" // one side runs TLS distribution, the other plain
	ReasonNoAnswer         Reason = "no_tls_answer"     // the peer sent nothing back to our TLS hello (a plain BEAM listener does that)
	ReasonNotTLS           Reason = "not_tls"           // the other end sent bytes that are neither TLS nor a handshake
	ReasonVersion          Reason = "protocol_version"
	ReasonHandshakeFailure Reason = "handshake_failure" // no common parameters, or the peer refused without saying why
	ReasonRejected         Reason = "rejected"          // the VerifyConnection hook or the depth limit refused
	ReasonTimeout          Reason = "timeout"
	ReasonClosed           Reason = "closed" // the peer closed during the TLS handshake
	ReasonOther            Reason = "other"
)

// ErrTLS matches (errors.Is) every *Error.
var ErrTLS = errors.New("TLS distribution failure")

// Error is a failed TLS setup of one distribution connection.
type Error struct {
	Reason Reason
	// Remote: the peer refused (it sent the alert), rather than this
	// side refusing the peer.
	Remote bool
	Detail string // human-readable: what happened and what to check
	Err    error  // the crypto/tls or network error
}

func (e *Error) Error() string {
	s := "tls: " + string(e.Reason) + ": " + e.Detail
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap gives the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Is matches ErrTLS.
func (e *Error) Is(target error) bool { return target == ErrTLS }

// Wrap turns an error of a TLS handshake (or of the first reads after it,
// where TLS 1.3 reports a client certificate the server refused) into an
// *Error with its Reason; server says this side accepted the connection.
// nil stays nil; an *Error is returned as is.
func Wrap(err error, server bool) error {
	if err == nil {
		return nil
	}
	var te *Error
	if errors.As(err, &te) {
		return err
	}
	r, remote, detail := classify(err, server)
	return &Error{Reason: r, Remote: remote, Detail: detail, Err: err}
}

// Classify returns the Reason of a TLS failure (an *Error, or a raw
// crypto/tls error), or "" when err is none.
func Classify(err error) Reason {
	if err == nil {
		return ""
	}
	var te *Error
	if errors.As(err, &te) {
		return te.Reason
	}
	r, _, _ := classify(err, false)
	if r == ReasonOther || r == ReasonClosed || r == ReasonTimeout {
		return ""
	}
	return r
}

// IsTLSFailure reports whether err carries a TLS failure: an *Error, an
// alert the peer sent, or a certificate check that failed.
func IsTLSFailure(err error) bool {
	return Classify(err) != ""
}

// alert codes (RFC 8446 section 6 and RFC 5246 section 7.2).
const (
	alertUnexpectedMessage = 10
	alertHandshakeFailure  = 40
	alertBadCertificate    = 42
	alertUnsupportedCert   = 43
	alertCertRevoked       = 44
	alertCertExpired       = 45
	alertCertUnknown       = 46
	alertUnknownCA         = 48
	alertProtocolVersion   = 70
	alertCertRequired      = 116
)

// remoteAlert returns the alert code the peer sent, if err is one.
func remoteAlert(err error) (uint8, bool) {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return 0, false
	}
	v := reflect.ValueOf(op.Err)
	if v.Kind() != reflect.Uint8 {
		return 0, false
	}
	return uint8(v.Uint()), true
}

func classify(err error, server bool) (Reason, bool, string) {
	peerCert := "the server's certificate"
	if server {
		peerCert = "the client's certificate"
	}
	var (
		ua  x509.UnknownAuthorityError
		ci  x509.CertificateInvalidError
		hn  x509.HostnameError
		rh  tls.RecordHeaderError
		de  *depthError
		he  *hookError
		cve *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &ua):
		return ReasonUnknownCA, false, peerCert + " is not signed by a CA in our CA bundle"
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		return ReasonExpired, false, peerCert + " is expired or not yet valid"
	case errors.As(err, &ci):
		return ReasonBadCertificate, false, peerCert + " is not valid for this use"
	case errors.As(err, &hn):
		return ReasonHostname, false, "the server's certificate does not name the host of the node dialled (the host part of its node name)"
	case errors.As(err, &de), errors.As(err, &he):
		return ReasonRejected, false, peerCert + " was refused by the configured checks"
	case errors.As(err, &cve):
		return ReasonBadCertificate, false, peerCert + " failed verification"
	case strings.Contains(err.Error(), "client didn't provide a certificate"):
		return ReasonNoClientCert, false, "the client sent no certificate, and this node requires one (fail_if_no_peer_cert)"
	case errors.As(err, &rh):
		switch {
		case server && looksPlain(rh.RecordHeader[:]):
			return ReasonProtocolMismatch, false, "plain distribution handshake on a TLS listener: the peer runs plain distribution, not TLS (it needs -proto_dist inet_tls)"
		case looksPlain(rh.RecordHeader[:]):
			return ReasonProtocolMismatch, false, "plain distribution handshake answered our TLS hello: the peer runs plain distribution, not TLS (-proto_dist inet_tls)"
		}
		return ReasonNotTLS, false, "the peer's bytes are not TLS"
	}
	if a, ok := remoteAlert(err); ok {
		switch a {
		case alertUnknownCA:
			return ReasonUnknownCA, true, "the peer does not trust the CA that signed our certificate"
		case alertCertExpired:
			return ReasonExpired, true, "the peer says our certificate is expired"
		case alertBadCertificate, alertUnsupportedCert, alertCertRevoked, alertCertUnknown:
			return ReasonBadCertificate, true, "the peer refused our certificate"
		case alertCertRequired:
			return ReasonNoClientCert, true, "the peer requires a client certificate and we sent none"
		case alertProtocolVersion:
			return ReasonVersion, true, "no TLS version in common with the peer"
		case alertHandshakeFailure:
			if server {
				return ReasonHandshakeFailure, true, "the client refused the TLS handshake (a BEAM client says this when our certificate does not name the host it dialled; for a node name on an IP address OTP 25 wants that IP as a DNS name in the certificate)"
			}
			return ReasonHandshakeFailure, true, "the peer refused the TLS handshake (with TLS 1.2 a BEAM server says this when it requires a client certificate and got none)"
		case alertUnexpectedMessage:
			return ReasonNotTLS, true, "the peer did not understand our bytes as TLS"
		}
		return ReasonHandshakeFailure, true, "the peer refused the TLS handshake"
	}
	var ae tls.AlertError
	switch {
	case errors.Is(err, handshake.ErrPeerTLS):
		return ReasonProtocolMismatch, false, "the peer runs TLS distribution and this node plain"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.Canceled):
		return ReasonTimeout, false, "the TLS handshake did not finish within the setup time"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return ReasonClosed, false, "the peer closed the connection during the TLS handshake"
	case errors.As(err, &ae) && ae == alertProtocolVersion,
		strings.Contains(err.Error(), "unsupported versions"), strings.Contains(err.Error(), "protocol version not supported"):
		return ReasonVersion, false, "no TLS version in common with the peer"
	case errors.As(err, &ae) && ae == alertHandshakeFailure:
		return ReasonHandshakeFailure, false, "no TLS parameters in common with the peer"
	}
	return ReasonOther, false, "TLS handshake failed"
}

// looksPlain reports whether b (a would-be TLS record header) is the start
// of a plain distribution handshake frame: a 2-byte length, then a tag.
func looksPlain(b []byte) bool {
	if len(b) < 3 {
		return false
	}
	n := int(b[0])<<8 | int(b[1])
	switch b[2] {
	case 's', 'N', 'n':
		return n > 0 && n <= 2048
	}
	return false
}
