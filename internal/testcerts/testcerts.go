// Package testcerts makes throw-away X.509 material for TLS distribution
// tests: a CA, certificates it signs (for node names' hosts, localhost and
// 127.0.0.1), a second unrelated CA, and expired certificates, written as
// PEM files, plus BEAM -ssl_dist_optfile text that uses them.
package testcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// CA is a certificate authority made for a test.
type CA struct {
	Cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	CertPEM []byte
	File    string // its certificate, PEM
	dir     string
	chain   []byte // PEM of the intermediates up to the root (not included), for a SubCA
}

// Pair is a certificate and key, as files.
type Pair struct {
	CertFile, KeyFile string
	Cert              *x509.Certificate
}

// NewCA makes a CA named name whose files live in a temporary directory of
// the test.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	return NewCAIn(t, t.TempDir(), name)
}

// NewCAIn is NewCA with the files (the CA's and those of the certificates
// it issues) in dir, e.g. a directory a chroot's nodes see.
func NewCAIn(t testing.TB, dir, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &CA{Cert: cert, key: key, dir: dir}
	ca.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	ca.File = filepath.Join(ca.dir, name+"-ca.pem")
	write(t, ca.File, ca.CertPEM)
	return ca
}

// SubCA makes an intermediate CA signed by ca. Certificates it issues
// carry it in their certificate file, after the leaf.
func (ca *CA) SubCA(t testing.TB, name string) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	sub := &CA{Cert: cert, key: key, dir: ca.dir}
	sub.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	sub.chain = append(append([]byte(nil), sub.CertPEM...), ca.chain...)
	sub.File = filepath.Join(ca.dir, name+"-ca.pem")
	write(t, sub.File, sub.CertPEM)
	return sub
}

// Hosts are the names every node certificate carries: localhost,
// 127.0.0.1, ::1 and this machine's host name (the host part of short
// node names).
func Hosts(t testing.TB) []string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	hs := []string{"localhost", "127.0.0.1", "::1", h}
	if i := strings.IndexByte(h, '.'); i > 0 {
		hs = append(hs, h[:i])
	}
	return hs
}

// Issue signs a certificate for the hosts (DNS names or IPs; an IP is
// written both as an IP address and as a DNS name), usable as server and
// client, valid from notBefore to notAfter.
func (ca *CA) Issue(t testing.TB, name string, hosts []string, notBefore, notAfter time.Time) Pair {
	t.Helper()
	var dns []string
	var ips []net.IP
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		}
		// An IP goes in as a DNS name too: OTP 25 checks the host part of
		// a node name such as x@127.0.0.1 as a DNS name, never as an IP.
		dns = append(dns, h)
	}
	return ca.issue(t, name, dns, ips, notBefore, notAfter)
}

func (ca *CA) issue(t testing.TB, name string, dns []string, ips []net.IP, notBefore, notAfter time.Time) Pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	tmpl.DNSNames, tmpl.IPAddresses = dns, ips
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	p := Pair{CertFile: filepath.Join(ca.dir, name+".pem"), KeyFile: filepath.Join(ca.dir, name+".key"), Cert: cert}
	write(t, p.CertFile, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), ca.chain...))
	write(t, p.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	return p
}

// Node issues a certificate valid now for Hosts.
func (ca *CA) Node(t testing.TB, name string) Pair {
	return ca.Issue(t, name, Hosts(t), time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}

// Expired issues a certificate for Hosts that expired an hour ago.
func (ca *CA) Expired(t testing.TB, name string) Pair {
	return ca.Issue(t, name, Hosts(t), time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
}

// OptFile writes a BEAM -ssl_dist_optfile for this pair and CA file with
// mutual verification ({verify, verify_peer} both sides,
// {fail_if_no_peer_cert, true} on the server) and returns its path.
// Extra server and client options (Erlang text, comma-led) may be added.
func OptFile(t testing.TB, p Pair, caFile, extraServer, extraClient string) string {
	t.Helper()
	q := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"` }
	common := `{certfile,` + q(p.CertFile) + `},{keyfile,` + q(p.KeyFile) + `},{cacertfile,` + q(caFile) + `},{verify,verify_peer}`
	src := "[{server,[" + common + ",{fail_if_no_peer_cert,true}" + extraServer + "]},\n {client,[" + common + extraClient + "]}].\n"
	path := filepath.Join(filepath.Dir(p.CertFile), filepath.Base(p.CertFile)+".conf")
	write(t, path, []byte(src))
	return path
}

func serial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func write(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// IssueRaw signs a certificate valid now with exactly these DNS names and
// IP addresses.
func (ca *CA) IssueRaw(t testing.TB, name string, dns []string, ips []net.IP) Pair {
	t.Helper()
	return ca.issue(t, name, dns, ips, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
}
