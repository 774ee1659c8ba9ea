package tlsdist

import (
	"crypto/tls"
	"fmt"
	"math/big"
	"os"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/distribute-go/distribute/etf"
)

// Honoured lists the -ssl_dist_optfile options that ParseOptFile applies,
// per side. Every one of them means what it means to BEAM's ssl, except
// where the package doc of ParseOptFile says otherwise.
var Honoured = []string{
	"certfile", "keyfile", "cacertfile", "verify", "fail_if_no_peer_cert",
	"versions", "depth", "server_name_indication", "crl_check (false only)",
}

// Refused lists the options that change what is verified or accepted and
// that this package cannot apply: a file with one of them is refused with a
// *ConfigError rather than run with weaker checks than it asks for.
var Refused = []string{
	"verify_fun", "partial_chain", "ciphers", "cacerts", "cert", "key",
	"certs_keys", "customize_hostname_check", "signature_algs",
	"signature_algs_cert", "eccs", "supported_groups", "password",
	"crl_check (other than false)",
}

// LoadOptFile reads a BEAM -ssl_dist_optfile; see ParseOptFile. The error
// is a *FileError when the file cannot be read or parsed, or a
// *ConfigError.
func LoadOptFile(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &FileError{What: "option file", Path: path, Err: err}
	}
	c, err := ParseOptFile(string(b))
	if err != nil {
		if ce, ok := err.(*ConfigError); ok {
			return nil, ce
		}
		return nil, &FileError{What: "option file", Path: path, Err: err}
	}
	return c, nil
}

// ParseOptFile reads the text of a BEAM -ssl_dist_optfile: one Erlang term,
// a list of {server, Opts} and {client, Opts}, each Opts a list of ssl
// options, ended by a full stop:
//
//	[{server, [{certfile, "node.pem"}, {keyfile, "node.key"},
//	           {cacertfile, "ca.pem"}, {verify, verify_peer},
//	           {fail_if_no_peer_cert, true}]},
//	 {client, [{certfile, "node.pem"}, {keyfile, "node.key"},
//	           {cacertfile, "ca.pem"}, {verify, verify_peer}]}].
//
// The options in Honoured are applied; those in Refused make it fail; any
// other is ignored and listed in Config.Ignored (hibernate_after,
// reuse_sessions, secure_renegotiate, dhfile, log_level, ...). Where the
// file says nothing this package is stricter than OTP: a side with a
// cacertfile and no verify option verifies its peer (OTP's server would
// not), and a verifying server requires a client certificate unless the
// file says {fail_if_no_peer_cert, false} (OTP's default is false).
// {verify, verify_none} is applied as written. Relative paths are as given
// (relative to the working directory, as for erl).
func ParseOptFile(src string) (*Config, error) {
	terms, err := etf.ParseAll(src)
	if err != nil {
		return nil, err
	}
	if len(terms) != 1 {
		return nil, &ConfigError{Detail: fmt.Sprintf("expected one term (a list of {server, ...} and {client, ...}), found %d", len(terms))}
	}
	return FromTerm(terms[0])
}

// FromTerm reads an optfile term already parsed; see ParseOptFile.
func FromTerm(t etf.Term) (*Config, error) {
	top, ok := asList(t)
	if !ok {
		return nil, &ConfigError{Detail: "expected a list of {server, Opts} and {client, Opts}"}
	}
	c := &Config{}
	seen := map[string]bool{}
	for _, e := range top {
		tup, ok := e.(etf.Tuple)
		if !ok || len(tup) != 2 {
			return nil, &ConfigError{Detail: fmt.Sprintf("expected {server, Opts} or {client, Opts}, got %s", show(e))}
		}
		role, _ := tup[0].(etf.Atom)
		var s *Side
		switch role {
		case "server":
			s = &c.Server
		case "client":
			s = &c.Client
		default:
			return nil, &ConfigError{Detail: fmt.Sprintf("expected server or client, got %s", show(tup[0]))}
		}
		if seen[string(role)] {
			return nil, &ConfigError{Side: string(role), Detail: "given twice"}
		}
		seen[string(role)] = true
		opts, ok := asList(tup[1])
		if !ok {
			return nil, &ConfigError{Side: string(role), Detail: "options are not a list"}
		}
		ign, err := s.apply(string(role), opts)
		if err != nil {
			return nil, err
		}
		for _, n := range ign {
			c.Ignored = append(c.Ignored, string(role)+":"+n)
		}
	}
	return c, nil
}

var refused = map[string]string{
	"verify_fun":               "an Erlang function; use Side.VerifyConnection from Go",
	"partial_chain":            "an Erlang function",
	"ciphers":                  "cipher lists are not translated; Go's crypto/tls offers only secure suites; remove it",
	"cacerts":                  "DER certificates inline are not supported; use cacertfile",
	"cert":                     "DER certificates inline are not supported; use certfile",
	"key":                      "inline keys are not supported; use keyfile",
	"certs_keys":               "not supported; use certfile and keyfile",
	"customize_hostname_check": "an Erlang function list",
	"signature_algs":           "not supported; remove it",
	"signature_algs_cert":      "not supported; remove it",
	"eccs":                     "not supported; remove it",
	"supported_groups":         "not supported; remove it",
	"password":                 "encrypted keys are not supported; decrypt the key file",
}

func (s *Side) apply(role string, opts []etf.Term) (ignored []string, err error) {
	seen := map[string]bool{}
	for _, o := range opts {
		tup, ok := o.(etf.Tuple)
		if !ok || len(tup) != 2 {
			return nil, &ConfigError{Side: role, Detail: fmt.Sprintf("expected {Option, Value}, got %s", show(o))}
		}
		name, ok := tup[0].(etf.Atom)
		if !ok {
			return nil, &ConfigError{Side: role, Detail: fmt.Sprintf("option name %s is not an atom", show(tup[0]))}
		}
		v := tup[1]
		bad := func(want string) error {
			return &ConfigError{Side: role, Option: string(name), Detail: fmt.Sprintf("expected %s, got %s", want, show(v))}
		}
		if seen[string(name)] {
			// ssl takes the first; a file that says two things is a mistake.
			return nil, &ConfigError{Side: role, Option: string(name), Detail: "given twice"}
		}
		seen[string(name)] = true
		if why, no := refused[string(name)]; no {
			return nil, &ConfigError{Side: role, Option: string(name), Detail: "cannot be honoured here (" + why + ")"}
		}
		switch name {
		case "certfile", "keyfile", "cacertfile":
			str, ok := asString(v)
			if !ok || str == "" {
				return nil, bad("a file name string")
			}
			switch name {
			case "certfile":
				s.CertFile = str
			case "keyfile":
				s.KeyFile = str
			default:
				s.CAFile = str
			}
		case "verify":
			switch a, _ := v.(etf.Atom); a {
			case "verify_peer":
				s.Verify = VerifyPeer
			case "verify_none":
				s.Verify = VerifyNone
			default:
				return nil, bad("verify_peer or verify_none")
			}
		case "fail_if_no_peer_cert":
			b, ok := asBool(v)
			if !ok {
				return nil, bad("true or false")
			}
			if role == "client" {
				ignored = append(ignored, string(name))
				continue
			}
			s.AllowNoPeerCert = !b
		case "versions":
			l, ok := asList(v)
			if !ok || len(l) == 0 {
				return nil, bad("a list of TLS versions")
			}
			var vs []uint16
			for _, e := range l {
				switch a, _ := e.(etf.Atom); a {
				case "tlsv1.2":
					vs = append(vs, tls.VersionTLS12)
				case "tlsv1.3":
					vs = append(vs, tls.VersionTLS13)
				default:
					return nil, &ConfigError{Side: role, Option: "versions", Detail: fmt.Sprintf("%s: only 'tlsv1.2' and 'tlsv1.3' are supported", show(e))}
				}
			}
			s.MinVersion, s.MaxVersion = slices.Min(vs), slices.Max(vs)
		case "depth":
			n, ok := asInt(v)
			if !ok || n < 0 {
				return nil, bad("a non-negative integer")
			}
			// ssl's depth 0: the peer's certificate is signed by a trusted
			// CA directly.
			if n == 0 {
				s.Depth = NoIntermediates
			} else {
				s.Depth = n
			}
		case "server_name_indication":
			if role == "server" {
				// ssl's server takes sni_hosts/sni_fun instead.
				ignored = append(ignored, string(name))
				continue
			}
			if a, ok := v.(etf.Atom); ok && a == "disable" {
				s.NoServerName = true
				continue
			}
			str, ok := asString(v)
			if !ok || str == "" {
				return nil, bad("a host name string or disable")
			}
			s.ServerName = str
		case "crl_check":
			if b, ok := asBool(v); ok && !b {
				continue
			}
			return nil, &ConfigError{Side: role, Option: "crl_check", Detail: "CRL checking is not supported; only {crl_check, false}"}
		default:
			ignored = append(ignored, string(name))
		}
	}
	return ignored, nil
}

func asList(t etf.Term) ([]etf.Term, bool) {
	switch v := t.(type) {
	case etf.List:
		return v, true
	case etf.String:
		if v == "" {
			return nil, true
		}
	}
	return nil, false
}

func asString(t etf.Term) (string, bool) {
	switch v := t.(type) {
	case etf.String:
		// Its elements are characters 0..255 (what file:consult makes of
		// "..."), Latin-1 as codepoints: a file name is their UTF-8.
		var b strings.Builder
		for i := 0; i < len(v); i++ {
			b.WriteRune(rune(v[i]))
		}
		return b.String(), true
	case string:
		return v, true
	case []byte:
		return string(v), utf8.Valid(v)
	case etf.List:
		var b strings.Builder
		for _, e := range v {
			n, ok := asInt(e)
			if !ok || n < 0 || n > utf8.MaxRune {
				return "", false
			}
			b.WriteRune(rune(n))
		}
		return b.String(), true
	}
	return "", false
}

func asBool(t etf.Term) (bool, bool) {
	switch a, _ := t.(etf.Atom); a {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

func asInt(t etf.Term) (int, bool) {
	switch v := t.(type) {
	case int:
		return v, true
	case int64:
		return int(v), true
	case int32:
		return int(v), true
	case uint8:
		return int(v), true
	case *big.Int:
		if v.IsInt64() {
			return int(v.Int64()), true
		}
	}
	return 0, false
}

func show(t etf.Term) string {
	s := fmt.Sprintf("%v", t)
	if len(s) > 60 {
		s = s[:60] + "..."
	}
	return s
}
