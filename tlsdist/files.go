package tlsdist

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"strings"
)

// File problems, matched with errors.Is on a *FileError.
var (
	// ErrNoPEM: the file holds no PEM block of the kind needed.
	ErrNoPEM = errors.New("no PEM data of the expected kind")
	// ErrBadCertificate: a certificate in the file does not parse.
	ErrBadCertificate = errors.New("certificate does not parse")
	// ErrBadKey: the private key does not parse, or does not match the
	// certificate.
	ErrBadKey = errors.New("private key unusable")
	// ErrEncryptedKey: the private key is encrypted (BEAM's {password,
	// ...}); decrypt it first (openssl pkey -in key.pem -out plain.pem).
	ErrEncryptedKey = errors.New("private key is encrypted")
)

// FileError is a file named in the configuration that cannot be used.
type FileError struct {
	What string // "certificate file", "key file", "CA file", "option file"
	Path string
	Err  error // an os error, or one of ErrNoPEM, ErrBadCertificate, ErrBadKey, ErrEncryptedKey
}

func (e *FileError) Error() string {
	return "tlsdist: " + e.What + " " + e.Path + ": " + e.Err.Error()
}

func (e *FileError) Unwrap() error { return e.Err }

// ConfigError is a configuration that cannot work as given.
type ConfigError struct {
	Side   string // "server", "client", or "" for both
	Option string // the optfile option, when it came from one
	Detail string
}

func (e *ConfigError) Error() string {
	s := "tlsdist: "
	if e.Side != "" {
		s += e.Side + " side: "
	}
	if e.Option != "" {
		s += "option " + e.Option + ": "
	}
	return s + e.Detail
}

// LoadKeyPair reads a PEM certificate (chain) and its private key. keyFile
// may be empty when certFile holds the key too. The error is a *FileError.
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, &FileError{What: "certificate file", Path: certFile, Err: err}
	}
	keyPEM, kpath := certPEM, certFile
	if keyFile != "" {
		if keyPEM, err = os.ReadFile(keyFile); err != nil {
			return tls.Certificate{}, &FileError{What: "key file", Path: keyFile, Err: err}
		}
		kpath = keyFile
	}
	var chain [][]byte
	for rest := certPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return tls.Certificate{}, &FileError{What: "certificate file", Path: certFile, Err: errors.Join(ErrBadCertificate, err)}
			}
			chain = append(chain, b.Bytes)
		}
	}
	if len(chain) == 0 {
		return tls.Certificate{}, &FileError{What: "certificate file", Path: certFile, Err: ErrNoPEM}
	}
	var key *pem.Block
	for rest := keyPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if strings.HasSuffix(b.Type, "PRIVATE KEY") {
			key = b
			break
		}
	}
	switch {
	case key == nil:
		return tls.Certificate{}, &FileError{What: "key file", Path: kpath, Err: ErrNoPEM}
	case key.Type == "ENCRYPTED PRIVATE KEY" || key.Headers["Proc-Type"] != "":
		return tls.Certificate{}, &FileError{What: "key file", Path: kpath, Err: ErrEncryptedKey}
	}
	cert, err := tls.X509KeyPair(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[0]}), pem.EncodeToMemory(key))
	if err != nil {
		return tls.Certificate{}, &FileError{What: "key file", Path: kpath, Err: errors.Join(ErrBadKey, err)}
	}
	cert.Certificate = chain
	return cert, nil
}

// LoadCAs reads a PEM bundle of CA certificates. The error is a
// *FileError.
func LoadCAs(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{What: "CA file", Path: path, Err: err}
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, &FileError{What: "CA file", Path: path, Err: errors.Join(ErrBadCertificate, err)}
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, &FileError{What: "CA file", Path: path, Err: ErrNoPEM}
	}
	return pool, nil
}
