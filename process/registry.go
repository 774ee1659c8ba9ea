package process

import (
	"fmt"
	"slices"

	"github.com/distribute-go/distribute/etf"
)

// Register gives p the name on this node, like erlang:register/2: names are unique per node,
// a process has at most one, and an exited process drops its name. It fails with
// ErrNameTaken when another process holds the name or p already has one, and ErrNoProcess
// when p has exited.
func (n *Node) Register(name etf.Atom, p *Process) error {
	if name == "" || name == atomUndefined {
		return fmt.Errorf("process: register %q: %w", name, atomBadargErr)
	}
	if p == nil || p.n != n {
		return fmt.Errorf("process: register %s: not a process of this node: %w", name, atomBadargErr)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.names[name]; ok {
		// Taken, also by p itself: BEAM's register/2 is badarg for a process that already
		// has a name, the same one included.
		return fmt.Errorf("process: register %s: %w", name, ErrNameTaken)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return fmt.Errorf("process: register %s: %w", name, ErrNoProcess)
	}
	if p.name != "" {
		return fmt.Errorf("process: register %s: the process is already registered as %s: %w", name, p.name, ErrNameTaken)
	}
	p.name = name
	n.names[name] = p
	return nil
}

var atomBadargErr = fmt.Errorf("badarg")

// Register gives the process a name (see Node.Register).
func (p *Process) Register(name etf.Atom) error { return p.n.Register(name, p) }

// Unregister removes a registered name; it reports whether the name was registered.
func (n *Node) Unregister(name etf.Atom) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	p, ok := n.names[name]
	if !ok {
		return false
	}
	delete(n.names, name)
	p.mu.Lock()
	p.name = ""
	p.mu.Unlock()
	return true
}

// Whereis returns the pid registered as name on this node.
func (n *Node) Whereis(name etf.Atom) (etf.Pid, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p, ok := n.names[name]; ok {
		return p.pid, true
	}
	return etf.Pid{}, false
}

// Registered returns the registered names of this node, sorted.
func (n *Node) Registered() []etf.Atom {
	n.mu.Lock()
	out := make([]etf.Atom, 0, len(n.names))
	for a := range n.names {
		out = append(out, a)
	}
	n.mu.Unlock()
	slices.Sort(out)
	return out
}

func (n *Node) byName(name etf.Atom) *Process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.names[name]
}

// Alias creates an alias of p, like erlang:alias/0: messages sent to the returned reference
// reach p until Unalias or until p exits.
func (p *Process) Alias() etf.Ref {
	ref := p.n.MakeRef()
	p.n.mu.Lock()
	defer p.n.mu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exited {
		return ref // an alias of a dead process reaches nobody
	}
	if p.aliases == nil {
		p.aliases = map[etf.Ref]struct{}{}
	}
	p.aliases[ref] = struct{}{}
	p.n.aliases[ref] = p
	return ref
}

// Unalias deactivates an alias of p; it reports whether it was active.
func (p *Process) Unalias(ref etf.Ref) bool {
	p.n.mu.Lock()
	defer p.n.mu.Unlock()
	if p.n.aliases[ref] != p {
		return false
	}
	delete(p.n.aliases, ref)
	p.mu.Lock()
	delete(p.aliases, ref)
	p.mu.Unlock()
	return true
}

func (n *Node) byAlias(ref etf.Ref) *Process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.aliases[ref]
}
