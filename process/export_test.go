package process

import "github.com/distribute-go/distribute/node"

// Handler returns the node.Handler the process layer gave the link layer (tests only).
func (n *Node) Handler() node.Handler { return (*handler)(n) }
