package node

import (
	"errors"
	"time"

	"github.com/distribute-go/distribute/control"
)

// Stats counts what the node skipped or dropped. The fields only grow.
type Stats struct {
	// TooLarge counts messages refused for the message size limit (whole frames read
	// through without being held, and fragmented messages whose rest was discarded).
	TooLarge uint64
	// Malformed counts frames that were not valid distribution frames or control messages,
	// skipped without dropping the connection.
	Malformed uint64
	// EventsDropped counts events not delivered: to a subscriber that
	// fell behind, past the queue bound of a slow OnEvent hook, or
	// emitted after the node's event goroutine ended.
	EventsDropped uint64
}

// Stats returns the node's counters of skipped frames and dropped events.
func (n *Node) Stats() Stats {
	if n == nil {
		return Stats{}
	}
	return Stats{TooLarge: n.tooLarge.Load(), Malformed: n.malformed.Load(), EventsDropped: n.events.dropped.Load()}
}

// skipped counts and logs one frame or message a connection skipped. The log is rate-limited
// to one line a second per node, with the number suppressed in between.
func (n *Node) skipped(peer string, err error) {
	if errors.Is(err, control.ErrTooLarge) {
		n.tooLarge.Add(1)
	} else {
		n.malformed.Add(1)
	}
	if ok, suppressed := n.skipLog.Allow(time.Now()); ok {
		n.log.Warn("skipped a message from a peer", "peer", peer, "err", err, "suppressed_since_last", suppressed)
	}
}
