package node

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadCookieFileCreates(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), ".erlang.cookie")
	c, err := ReadCookieFile(path)
	require.NoError(t, err)
	assert.Regexp(t, regexp.MustCompile(`^[A-Z]{20}$`), c)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o400), fi.Mode().Perm())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, c, string(b))

	again, err := ReadCookieFile(path)
	require.NoError(t, err)
	assert.Equal(t, c, again, "the created file is read back")

	other, err := ReadCookieFile(filepath.Join(t.TempDir(), "c"))
	require.NoError(t, err)
	assert.NotEqual(t, c, other, "cookies are random")
}

func TestReadCookieFileMode(t *testing.T) {
	t.Parallel()
	const secret = "SECRETCOOKIEVALUE"
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o602} {
		path := filepath.Join(t.TempDir(), "cookie")
		require.NoError(t, os.WriteFile(path, []byte(secret+"\n"), 0o600))
		require.NoError(t, os.Chmod(path, mode))
		c, err := ReadCookieFile(path)
		require.ErrorIs(t, err, ErrCookieFileMode, "%04o", mode)
		assert.Empty(t, c)
		assert.NotContains(t, err.Error(), secret)
	}
}

func TestReadCookieFileFirstLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		content, want string
	}{
		{"abc \t\r\nsecond line\n", "abc"},
		{"plain", "plain"},
		{"with inner space  \n", "with inner space"},
		{"  leading kept\n", "  leading kept"},
	} {
		path := filepath.Join(dir, "c")
		_ = os.Remove(path)
		require.NoError(t, os.WriteFile(path, []byte(tc.content), 0o400))
		c, err := ReadCookieFile(path)
		require.NoError(t, err, "%q", tc.content)
		assert.Equal(t, tc.want, c)
	}

	// Nothing usable: an empty first line, a directory.
	path := filepath.Join(dir, "empty")
	require.NoError(t, os.WriteFile(path, []byte(" \nsecret-on-line-2\n"), 0o600))
	_, err := ReadCookieFile(path)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "secret-on-line-2")
	sub := filepath.Join(dir, "sub")
	require.NoError(t, os.Mkdir(sub, 0o700))
	_, err = ReadCookieFile(sub)
	assert.Error(t, err)
}

func TestDefaultCookieFile(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	p, err := DefaultCookieFile()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(home, ".erlang.cookie"), p)
}
