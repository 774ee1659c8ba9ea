package node

// StartedEPMD reports whether this node registered with an embedded EPMD
// server that it started itself, inside this process, because none
// listened on the EPMD port (EPMDEmbedded mode), rather than with an EPMD
// that was already running. It is false for EPMDExternal, EPMDNone,
// EPMDClient and a nil or stopped node.
func (n *Node) StartedEPMD() bool {
	if !n.IsDistributed() {
		return false
	}
	n.epmdMu.Lock()
	defer n.epmdMu.Unlock()
	return n.embedded != nil && n.reg != nil
}
