package node

import (
	"net"
	"strings"

	"github.com/distribute-go/distribute/handshake"
)

// NonodeName is what Self returns for a node that is not distributed,
// like BEAM's node() before distribution starts.
const NonodeName = "nonode@nohost"

// ValidateName checks a full node name the way Start does: alive@host,
// the alive part made of [0-9A-Za-z_-] like BEAM's own, a non-empty host
// without '@' or spaces, at most 255 characters.
func ValidateName(name string) error {
	if err := handshake.ValidateNodeName(name); err != nil {
		return err
	}
	alive, host, _ := strings.Cut(name, "@")
	for i := 0; i < len(alive); i++ {
		c := alive[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			return &nameError{name, "alive part may contain only letters, digits, '_' and '-'"}
		}
	}
	if strings.ContainsAny(host, "@ \t/\\") {
		return &nameError{name, "host part has an invalid character"}
	}
	return nil
}

type nameError struct{ name, why string }

func (e *nameError) Error() string { return "node name " + quote(e.name) + ": " + e.why }

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "..."
	}
	return "\"" + s + "\""
}

// IsLongName reports whether a node name uses long-name style: a host with
// a dot, or an IP address (like BEAM's -name); otherwise it is a short
// name (like -sname).
func IsLongName(name string) bool {
	_, host, _ := strings.Cut(name, "@")
	return isLongHost(host)
}

func isLongHost(host string) bool {
	return strings.Contains(host, ".") || net.ParseIP(host) != nil
}

// splitName returns the alive and host parts of a valid name.
func splitName(name string) (alive, host string) {
	alive, host, _ = strings.Cut(name, "@")
	return alive, host
}
