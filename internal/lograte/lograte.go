// Package lograte rate-limits log lines of one kind: one goes through per interval, and the
// ones held back in between are counted, so the next line can say how many there were.
package lograte

import (
	"sync"
	"time"
)

// Limiter lets one line through per Every (0 means one second). The zero value is ready to
// use; it is safe for concurrent use.
type Limiter struct {
	Every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed uint64
}

// Allow reports whether a line may be logged at now; when it may, suppressed is how many were
// held back since the last one that went through.
func (l *Limiter) Allow(now time.Time) (ok bool, suppressed uint64) {
	every := l.Every
	if every <= 0 {
		every = time.Second
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < every {
		l.suppressed++
		return false, 0
	}
	s := l.suppressed
	l.last, l.suppressed = now, 0
	return true, s
}
