package node

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/distribute-go/distribute/tlsdist"
)

// TLS distribution (Options.TLS), as OTP's inet_tls_dist runs it: EPMD
// stays plain; every distribution connection is TCP, then TLS, then the
// usual handshake with 4-byte frames inside TLS, then the usual traffic.
// The TLS handshake runs under the connection's setup time.
//
// Mismatches end at once where the other side speaks: a plain name message
// on our TLS listener is answered with a fatal TLS alert (unexpected
// message, as a BEAM TLS listener does); a TLS hello on our plain listener
// with the plain status not_allowed (handshake.ErrPeerTLS). A BEAM plain
// listener answers a TLS hello with silence until its net_setuptime, so
// our TLS dialer can only say so when its own setup time ends
// (tlsdist.ReasonNoAnswer).

// ErrTLS matches (errors.Is) a Connect error whose TLS setup failed; the
// *tlsdist.Error in its chain (errors.As) gives the reason.
var ErrTLS = &ConnectError{Kind: ConnectTLSFailed}

// buildTLS checks the TLS configuration before the node listens.
func buildTLS(c *tlsdist.Config) (*tlsdist.Dist, error) {
	if c == nil {
		return nil, nil
	}
	d, err := c.Build()
	if err != nil {
		return nil, &StartError{Kind: StartFailed, Detail: "TLS: " + err.Error(), Err: err}
	}
	return d, nil
}

// frameSize is the handshake's frame length prefix: 4 inside TLS.
func (n *Node) frameSize() int {
	if n.tls != nil {
		return 4
	}
	return 2
}

// countConn counts the bytes read from the peer, to tell a silent peer
// from one that answered.
type countConn struct {
	net.Conn
	read int64
}

func (c *countConn) Read(b []byte) (int, error) {
	k, err := c.Conn.Read(b)
	c.read += int64(k)
	return k, err
}

// tlsClient runs the TLS handshake on a connection dialled to the node
// peer (plain: conn as is). SNI and the certificate's name check use the
// host part of peer's name, as BEAM's, also when Options.PeerAddrs gave
// another address. On failure it closes conn.
func (n *Node) tlsClient(ctx context.Context, conn net.Conn, peer string) (net.Conn, error) {
	if n.tls == nil {
		return conn, nil
	}
	_, host := splitName(peer)
	cc := &countConn{Conn: conn}
	cfg := n.tls.Client(host)
	asked := false // the server asked for a certificate we do not have
	if cfg.GetClientCertificate == nil {
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked = true
			return &tls.Certificate{}, nil
		}
	}
	tc := tls.Client(cc, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		te := tlsdist.Wrap(err, false).(*tlsdist.Error)
		if asked && te.Remote && te.Reason == tlsdist.ReasonHandshakeFailure {
			// TLS 1.2: a BEAM server with fail_if_no_peer_cert says only
			// handshake_failure.
			te.Reason = tlsdist.ReasonNoClientCert
			te.Detail = "the peer requires a client certificate and this node has none to send"
		}
		if cc.read == 0 && (te.Reason == tlsdist.ReasonTimeout || te.Reason == tlsdist.ReasonClosed) {
			te.Reason = tlsdist.ReasonNoAnswer
			te.Detail = "the peer sent nothing back to our TLS hello: it is probably a plain distribution listener (a BEAM one waits silently until its net_setuptime)"
		}
		return nil, te
	}
	return tc, nil
}

// tlsServer runs the TLS handshake on an accepted connection (plain: conn
// as is). On failure it refuses the peer, closes conn, reports the event
// and returns nil.
func (n *Node) tlsServer(ctx context.Context, conn net.Conn) net.Conn {
	if n.tls == nil {
		return conn
	}
	tc := tls.Server(conn, n.tls.Server())
	err := tc.HandshakeContext(ctx)
	if err == nil {
		return tc
	}
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) && rh.Conn != nil {
		// Not TLS at all (a plain handshake, or garbage): crypto/tls
		// sends nothing then. Answer as a BEAM TLS listener does, with a
		// fatal unexpected_message alert, and take what else is here so
		// that the close is a FIN.
		_ = conn.SetDeadline(time.Now().Add(50 * time.Millisecond))
		_, _ = conn.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0a})
		_, _ = conn.Read(make([]byte, 4096))
	}
	_ = conn.Close()
	err = tlsdist.Wrap(err, true)
	n.log.Debug("inbound TLS handshake failed", "remote", conn.RemoteAddr().String(), "err", err)
	n.emit(Event{Kind: EventHandshakeFailed, Inbound: true, Err: err, Addr: conn.RemoteAddr().String()})
	return nil
}

// tlsFailure reports whether a connect error is a TLS failure (other than
// a plain timeout), for connectErr.
func tlsFailure(err error) bool {
	r := tlsdist.Classify(err)
	return r != "" && r != tlsdist.ReasonTimeout
}
