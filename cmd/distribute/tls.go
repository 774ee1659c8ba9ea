package main

import (
	"flag"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/tlsdist"
)

// tlsFlags choose TLS distribution (like erl -proto_dist inet_tls) for
// every command that makes a node (run, ping, health, ...); names and epmd
// make none and stay plain EPMD clients.
type tlsFlags struct {
	cert, key, ca string
	optfile       string
}

func init() {
	nodeFlagHooks = append(nodeFlagHooks, func(fs *flag.FlagSet) func(*node.Options) error {
		f := &tlsFlags{}
		f.register(fs)
		return func(o *node.Options) error {
			c, err := f.config()
			if err != nil {
				return err
			}
			o.TLS = c
			return nil
		}
	})
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.optfile, "ssl-dist-optfile", "", "run distribution over TLS with the settings in `FILE`, in the format of erl's\n"+
		"-ssl_dist_optfile ([{server,[{certfile,...},...]},{client,[...]}].): one file for BEAM nodes and this one")
	fs.StringVar(&f.cert, "tls-cert", "", "run distribution over TLS with this certificate `FILE` (PEM; chain after the leaf)")
	fs.StringVar(&f.key, "tls-key", "", "the private key `FILE` (PEM) of --tls-cert (default: the key in --tls-cert's file)")
	fs.StringVar(&f.ca, "tls-ca", "", "the CA bundle `FILE` (PEM): peers must present a certificate it signed, in both\n"+
		"directions (without it TLS encrypts but verifies no peer)")
}

// config returns the TLS configuration the flags ask for, nil for plain
// distribution.
func (f *tlsFlags) config() (*tlsdist.Config, error) {
	direct := f.cert != "" || f.key != "" || f.ca != ""
	switch {
	case f.optfile != "" && direct:
		return nil, usagef("--ssl-dist-optfile and --tls-cert/--tls-key/--tls-ca exclude each other")
	case f.optfile != "":
		c, err := tlsdist.LoadOptFile(f.optfile)
		if err != nil {
			return nil, usagef("--ssl-dist-optfile: %v", err)
		}
		return c, nil
	case !direct:
		return nil, nil
	case f.cert == "":
		return nil, usagef("TLS needs --tls-cert (and --tls-key): a node accepts connections too")
	}
	return tlsdist.Both(tlsdist.Side{CertFile: f.cert, KeyFile: f.key, CAFile: f.ca}), nil
}

// TLS failure reasons, the label of distribute_tls_failures_total.
var tlsReasons = []tlsdist.Reason{
	tlsdist.ReasonUnknownCA, tlsdist.ReasonExpired, tlsdist.ReasonBadCertificate, tlsdist.ReasonHostname,
	tlsdist.ReasonNoClientCert, tlsdist.ReasonProtocolMismatch, tlsdist.ReasonNoAnswer, tlsdist.ReasonNotTLS,
	tlsdist.ReasonVersion, tlsdist.ReasonHandshakeFailure, tlsdist.ReasonRejected, tlsdist.ReasonTimeout,
	tlsdist.ReasonClosed, tlsdist.ReasonOther,
}

// tlsMetrics counts TLS distribution failures by direction and reason.
type tlsMetrics struct{ failures *prometheus.CounterVec }

func newTLSMetrics(reg *prometheus.Registry) *tlsMetrics {
	m := &tlsMetrics{failures: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "distribute_tls_failures_total",
		Help: "TLS distribution connections that failed, by direction (inbound: the peer dialled) and reason.",
	}, []string{"direction", "reason"})}
	reg.MustRegister(m.failures)
	for _, dir := range []string{"inbound", "outbound"} {
		for _, r := range tlsReasons {
			m.failures.WithLabelValues(dir, string(r))
		}
	}
	return m
}

// observe counts e if it is a TLS failure.
func (m *tlsMetrics) observe(e node.Event) {
	if e.Kind != node.EventHandshakeFailed {
		return
	}
	r := tlsdist.Classify(e.Err)
	if r == "" {
		return
	}
	dir := "outbound"
	if e.Inbound {
		dir = "inbound"
	}
	m.failures.WithLabelValues(dir, string(r)).Inc()
}

// isTLSFailure reports whether a handshake failure is a TLS one (reason
// "tls" of distribute_handshakes_total).
func isTLSFailure(err error) bool {
	return tlsdist.Classify(err) != ""
}
