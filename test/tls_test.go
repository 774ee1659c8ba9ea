package test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/internal/erltest"
	"github.com/distribute-go/distribute/internal/testcerts"
	"github.com/distribute-go/distribute/node"
	"github.com/distribute-go/distribute/tlsdist"
)

// tlsErlArgs makes an erl node run TLS distribution from an optfile.
func tlsErlArgs(optfile string) []string {
	return []string{"-proto_dist", "inet_tls", "-ssl_dist_optfile", optfile}
}

// tlsSide is mutual verification with p against ca, for a Go node.
func tlsSide(p testcerts.Pair, ca *testcerts.CA) tlsdist.Side {
	return tlsdist.Side{CertFile: p.CertFile, KeyFile: p.KeyFile, CAFile: ca.File}
}

// erlPingWithin evaluates net_adm:ping on p and returns the answer and how long it took.
func erlPingWithin(t *testing.T, p *erltest.Process, peer string) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	v := evalOK(t, p, fmt.Sprintf("net_adm:ping('%s')", peer))
	return v, time.Since(start)
}

// lastInboundFailure waits for g's next inbound handshake failure after from and returns its error.
func lastInboundFailure(t *testing.T, g *interopGo, from int) error {
	t.Helper()
	var err error
	require.Eventually(t, func() bool {
		for _, ev := range g.events.since(from) {
			if ev.Kind == node.EventHandshakeFailed && ev.Inbound {
				err = ev.Err
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "no inbound handshake failure on %s", g.Self())
	return err
}

// TestTLSInteropPing: Go and BEAM over TLS distribution, configured by the same -ssl_dist_optfile,
// with mutual verification, both ways: Go dials BEAM, BEAM dials Go, pings pass over each link, and
// the BEAM side sees the connection as TLS.
func TestTLSInteropPing(t *testing.T) {
	t.Parallel()
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		ca := testcerts.NewCAIn(t, rt.TempDir(t), "ca")
		ep := erltest.FreePort(t)
		erltest.StartEPMD(t, ep)
		cookie := newInteropCookie()
		// One -ssl_dist_optfile for both nodes, as a cluster would have it.
		conf := testcerts.OptFile(t, ca.Node(t, "node"), ca.File, "", "")
		p := startControlErl(t, erltest.ErlOptions{Runtime: rt, EPMDPort: ep, Cookie: cookie, Extra: tlsErlArgs(conf)})
		cfg, err := tlsdist.LoadOptFile(conf)
		require.NoError(t, err)
		g := startInteropGo(t, goName("g", false), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: ep, TLS: cfg})
		ctx := ctxFor(t, 20*time.Second)

		// Go dials; BEAM's ping then runs over that connection (net_kernel's is_auth call, answered by
		// the Go node), so traffic flows both ways inside TLS.
		require.NoError(t, g.Connect(ctx, p.Node()))
		// BEAM lists the node once its side of the handshake is done, a moment after ours.
		poll(t, 5*time.Second, 10*time.Millisecond, func() bool { return erlHas(t, p, "hidden", g.Self()) })
		v, _ := erlPingWithin(t, p, g.Self())
		assert.Equal(t, "pong", v)
		// The BEAM side runs this link over TLS.
		assert.Equal(t, "tls", evalOK(t, p, fmt.Sprintf(
			"{ok, I} = net_kernel:node_info('%s', address), element(4, I)", g.Self())))

		require.True(t, g.Disconnect(p.Node()))
		poll(t, 5*time.Second, 10*time.Millisecond, func() bool { return !erlHas(t, p, "hidden", g.Self()) })
		// BEAM dials.
		v, _ = erlPingWithin(t, p, g.Self())
		assert.Equal(t, "pong", v)
		assert.Equal(t, []string{p.Node()}, g.Nodes())
		v, _ = erlPingWithin(t, p, g.Self())
		assert.Equal(t, "pong", v)
	})
}

// TestTLSInteropRefusals: each mismatch between a Go node and a BEAM node is refused with its own
// reason, fast, in both directions.
func TestTLSInteropRefusals(t *testing.T) {
	t.Parallel()
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		ca, wrongCA := testcerts.NewCAIn(t, rt.TempDir(t), "ca"), testcerts.NewCAIn(t, rt.TempDir(t), "wrong")
		erlPair := ca.Node(t, "erl")
		goPair, wrongPair, expired := ca.Node(t, "go"), wrongCA.Node(t, "gow"), ca.Expired(t, "gox")
		ep := erltest.FreePort(t)
		erltest.StartEPMD(t, ep)
		cookie := newInteropCookie()
		tlsErl := startControlErl(t, erltest.ErlOptions{Runtime: rt, EPMDPort: ep, Cookie: cookie,
			Extra: tlsErlArgs(testcerts.OptFile(t, erlPair, ca.File, "", ""))})
		plainErl := startControlErl(t, erltest.ErlOptions{Runtime: rt, EPMDPort: ep, Cookie: cookie})
		// A BEAM node that trusts the other CA and presents a certificate from it.
		wrongErl := startControlErl(t, erltest.ErlOptions{Runtime: rt, EPMDPort: ep, Cookie: cookie,
			Extra: tlsErlArgs(testcerts.OptFile(t, wrongCA.Node(t, "erlw"), wrongCA.File, "", ""))})

		// BEAM nodes that trust our CA but present a certificate from the other CA, an expired one, or
		// none at all (their client side has no certfile).
		wrongCertErl := startControlErl(t, erltest.ErlOptions{Runtime: rt, EPMDPort: ep, Cookie: cookie,
			Extra: tlsErlArgs(testcerts.OptFile(t, wrongCA.Node(t, "erlwc"), ca.File, "", ""))})
		expiredErl := startControlErl(t, erltest.ErlOptions{Runtime: rt, EPMDPort: ep, Cookie: cookie,
			Extra: tlsErlArgs(testcerts.OptFile(t, ca.Expired(t, "erlx"), ca.File, "", ""))})
		noCertConf := filepath.Join(rt.TempDir(t), "nocert.conf")
		require.NoError(t, os.WriteFile(noCertConf, []byte(fmt.Sprintf(
			"[{server,[{certfile,%q},{keyfile,%q},{cacertfile,%q},{verify,verify_peer},{fail_if_no_peer_cert,true}]},\n"+
				" {client,[{cacertfile,%q},{verify,verify_peer}]}].\n", erlPair.CertFile, erlPair.KeyFile, ca.File, ca.File)), 0o600))
		noCertErl := startControlErl(t, erltest.ErlOptions{Runtime: rt, EPMDPort: ep, Cookie: cookie, Extra: tlsErlArgs(noCertConf)})

		goNode := func(cfg *tlsdist.Config, setup time.Duration) *interopGo {
			return startInteropGo(t, goName("g", false), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: ep,
				TLS: cfg, SetupTimeout: setup})
		}
		good := goNode(tlsdist.Both(tlsSide(goPair, ca)), 0)
		plain := goNode(nil, 0)
		const fast = 2 * time.Second
		// A BEAM node's first TLS connection loads ssl (up to 1.5 s seen); have each do one before the
		// bounds below are measured (the results do not matter, the subtests count events from then).
		for _, e := range []*erltest.Process{tlsErl, wrongErl, wrongCertErl, expiredErl, noCertErl} {
			erlPingWithin(t, e, good.Self())
			evalOK(t, e, fmt.Sprintf("erlang:disconnect_node('%s')", good.Self()))
		}
		poll(t, 5*time.Second, 10*time.Millisecond, func() bool { return good.ConnectedCount() == 0 })

		t.Run("Go dials BEAM", func(t *testing.T) {
			for _, tc := range []struct {
				name   string
				cfg    *tlsdist.Config
				peer   *erltest.Process
				want   tlsdist.Reason
				remote bool
			}{
				{"client cert from wrong CA", tlsdist.Both(tlsSide(wrongPair, ca)), tlsErl, tlsdist.ReasonUnknownCA, true},
				{"expired client cert", tlsdist.Both(tlsSide(expired, ca)), tlsErl, tlsdist.ReasonExpired, true},
				{"no client cert", &tlsdist.Config{Server: tlsSide(goPair, ca), Client: tlsdist.Side{CAFile: ca.File}}, tlsErl, tlsdist.ReasonNoClientCert, true},
				{"server cert from wrong CA", tlsdist.Both(tlsSide(goPair, ca)), wrongErl, tlsdist.ReasonUnknownCA, false},
				{"plain Go to TLS BEAM", nil, tlsErl, tlsdist.ReasonProtocolMismatch, false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					g := goNode(tc.cfg, 0)
					start := time.Now()
					err := g.Connect(ctxFor(t, 15*time.Second), tc.peer.Node())
					took := time.Since(start)
					require.ErrorIs(t, err, node.ErrTLS, "%v", err)
					var te *tlsdist.Error
					require.ErrorAs(t, err, &te)
					assert.Equal(t, tc.want, te.Reason, "%v", err)
					assert.Equal(t, tc.remote, te.Remote, "%v", err)
					assert.Less(t, took, fast, "%v", err)
					if tc.cfg == nil {
						assert.ErrorIs(t, err, handshake.ErrPeerTLS)
					}
				})
			}
		})

		t.Run("BEAM dials Go", func(t *testing.T) {
			for _, tc := range []struct {
				name string
				from *erltest.Process
				to   *interopGo
				want tlsdist.Reason
				text string
			}{
				{"client cert from wrong CA", wrongCertErl, good, tlsdist.ReasonUnknownCA, "not signed by a CA in our CA bundle"},
				{"expired client cert", expiredErl, good, tlsdist.ReasonExpired, "the client's certificate is expired"},
				{"no client cert", noCertErl, good, tlsdist.ReasonNoClientCert, "the client sent no certificate"},
				{"BEAM does not trust our CA", wrongErl, good, tlsdist.ReasonUnknownCA, "the peer does not trust the CA that signed our certificate"},
				{"plain BEAM to TLS Go", plainErl, good, tlsdist.ReasonProtocolMismatch, "plain distribution handshake on a TLS listener"},
				{"TLS BEAM to plain Go", tlsErl, plain, tlsdist.ReasonProtocolMismatch, "TLS record on a plain distribution listener"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					from := tc.to.events.mark()
					v, took := erlPingWithin(t, tc.from, tc.to.Self())
					assert.Equal(t, "pang", v)
					assert.Less(t, took, fast)
					err := lastInboundFailure(t, tc.to, from)
					assert.Equal(t, tc.want, tlsdist.Classify(err), "%v", err)
					assert.Contains(t, err.Error(), tc.text)
				})
			}
		})

		// A TLS Go node dialling a plain BEAM node: BEAM reads the TLS record header as a 2-byte length
		// (0x1603 = 5635 bytes) and waits for that many bytes until its net_setuptime (7 s); nothing
		// comes back, so our dialer can tell only when its own setup time ends.
		t.Run("TLS Go to plain BEAM", func(t *testing.T) {
			const setup = 1500 * time.Millisecond
			g := goNode(tlsdist.Both(tlsSide(goPair, ca)), setup)
			start := time.Now()
			err := g.Connect(ctxFor(t, 15*time.Second), plainErl.Node())
			took := time.Since(start)
			require.ErrorIs(t, err, node.ErrTLS, "%v", err)
			var te *tlsdist.Error
			require.ErrorAs(t, err, &te)
			assert.Equal(t, tlsdist.ReasonNoAnswer, te.Reason, "%v", err)
			assert.Contains(t, err.Error(), "plain distribution listener")
			assert.Less(t, took, setup+time.Second)
		})

		t.Run("wrong cookie inside TLS", func(t *testing.T) {
			g := startInteropGo(t, goName("g", false), "not-the-cookie", node.Options{EPMD: node.EPMDExternal, EPMDPort: ep,
				TLS: tlsdist.Both(tlsSide(goPair, ca))})
			err := g.Connect(ctxFor(t, 15*time.Second), tlsErl.Node())
			require.ErrorIs(t, err, node.ErrAuth, "%v", err)
			assert.NotErrorIs(t, err, node.ErrTLS)
			from := g.events.mark()
			v, _ := erlPingWithin(t, tlsErl, g.Self())
			assert.Equal(t, "pang", v)
			err = lastInboundFailure(t, g, from)
			assert.ErrorIs(t, err, handshake.ErrAuth)
		})
	})
}

// TestTLSInteropRawMismatch records what a real BEAM listener does with the wrong kind of first
// bytes: a TLS listener answers a plain name message with a fatal unexpected_message alert at once;
// a plain listener answers a TLS hello with silence until its setup time.
func TestTLSInteropRawMismatch(t *testing.T) {
	t.Parallel()
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		ca := testcerts.NewCAIn(t, rt.TempDir(t), "ca")
		ep := erltest.FreePort(t)
		erltest.StartEPMD(t, ep)
		cookie := newInteropCookie()
		tlsErl := startControlErl(t, erltest.ErlOptions{Runtime: rt, EPMDPort: ep, Cookie: cookie,
			Extra: tlsErlArgs(testcerts.OptFile(t, ca.Node(t, "erl"), ca.File, "", ""))})
		alive, _, _ := strings.Cut(tlsErl.Node(), "@")
		info, err := (&epmd.Client{Port: ep}).PortPlease(ctxFor(t, 5*time.Second), "127.0.0.1", alive)
		require.NoError(t, err)
		c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(info.Port)))
		require.NoError(t, err)
		defer c.Close()
		name := "probe@localhost"
		msg := []byte{0, byte(15 + len(name)), 'N', 0, 0, 0, 0x0d, 0x07, 0xdf, 0x7f, 0xbd, 0, 0, 0, 1, 0, byte(len(name))}
		_, err = c.Write(append(msg, name...))
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
		start := time.Now()
		buf := make([]byte, 64)
		var got []byte
		for {
			k, err := c.Read(buf)
			got = append(got, buf[:k]...)
			if err != nil {
				assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "%v", err)
				break
			}
		}
		assert.Equal(t, []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0a}, got, "fatal unexpected_message alert")
		assert.Less(t, time.Since(start), time.Second)
	})
}

// clientHello returns the first TLS record a crypto/tls client sends.
func clientHello(t *testing.T) []byte {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() {
		c := tls.Client(a, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true}) //nolint:gosec // never completes
		_ = c.Handshake()
	}()
	require.NoError(t, b.SetReadDeadline(time.Now().Add(5*time.Second)))
	hdr := make([]byte, 5)
	_, err := io.ReadFull(b, hdr)
	require.NoError(t, err)
	body := make([]byte, int(hdr[3])<<8|int(hdr[4]))
	_, err = io.ReadFull(b, body)
	require.NoError(t, err)
	return append(hdr, body...)
}

// TestTLSInteropHostile: 50 slow-loris peers trickling a TLS hello into a TLS Go node, and 20 that
// send garbage, do not keep a BEAM TLS node from pinging it nor the Go node from dialling BEAM;
// each loris is dropped at the Go node's setup time, each garbage peer at once.
func TestTLSInteropHostile(t *testing.T) {
	t.Parallel()
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		const (
			lorises = 50
			setup   = 2 * time.Second
		)
		ca := testcerts.NewCAIn(t, rt.TempDir(t), "ca")
		ep := erltest.FreePort(t)
		erltest.StartEPMD(t, ep)
		cookie := newInteropCookie()
		p := startControlErl(t, erltest.ErlOptions{Runtime: rt, EPMDPort: ep, Cookie: cookie,
			Extra: tlsErlArgs(testcerts.OptFile(t, ca.Node(t, "erl"), ca.File, "", ""))})
		g := startInteropGo(t, goName("g", false), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: ep,
			SetupTimeout: setup, TLS: tlsdist.Both(tlsSide(ca.Node(t, "go"), ca))})
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(g.Port()))
		hello := clientHello(t)
		// A first TLS connection of a BEAM node loads ssl (up to 1.5 s seen): do it before the siege,
		// so the bounds below measure the siege only.
		v, _ := erlPingWithin(t, p, g.Self())
		require.Equal(t, "pong", v)
		evalOK(t, p, fmt.Sprintf("erlang:disconnect_node('%s')", g.Self()))
		poll(t, 5*time.Second, 10*time.Millisecond, func() bool { return g.ConnectedCount() == 0 })

		type result struct {
			after  time.Duration
			err    error
			reply  []byte
			loris  bool
			closed bool
		}
		results := make(chan result, lorises+20)
		var wg sync.WaitGroup
		var connected atomic.Int64
		stop := make(chan struct{})
		for i := range lorises + 20 {
			loris := i < lorises
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				c, err := net.DialTimeout("tcp", addr, 5*time.Second)
				if err != nil {
					results <- result{err: err, loris: loris}
					return
				}
				defer c.Close()
				connected.Add(1)
				if !loris {
					_, _ = c.Write([]byte("\x00\x05hello garbage"))
				}
				buf := make([]byte, 64)
				for sent := 0; ; {
					if loris && sent < len(hello)-1 { // never the last byte
						_, _ = c.Write(hello[sent : sent+1])
						sent++
					}
					_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
					k, err := c.Read(buf)
					var ne net.Error
					switch {
					case errors.As(err, &ne) && ne.Timeout():
						select {
						case <-stop:
							results <- result{after: time.Since(start), err: errors.New("still open at the end"), loris: loris}
							return
						default:
							continue
						}
					default:
						results <- result{after: time.Since(start), err: err, reply: append([]byte(nil), buf[:k]...), loris: loris, closed: k == 0}
						return
					}
				}
			}()
		}
		// While they hang on: BEAM pings us, then we dial BEAM.
		poll(t, 5*time.Second, 5*time.Millisecond, func() bool { return connected.Load() == lorises+20 })
		v, took := erlPingWithin(t, p, g.Self())
		assert.Equal(t, "pong", v)
		assert.Less(t, took, time.Second, "not held up by the siege (a loris is dropped only after %v)", setup)
		evalOK(t, p, fmt.Sprintf("erlang:disconnect_node('%s')", g.Self()))
		poll(t, 5*time.Second, 10*time.Millisecond, func() bool { return g.ConnectedCount() == 0 })
		start := time.Now()
		require.NoError(t, g.Connect(ctxFor(t, 5*time.Second), p.Node()))
		assert.Less(t, time.Since(start), time.Second)

		timer := time.AfterFunc(setup+3*time.Second, func() { close(stop) })
		defer timer.Stop()
		wg.Wait()
		close(results)
		for r := range results {
			if r.loris {
				assert.True(t, r.closed, "loris dropped without a reply: %v % x", r.err, r.reply)
				assert.GreaterOrEqual(t, r.after, setup-100*time.Millisecond, "loris dropped at the setup time")
				assert.Less(t, r.after, setup+2*time.Second)
			} else {
				assert.Equal(t, []byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0a}, r.reply, "garbage answered with a fatal alert")
				assert.Less(t, r.after, time.Second)
			}
		}
	})
}

// TestTLSInteropLongNames: with long names on 127.0.0.1 the host is an IP. Our dialer sends no SNI
// (an IP is no server name) and checks the certificate's IP address; OTP 25 sends "127.0.0.1" as
// SNI and checks it as a DNS name, OTP 27 and 29 as an IP address.
func TestTLSInteropLongNames(t *testing.T) {
	t.Parallel()
	erltest.ForEachRuntime(t, func(t *testing.T, rt *erltest.Runtime) {
		ca := testcerts.NewCAIn(t, rt.TempDir(t), "ca")
		ep := erltest.FreePort(t)
		erltest.StartEPMD(t, ep)
		cookie := newInteropCookie()
		p := startControlErl(t, erltest.ErlOptions{Runtime: rt, EPMDPort: ep, Cookie: cookie, LongNames: true,
			Extra: tlsErlArgs(testcerts.OptFile(t, ca.Node(t, "erl"), ca.File, "", ""))})
		g := startInteropGo(t, goName("g", true), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: ep,
			TLS: tlsdist.Both(tlsSide(ca.Node(t, "go"), ca))})
		require.NoError(t, g.Connect(ctxFor(t, 10*time.Second), p.Node()))
		v, _ := erlPingWithin(t, p, g.Self())
		assert.Equal(t, "pong", v)
		evalOK(t, p, fmt.Sprintf("erlang:disconnect_node('%s')", g.Self()))
		poll(t, 5*time.Second, 10*time.Millisecond, func() bool { return g.ConnectedCount() == 0 })
		v, _ = erlPingWithin(t, p, g.Self())
		assert.Equal(t, "pong", v)

		// OTP 25 checks the host 127.0.0.1 as a DNS name only: a certificate with the IP as an IP
		// address alone is refused by its hostname check ({bad_cert,hostname_check_failed}), and it
		// tells us no more than handshake_failure. OTP 27 and 29 check the IP address.
		ipOnly := ca.IssueRaw(t, "ipo", nil, []net.IP{net.IPv4(127, 0, 0, 1)})
		h := startInteropGo(t, goName("h", true), cookie, node.Options{EPMD: node.EPMDExternal, EPMDPort: ep,
			TLS: tlsdist.Both(tlsSide(ipOnly, ca))})
		from := h.events.mark()
		v, _ = erlPingWithin(t, p, h.Self())
		if rt.Release != "25" {
			assert.Equal(t, "pong", v, "OTP %s checks the IP address", rt.Release)
			return
		}
		assert.Equal(t, "pang", v)
		err := lastInboundFailure(t, h, from)
		assert.Equal(t, tlsdist.ReasonHandshakeFailure, tlsdist.Classify(err), "%v", err)
		assert.Contains(t, err.Error(), "as a DNS name")
	})
}
