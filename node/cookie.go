package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrCookieFileMode is matched by ReadCookieFile's error when the cookie
// file can be read by its group or by others: erl refuses such a file, and
// so do we.
var ErrCookieFileMode = errors.New("cookie file must be accessible by its owner only")

// DefaultCookieFile returns $HOME/.erlang.cookie, the file erl reads.
func DefaultCookieFile() (string, error) {
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cookie file: %w", err)
	}
	return filepath.Join(home, ".erlang.cookie"), nil
}

// ReadCookieFile reads a cookie the way erl does: the first line of path,
// without trailing white space. A missing file is created with 20 random
// upper-case letters and mode 0400. A file that its group or others can
// read or write is refused with ErrCookieFileMode. Errors never contain
// the cookie.
func ReadCookieFile(path string) (string, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createCookieFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("cookie file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("cookie file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("cookie file %s has mode %04o: %w", path, fi.Mode().Perm(), ErrCookieFileMode)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cookie file: %w", err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	c := strings.TrimRight(line, " \t\r")
	if c == "" {
		return "", fmt.Errorf("cookie file %s is empty", path)
	}
	return c, nil
}

func createCookieFile(path string) (string, error) {
	const letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	var raw [20]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("cookie file: %w", err)
	}
	for i, b := range raw {
		raw[i] = letters[int(b)%len(letters)]
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o400)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ReadCookieFile(path) // someone else created it meanwhile
		}
		return "", fmt.Errorf("cookie file: %w", err)
	}
	_, werr := f.Write(raw[:])
	cerr := f.Close()
	if werr != nil || cerr != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("cookie file %s: write failed: %w", path, errors.Join(werr, cerr))
	}
	return string(raw[:]), nil
}
