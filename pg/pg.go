// Package pg takes part in BEAM's process groups (OTP's pg module, OTP 23+) from a Go node:
// a Scope is a pg scope, such as the default scope pg (kernel's start_pg) or one a BEAM node
// starts with pg:start_link(Scope), and Go processes join and leave its groups; BEAM's
// pg:get_members lists them, and Scope.GetMembers lists the members on every node of the
// scope.
//
// A Scope speaks pg's own protocol, the one OTP 25 through 29 understand (OTP 29 speaks a newer
// one among its own nodes and falls back to this one for a peer that uses it):
//   - the scope process is registered under the scope's name and monitors the scope processes
//     of its peers;
//   - on each visible nodeup it sends {discover, ScopePid} to {Scope, Node} (and accepts OTP
//     29's {discover, Pid, Version} too);
//   - it answers a discover with gen_server:cast(Peer, {sync, ScopePid, [{Group, [Pid]}]}),
//     its local members, and discovers an unknown peer in return;
//   - it sends {join, ScopePid, Group, [Pid]} and {leave, ScopePid, [Pid], [Group]} to its
//     peers when local members join and leave, and receives theirs.
//
// Membership follows processes: a Go process that ends leaves its groups (the scope monitors
// it) and the members of a peer go when its scope process ends or its connection goes down.
// Only messages every OTP version accepts are sent: BEAM's scope process crashes on any other.
//
// pg.erl does not check who discovers it, so a hidden node can take part too: BEAM never
// discovers it (its pg sees visible nodes only), but it answers a discover the hidden node
// sends (Options.DiscoverHidden, Scope.Discover).
package pg

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/process"
)

// DefaultScope is the name of OTP's default scope, started on BEAM by kernel's start_pg
// (erl -kernel start_pg true).
const DefaultScope etf.Atom = "pg"

// Errors.
var (
	// ErrNotLocal: Join or Leave was given a pid of another node (pg:join raises
	// {nolocal, Pid}).
	ErrNotLocal = errors.New("pg: not a process of this node")
	// ErrNotJoined: Leave was given no process that is a member of the group (pg:leave
	// returns not_joined).
	ErrNotJoined = errors.New("pg: not joined")
	// ErrStopped: the scope has stopped (Stop, or its node stopped).
	ErrStopped = errors.New("pg: scope stopped")
)

// Options configure a Scope. The zero value is usable.
type Options struct {
	// DiscoverHidden makes the scope discover peers over hidden connections too, as it does
	// over visible ones: this is how a hidden node takes part in a scope of its BEAM peers.
	DiscoverHidden bool
	// Logger receives the scope's debug logs (messages it ignores); nil means silent.
	Logger *slog.Logger
}

// Scope is a pg scope on a Go node. Its methods are safe for concurrent use.
type Scope struct {
	n    *process.Node
	name etf.Atom
	opts Options
	log  *slog.Logger
	proc *process.Process
	done chan struct{}

	mu      sync.RWMutex
	stopped bool
	groups  map[string]*group
	local   map[etf.Pid]*member
	peers   map[etf.Pid]*remote
}

// group is one group's members: all of them (local ones included) and the local ones, each
// pid once per join, as pg keeps them.
type group struct {
	term  etf.Term // the group as first seen
	all   []etf.Pid
	local []etf.Pid
}

// member is a local process that joined groups: the scope's monitor of it and the groups it
// is in (each once per join).
type member struct {
	ref    etf.Ref
	groups []string
}

// remote is the scope process of another node: the scope's monitor of it and its members as
// it announced them.
type remote struct {
	ref    etf.Ref
	groups map[string][]etf.Pid
}

// Start starts the scope name on n: its process is registered under name (so the name must be
// free on n) and discovers the scope's processes on the connected nodes. The scope runs until
// Stop or until the node stops.
func Start(n *process.Node, name etf.Atom, o *Options) (*Scope, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(discardHandler{})
	}
	s := &Scope{
		n:      n,
		name:   name,
		opts:   opts,
		log:    log.With("scope", string(name)),
		done:   make(chan struct{}),
		groups: map[string]*group{},
		local:  map[etf.Pid]*member{},
		peers:  map[etf.Pid]*remote{},
	}
	s.proc = n.Spawn()
	if err := s.proc.Register(name); err != nil {
		s.proc.Exit(atomNormal)
		return nil, fmt.Errorf("pg: start scope %s: %w", name, err)
	}
	n.MonitorNodes(s.proc, true)
	go s.loop()
	s.mu.Lock()
	for _, peer := range n.Nodes() {
		s.discoverLocked(peer)
	}
	s.mu.Unlock()
	return s, nil
}

// Name returns the scope's name.
func (s *Scope) Name() etf.Atom { return s.name }

// Pid returns the pid of the scope's process.
func (s *Scope) Pid() etf.Pid { return s.proc.Pid() }

// Done is closed once the scope has stopped.
func (s *Scope) Done() <-chan struct{} { return s.done }

// Stop ends the scope's process (its peers then drop its members) and waits for it.
func (s *Scope) Stop() {
	s.proc.Exit(atomNormal)
	<-s.done
}

// Join makes pids (processes of this node) members of group, like pg:join(Scope, Group,
// Pids): a process may join a group several times and then leaves it as many times. The group
// is any term that can be encoded. A process that ends leaves its groups.
func (s *Scope) Join(group etf.Term, pids ...etf.Pid) error {
	if err := s.checkLocal(pids); err != nil {
		return err
	}
	key, err := groupKey(group)
	if err != nil {
		return fmt.Errorf("pg: join: group %v: %w", group, err)
	}
	if len(pids) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	for _, pid := range pids {
		m := s.local[pid]
		if m == nil {
			ref, err := s.proc.Monitor(pid)
			if err != nil {
				return ErrStopped
			}
			m = &member{ref: ref}
			s.local[pid] = m
		}
		m.groups = append(m.groups, key)
	}
	g := s.groupLocked(key, group)
	g.all = append(g.all, pids...)
	g.local = append(g.local, pids...)
	s.broadcastLocked(etf.Tuple{atomJoin, s.proc.Pid(), group, pidList(pids)})
	return nil
}

// Leave makes pids leave group once each, like pg:leave(Scope, Group, Pids). Pids that are not
// members are skipped; when none is, the error is ErrNotJoined.
func (s *Scope) Leave(group etf.Term, pids ...etf.Pid) error {
	if err := s.checkLocal(pids); err != nil {
		return err
	}
	key, err := groupKey(group)
	if err != nil {
		return fmt.Errorf("pg: leave: group %v: %w", group, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	var left []etf.Pid
	for _, pid := range pids {
		m := s.local[pid]
		if m == nil {
			continue
		}
		i := slices.Index(m.groups, key)
		if i < 0 {
			continue
		}
		m.groups = slices.Delete(m.groups, i, i+1)
		if len(m.groups) == 0 {
			s.proc.Demonitor(m.ref)
			delete(s.local, pid)
		}
		left = append(left, pid)
	}
	if len(left) == 0 {
		return ErrNotJoined
	}
	s.removeLocked(key, left, true)
	s.broadcastLocked(etf.Tuple{atomLeave, s.proc.Pid(), pidList(left), etf.List{group}})
	return nil
}

// GetMembers returns the members of group on every node of the scope (a process once per
// join), like pg:get_members(Scope, Group), in no particular order.
func (s *Scope) GetMembers(group etf.Term) []etf.Pid {
	return s.members(group, false)
}

// GetLocalMembers returns the members of group that run on this node, like
// pg:get_local_members(Scope, Group).
func (s *Scope) GetLocalMembers(group etf.Term) []etf.Pid {
	return s.members(group, true)
}

func (s *Scope) members(group etf.Term, local bool) []etf.Pid {
	key, err := groupKey(group)
	if err != nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	g := s.groups[key]
	if g == nil {
		return nil
	}
	if local {
		return slices.Clone(g.local)
	}
	return slices.Clone(g.all)
}

// WhichGroups returns the groups that have members anywhere in the scope, like
// pg:which_groups(Scope), in Erlang term order.
func (s *Scope) WhichGroups() []etf.Term { return s.whichGroups(false) }

// WhichLocalGroups returns the groups that have members on this node, like
// pg:which_local_groups(Scope), in Erlang term order.
func (s *Scope) WhichLocalGroups() []etf.Term { return s.whichGroups(true) }

func (s *Scope) whichGroups(local bool) []etf.Term {
	s.mu.RLock()
	out := make([]etf.Term, 0, len(s.groups))
	for _, g := range s.groups {
		if !local || len(g.local) > 0 {
			out = append(out, g.term)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, etf.Compare)
	return out
}

// Discover sends {discover, ScopePid} to the scope's process on node, connecting first if
// needed: a scope process there answers with its members and takes part with this one from
// then on, over a hidden connection too. Scopes discover each other by themselves over visible
// connections (and hidden ones with Options.DiscoverHidden); Discover is for the others.
func (s *Scope) Discover(ctx context.Context, node string) error {
	if node == s.n.Self() {
		return nil
	}
	if s.n.Conn(node) == nil {
		if err := s.n.Connect(ctx, node); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return ErrStopped
	}
	if c := s.n.Conn(node); c == nil {
		return fmt.Errorf("pg: discover %s: not connected", node)
	}
	s.sendNameLocked(node, etf.Tuple{atomDiscover, s.proc.Pid()})
	return nil
}

// checkLocal fails when a pid is not of this node.
func (s *Scope) checkLocal(pids []etf.Pid) error {
	for _, pid := range pids {
		if string(pid.Node) != s.n.Self() {
			return fmt.Errorf("pg: %v: %w", pid, ErrNotLocal)
		}
	}
	return nil
}

// groupLocked returns the group for key, created with term when missing.
func (s *Scope) groupLocked(key string, term etf.Term) *group {
	g := s.groups[key]
	if g == nil {
		g = &group{term: term}
		s.groups[key] = g
	}
	return g
}

// removeLocked removes each of pids once from the group key (from its local members too when
// local), and the group once it has no members.
func (s *Scope) removeLocked(key string, pids []etf.Pid, local bool) {
	g := s.groups[key]
	if g == nil {
		return
	}
	g.all = removeEach(g.all, pids)
	if local {
		g.local = removeEach(g.local, pids)
	}
	if len(g.all) == 0 && len(g.local) == 0 {
		delete(s.groups, key)
	}
}

// removeEach removes one occurrence of each of pids from l, in place.
func removeEach(l, pids []etf.Pid) []etf.Pid {
	for _, p := range pids {
		if i := slices.Index(l, p); i >= 0 {
			l = slices.Delete(l, i, i+1)
		}
	}
	return l
}

// localGroupsLocked is the sync message's list of local members: [{Group, [Pid]}].
func (s *Scope) localGroupsLocked() etf.List {
	type kv struct {
		key string
		g   *group
	}
	var gs []kv
	for k, g := range s.groups {
		if len(g.local) > 0 {
			gs = append(gs, kv{k, g})
		}
	}
	slices.SortFunc(gs, func(a, b kv) int { return cmp.Compare(a.key, b.key) })
	l := make(etf.List, 0, len(gs))
	for _, e := range gs {
		l = append(l, etf.Tuple{e.g.term, pidList(e.g.local)})
	}
	return l
}

// broadcastLocked sends msg to every peer scope process.
func (s *Scope) broadcastLocked(msg etf.Term) {
	for pid := range s.peers {
		s.sendPidLocked(pid, msg)
	}
}

// sendPidLocked sends msg to pid without connecting (erlang:send(Pid, Msg, [noconnect])): with
// no connection to its node the message is dropped. It only queues, so it may run under s.mu;
// the messages of the scope go out in the order they are sent.
func (s *Scope) sendPidLocked(to etf.Pid, msg etf.Term) {
	if string(to.Node) == s.n.Self() {
		_ = s.proc.Send(to, msg)
		return
	}
	c := s.n.Conn(string(to.Node))
	if c == nil {
		return
	}
	if c.Flags()&handshake.FlagSendSender != 0 {
		_ = c.Send(control.SendSender{From: s.proc.Pid(), To: to}, msg)
		return
	}
	_ = c.Send(control.Send{To: to}, msg)
}

// sendNameLocked sends msg to {Scope, node} without connecting.
func (s *Scope) sendNameLocked(node string, msg etf.Term) {
	if c := s.n.Conn(node); c != nil {
		_ = c.Send(control.RegSend{From: s.proc.Pid(), To: s.name}, msg)
	}
}

// discoverLocked discovers the scope on node when the connection to it qualifies: visible, or
// any with DiscoverHidden.
func (s *Scope) discoverLocked(node string) {
	if node == s.n.Self() {
		return
	}
	c := s.n.Conn(node)
	if c == nil || !c.Visible() && !s.opts.DiscoverHidden {
		return
	}
	s.sendNameLocked(node, etf.Tuple{atomDiscover, s.proc.Pid()})
}

// pidList is pids as an Erlang list.
func pidList(pids []etf.Pid) etf.List {
	l := make(etf.List, len(pids))
	for i, p := range pids {
		l[i] = p
	}
	return l
}

type discardHandler struct{}

func (discardHandler) Enabled(context.Context, slog.Level) bool  { return false }
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler      { return d }
func (d discardHandler) WithGroup(string) slog.Handler           { return d }

var (
	atomNormal   = etf.Atom("normal")
	atomJoin     = etf.Atom("join")
	atomLeave    = etf.Atom("leave")
	atomDiscover = etf.Atom("discover")
	atomSync     = etf.Atom("sync")
	atomGenCast  = etf.Atom("$gen_cast")
	atomDown     = etf.Atom("DOWN")
	atomProcess  = etf.Atom("process")
	atomNodeup   = etf.Atom("nodeup")
	atomNodedown = etf.Atom("nodedown")
	atomUpdate   = etf.Atom("update")
	atomLocalDat = etf.Atom("local_data")
)
