package global

import "github.com/distribute-go/distribute/etf"

// LockSet reports whether the lock on resource is set in this node's table (for tests).
func (g *Global) LockSet(resource etf.Term) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.tables.isLockSet(resource)
}
