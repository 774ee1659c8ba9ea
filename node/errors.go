package node

import (
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/distribute-go/distribute/epmd"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/tlsdist"
)

// StartErrorKind is the seed's StartError constructor.
type StartErrorKind int

// The StartError kinds, one per constructor of the seed's StartError.
const (
	InvalidNodeName StartErrorKind = iota + 1 // bad name: no '@', bad alive part or host, too long
	AlreadyStarted                            // name already started in this process, or taken at EPMD
	CookieTooLong                             // cookie longer than 255 bytes
	NetworkError                              // listen port in use, EPMD unreachable when required
	SystemError                               // permission denied and other OS refusals
	StartFailed                               // anything else
)

var startKindNames = map[StartErrorKind]string{
	InvalidNodeName: "invalid_node_name", AlreadyStarted: "already_started",
	CookieTooLong: "cookie_too_long", NetworkError: "network_error",
	SystemError: "system_error", StartFailed: "start_failed",
}

func (k StartErrorKind) String() string {
	if s, ok := startKindNames[k]; ok {
		return s
	}
	return "unknown"
}

// StartError is why Start failed. Compare kinds with errors.Is against the
// Err* sentinels below (ErrInvalidNodeName, ErrAlreadyStarted, ...); the
// underlying cause, if any, is reachable with errors.Is/As too.
type StartError struct {
	Kind   StartErrorKind
	Detail string // the seed's String argument; never contains the cookie
	Err    error  // the cause, or nil
}

func (e *StartError) Error() string {
	s := "node: start: " + e.Kind.String()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *StartError) Unwrap() error { return e.Err }

// Is reports whether target is a StartError sentinel of the same kind.
func (e *StartError) Is(target error) bool {
	t, ok := target.(*StartError)
	return ok && t.Kind == e.Kind && t.Detail == "" && t.Err == nil
}

// Sentinels for errors.Is on Start's error.
var (
	ErrInvalidNodeName = &StartError{Kind: InvalidNodeName}
	ErrAlreadyStarted  = &StartError{Kind: AlreadyStarted}
	ErrCookieTooLong   = &StartError{Kind: CookieTooLong}
	ErrNetwork         = &StartError{Kind: NetworkError}
	ErrSystem          = &StartError{Kind: SystemError}
	ErrStartFailed     = &StartError{Kind: StartFailed}
)

// ConnectErrorKind is the seed's ConnectError constructor, plus
// ConnectAuthFailed, which the seed lacks.
type ConnectErrorKind int

// The ConnectError kinds.
const (
	ConnectTimeout      ConnectErrorKind = iota + 1 // the context's deadline or the setup time passed
	NodeNotFound                                    // no such name at that host's EPMD, host unknown, bad name
	ConnectNetworkError                             // refused, reset, unreachable, EPMD down, protocol trouble
	ConnectIgnored                                  // self, or this node is not distributed (stopped / nil)
	ConnectAuthFailed                               // beyond the seed: cookie rejected or not allowed
	ConnectTLSFailed                                // TLS distribution: certificate, CA, plain/TLS mismatch (tls.go)
)

var connectKindNames = map[ConnectErrorKind]string{
	ConnectTimeout: "connect_timeout", NodeNotFound: "node_not_found",
	ConnectNetworkError: "network_error", ConnectIgnored: "ignored",
	ConnectAuthFailed: "auth_failed", ConnectTLSFailed: "tls_failed",
}

func (k ConnectErrorKind) String() string {
	if s, ok := connectKindNames[k]; ok {
		return s
	}
	return "unknown"
}

// ConnectError is why Connect (or the connect step of Ping) failed. Compare
// kinds with errors.Is against ErrConnectTimeout, ErrNodeNotFound,
// ErrConnectNetwork, ErrConnectIgnored, ErrAuth, ErrTLS.
type ConnectError struct {
	Kind   ConnectErrorKind
	Node   string // the node we tried to reach
	Detail string // the seed's String argument for ConnectNetworkError
	Err    error  // the cause, or nil
}

func (e *ConnectError) Error() string {
	s := "node: connect"
	if e.Node != "" {
		s += " " + e.Node
	}
	s += ": " + e.Kind.String()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Is reports whether target is a ConnectError sentinel of the same kind.
func (e *ConnectError) Is(target error) bool {
	t, ok := target.(*ConnectError)
	return ok && t.Kind == e.Kind && t.Node == "" && t.Detail == "" && t.Err == nil
}

// Sentinels for errors.Is on Connect's error.
var (
	ErrConnectTimeout = &ConnectError{Kind: ConnectTimeout}
	ErrNodeNotFound   = &ConnectError{Kind: NodeNotFound}
	ErrConnectNetwork = &ConnectError{Kind: ConnectNetworkError}
	ErrConnectIgnored = &ConnectError{Kind: ConnectIgnored}
	ErrAuth           = &ConnectError{Kind: ConnectAuthFailed}
)

// ClassifyStartReason maps a failure reason that arrives as text (for
// example from a BEAM node's net_kernel:start/2) to a StartError, with the
// seed's rules: "already_started", "invalid_node_name" and
// "cookie_too_long" map to their kinds; text mentioning network,
// eaddrinuse or connection is a NetworkError; permission, access or enoent
// a SystemError; anything else StartFailed. The node's own errors are
// classified from their Go types instead, never from text.
func ClassifyStartReason(reason string) *StartError {
	switch reason {
	case "already_started":
		return &StartError{Kind: AlreadyStarted}
	case "invalid_node_name":
		return &StartError{Kind: InvalidNodeName, Detail: "Node name must contain '@'"}
	case "cookie_too_long":
		return &StartError{Kind: CookieTooLong}
	}
	for _, w := range []string{"network", "eaddrinuse", "connection"} {
		if strings.Contains(reason, w) {
			return &StartError{Kind: NetworkError, Detail: reason}
		}
	}
	for _, w := range []string{"permission", "access", "enoent"} {
		if strings.Contains(reason, w) {
			return &StartError{Kind: SystemError, Detail: reason}
		}
	}
	return &StartError{Kind: StartFailed, Detail: reason}
}

// ClassifyConnectReason maps a connect failure reason that arrives as text
// to a ConnectError with the seed's rule: text containing "timeout" is
// ConnectTimeout, anything else ConnectNetworkError carrying the text.
func ClassifyConnectReason(reason string) *ConnectError {
	if strings.Contains(reason, "timeout") {
		return &ConnectError{Kind: ConnectTimeout}
	}
	return &ConnectError{Kind: ConnectNetworkError, Detail: reason}
}

// startErr classifies one of our own start failures from its Go type.
func startErr(err error, detail string) *StartError {
	kind := StartFailed
	switch {
	case errors.Is(err, epmd.ErrNameTaken):
		kind = AlreadyStarted
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM), errors.Is(err, os.ErrPermission):
		kind = SystemError
	case errors.Is(err, syscall.EADDRINUSE), errors.Is(err, syscall.EADDRNOTAVAIL),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		kind = NetworkError
	default:
		var dns *net.DNSError
		var op *net.OpError
		if errors.As(err, &dns) || errors.As(err, &op) {
			kind = NetworkError
		}
	}
	if detail == "" {
		detail = err.Error()
	} else {
		detail += ": " + err.Error()
	}
	return &StartError{Kind: kind, Detail: detail, Err: err}
}

// connectErr classifies one of our own connect failures from its Go type.
func connectErr(peer string, err error) *ConnectError {
	var ce *ConnectError
	if errors.As(err, &ce) {
		return ce
	}
	kind := ConnectNetworkError
	var dns *net.DNSError
	switch {
	case tlsFailure(err):
		return &ConnectError{Kind: ConnectTLSFailed, Node: peer, Detail: err.Error(), Err: tlsdist.Wrap(err, false)}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled),
		errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, handshake.ErrTimeout):
		kind = ConnectTimeout
	case errors.Is(err, epmd.ErrNotRegistered):
		kind = NodeNotFound
	case errors.As(err, &dns) && (dns.IsNotFound || !dns.IsTimeout):
		kind = NodeNotFound
	case errors.As(err, &dns) && dns.IsTimeout:
		kind = ConnectTimeout
	case errors.Is(err, handshake.ErrAuth), errors.Is(err, handshake.ErrNotAllowed):
		kind = ConnectAuthFailed
	}
	return &ConnectError{Kind: kind, Node: peer, Detail: err.Error(), Err: err}
}
