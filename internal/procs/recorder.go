package procs

import "sync"

// Recorder records values (a node's events) from any goroutine, in order. The zero value is ready.
type Recorder[E any] struct {
	mu  sync.Mutex
	all []E
}

// Add records e; it fits node.Options.OnEvent.
func (r *Recorder[E]) Add(e E) {
	r.mu.Lock()
	r.all = append(r.all, e)
	r.mu.Unlock()
}

// Mark returns a position to look from: the number recorded so far.
func (r *Recorder[E]) Mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.all)
}

// Since returns a copy of what was recorded after position from.
func (r *Recorder[E]) Since(from int) []E {
	r.mu.Lock()
	defer r.mu.Unlock()
	if from > len(r.all) {
		from = len(r.all)
	}
	return append([]E(nil), r.all[from:]...)
}

// List returns a copy of everything recorded.
func (r *Recorder[E]) List() []E { return r.Since(0) }

// Count returns how many values after position from satisfy match (nil matches all).
func (r *Recorder[E]) Count(from int, match func(E) bool) int {
	c := 0
	for _, e := range r.Since(from) {
		if match == nil || match(e) {
			c++
		}
	}
	return c
}
