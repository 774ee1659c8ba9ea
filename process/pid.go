package process

import (
	"github.com/distribute-go/distribute/etf"
)

// newPid returns a pid never used before by this node within its creation: a 60-bit counter
// spread over the id (28 bits, as BEAM's pid numbers) and the serial.
func (n *Node) newPid() etf.Pid {
	c := n.pids.Add(1)
	return etf.Pid{Node: n.self, ID: uint32(c & 0x0FFF_FFFF), Serial: uint32(c >> 28), Creation: n.Creation()}
}

// MakeRef returns a reference never used before by this node within its creation: a 64-bit
// counter spread over the three id words (BEAM's layout: 18 bits, then 32, then the rest).
func (n *Node) MakeRef() etf.Ref {
	c := n.refs.Add(1)
	return etf.Ref{
		Node:     n.self,
		Creation: n.Creation(),
		Len:      3,
		ID:       [5]uint32{uint32(c & 0x3FFFF), uint32(c >> 18), uint32(c >> 50)},
	}
}

// local reports whether pid belongs to this node's current incarnation.
func (n *Node) local(pid etf.Pid) bool {
	return pid.Node == n.self && pid.Creation == n.Creation()
}

// lookup returns the live local process with pid, or nil.
func (n *Node) lookup(pid etf.Pid) *Process {
	if !n.local(pid) {
		return nil
	}
	n.mu.Lock()
	p := n.procs[pidKey{pid.ID, pid.Serial}]
	n.mu.Unlock()
	return p
}

// IsAlive reports whether pid is a live process of this node.
// A process is not alive from the moment it exits, even while its entry is still being removed
// from the process table.
func (n *Node) IsAlive(pid etf.Pid) bool {
	p := n.lookup(pid)
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.exited
}

// ProcessCount returns the number of live processes of the node, its built-in ones included,
// like erlang:system_info(process_count).
func (n *Node) ProcessCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.procs)
}
