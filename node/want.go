package node

import "github.com/distribute-go/distribute/control"

// MessageFilter is an optional interface of a Handler. When the Handler implements it, the
// node asks it once per fragmented message, as soon as the message's control message has
// arrived (before the rest of its fragments), whether the message is wanted; when it says
// no, the rest of the message's fragments are discarded as they stream in, without being
// held, and HandleMessage is not called for it. This is how a message to a process that does
// not exist costs no memory. Messages in one frame are not asked about: they are handed to
// HandleMessage, which may drop them itself. The node does not count refused messages (the
// Handler knows why it refused, and counts and logs them). WantMessage is called on the
// connection's reader goroutine, like HandleMessage, and must not block.
type MessageFilter interface {
	WantMessage(c *Conn, m control.Message) bool
}
