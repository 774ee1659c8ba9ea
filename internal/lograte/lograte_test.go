package lograte

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLimiter(t *testing.T) {
	var l Limiter
	t0 := time.Unix(1000, 0)
	ok, s := l.Allow(t0)
	assert.True(t, ok)
	assert.Zero(t, s)
	for i := 1; i <= 3; i++ {
		ok, _ = l.Allow(t0.Add(time.Duration(i) * 100 * time.Millisecond))
		assert.False(t, ok, "within the second")
	}
	ok, s = l.Allow(t0.Add(time.Second))
	assert.True(t, ok)
	assert.Equal(t, uint64(3), s, "the held-back lines are counted")
	l5 := Limiter{Every: 5 * time.Second}
	assert.True(t, first(l5.Allow(t0)))
	assert.False(t, first(l5.Allow(t0.Add(4*time.Second))))
	assert.True(t, first(l5.Allow(t0.Add(5*time.Second))))
}

func first(ok bool, _ uint64) bool { return ok }
