package global

import (
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/gen"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/process"
)

// Protocol versions global.erl names.
const (
	verifyConnectVsn = 8 // init_connect_ack, cancel_connect
	popVsn           = 7 // prevent overlapping partitions
	pgpvVsn          = 7 // known nodes travel with their versions
)

const lostConnKeep = time.Hour // how long a lost_connection report is remembered

var (
	atomGlobal    = etf.Atom("global")
	atomTrue      = etf.Atom("true")
	atomFalse     = etf.Atom("false")
	atomUndefined = etf.Atom("undefined")
	atomYes       = etf.Atom("yes")
	atomOK        = etf.Atom("ok")
	atomLockSet   = etf.Atom("lock_set")
	atomInsert    = etf.Atom("insert")
	atomDelete    = etf.Atom("delete")
)

// state is global_name_server's state (global.erl's #state{} and its process dictionary).
type state struct {
	known     map[string]int // known nodes -> protocol version (0: not known yet)
	pending   map[string]int // nodes being connected -> version
	removing  map[string]bool
	connID    map[string]int64
	nextConn  int64
	synced    []string
	resolvers map[string]*resolver
	syncers   map[*syncer]struct{}
	sess      map[string]*session
	lostConn  map[[2]string]lostInfo
	creation  int64 // creation extension + creation, as lost_connection carries it
	nextTag   int64
	nextOp    int64
	// pendingMons: monitors of pids of nodes not connected yet, by their placeholder ref
	pendingMons map[etf.Ref]etf.Pid
}

// session is what global.erl keeps per node in its process dictionary.
type session struct {
	myTag, hisTag etf.Term // nil: undefined
	protVsn       int
	hasVsn        bool
	waitLock      int // 0 none, 1 lock_is_set, 2 exchange received
	waitNames     etf.List
	saveOps       int // 0 none, 1 ops, 2 resolved received
	ops           etf.List
	resHisKnown   etf.List
	resNamesExt   etf.Term
	resHisOps     etf.List
	pre           *preConnect
	lockID        etf.Term
}

type preConnect struct {
	vsn     int
	initMsg etf.Term
	hisTag  etf.Term
}

type lostInfo struct {
	xcre etf.Term
	opID etf.Term
	at   time.Time
}

// Go messages the server receives from its own helpers.
type (
	startMsg     struct{}
	lockIsSetMsg struct {
		node   string
		myTag  etf.Term
		lockID etf.Term
	}
	exchangeOpsMsg struct {
		node          string
		myTag         etf.Term
		ops, resolved etf.List
	}
	getKnownMsg struct{ reply chan []string }
	syncMsg     struct {
		s *syncer
	}
	extraNodedownMsg struct{ node string }
	resendMsg        struct{ cast etf.Term }
	// monitorReadyMsg: the connection a pending monitor waited for is up (ok) or failed.
	monitorReadyMsg struct {
		placeholder etf.Ref
		pid         etf.Pid
		ok          bool
	}
)

func newState(g *Global) *state {
	ext := (rand.Int64N(1<<59) &^ (1<<32 - 1))
	return &state{
		known: map[string]int{}, pending: map[string]int{}, removing: map[string]bool{},
		connID: map[string]int64{}, resolvers: map[string]*resolver{}, syncers: map[*syncer]struct{}{},
		sess: map[string]*session{}, lostConn: map[[2]string]lostInfo{}, pendingMons: map[etf.Ref]etf.Pid{},
		creation: ext + int64(g.n.Creation()) + 1<<59,
		nextTag:  -(1 << 59) + rand.Int64N(1<<20),
	}
}

// handler is Global as the gen.Handler of global_name_server.
type handler Global

func (h *handler) g() *Global { return (*Global)(h) }

func (h *handler) Init(s *gen.Server) error {
	h.srv = s
	h.n.MonitorNodes(s.Process(), true)
	return nil
}

func (g *Global) proc() *process.Process { return g.srv.Process() }

func (g *Global) sess(node string) *session {
	s := g.st.sess[node]
	if s == nil {
		s = &session{}
		g.st.sess[node] = s
	}
	return s
}

func (g *Global) myTag(node string) etf.Term {
	if s := g.st.sess[node]; s != nil {
		return s.myTag
	}
	return nil
}

func (g *Global) hisTag(node string) etf.Term {
	if s := g.st.sess[node]; s != nil && s.hisTag != nil {
		return s.hisTag
	}
	return atomUndefined
}

func tagEq(a, b etf.Term) bool {
	if a == nil {
		a = atomUndefined
	}
	if b == nil {
		b = atomUndefined
	}
	return etf.Equal(a, b)
}

func (g *Global) resetNodeState(node string) { delete(g.st.sess, node) }

// ---- calls ----

func (h *handler) HandleCall(from gen.From, req etf.Term) (etf.Term, error) {
	g := h.g()
	reply, err := h.call(from, req)
	if err != nil {
		return nil, err
	}
	g.reply(from.Term(), reply)
	return nil, gen.ErrNoReply
}

func (h *handler) call(from gen.From, req etf.Term) (etf.Term, error) {
	g := h.g()
	t, _ := req.(etf.Tuple)
	if a, ok := req.(etf.Atom); ok {
		switch a {
		case "get_known":
			return atomList(g.knownNodes()), nil
		case "get_synced":
			return atomList(g.st.synced), nil
		case "get_protocol_version":
			return int64(Vsn), nil
		case "get_names_ext":
			g.mu.RLock()
			defer g.mu.RUnlock()
			return g.tables.namesExtList(), nil
		}
	}
	if len(t) == 0 {
		g.log.Warn("global: unexpected call", "request", etf.Format(req))
		return nil, gen.ErrNoReply
	}
	switch {
	case t[0] == etf.Atom("register") && len(t) == 4:
		if pid, ok := t[2].(etf.Pid); ok {
			g.insName(t[1], pid, t[3], from.Pid, nil)
		}
		return atomYes, nil
	case t[0] == etf.Atom("unregister") && len(t) == 2:
		g.deleteName(t[1])
		return atomOK, nil
	case t[0] == etf.Atom("register_ext") && len(t) == 5:
		pid, ok1 := t[2].(etf.Pid)
		rn, ok2 := t[4].(etf.Atom)
		if ok1 && ok2 {
			g.insNameExt(t[1], pid, t[3], rn, from.Pid, nil)
		}
		return atomYes, nil
	case t[0] == etf.Atom("set_lock") && len(t) == 2:
		return boolAtom(g.handleSetLock(t[1], from.Pid)), nil
	case t[0] == etf.Atom("del_lock") && len(t) == 2:
		g.handleDelLock(t[1], from.Pid)
		return atomTrue, nil
	}
	g.log.Warn("global: unexpected call", "request", etf.Format(req))
	return nil, gen.ErrNoReply
}

// ---- casts ----

func (h *handler) HandleCast(msg etf.Term) error {
	g := h.g()
	t, _ := msg.(etf.Tuple)
	if len(t) == 0 {
		return nil
	}
	switch t[0] {
	case etf.Atom("init_connect"):
		if len(t) == 4 {
			g.castInitConnect(t[1], t[2], t[3])
		}
	case etf.Atom("exchange"):
		if len(t) == 5 {
			node, _ := t[1].(etf.Atom)
			names, _ := t[2].(etf.List)
			if tagEq(g.myTag(string(node)), t[4]) {
				g.exchange(string(node), names)
			} else {
				g.cancelLocker(string(node), t[4], nil)
			}
		}
	case etf.Atom("resolved"):
		if len(t) == 7 {
			node, _ := t[1].(etf.Atom)
			hisOps, _ := t[2].(etf.List)
			hisKnown, _ := t[3].(etf.List)
			g.castResolved(string(node), hisOps, hisKnown, t[5], t[6])
		}
	case etf.Atom("new_nodes"):
		if len(t) == 6 {
			node, _ := t[1].(etf.Atom)
			ops, _ := t[2].(etf.List)
			nodes, _ := t[4].(etf.List)
			g.newNodes(ops, string(node), t[3], nodes, t[5])
		}
	case etf.Atom("in_sync"):
		if len(t) == 3 {
			if node, ok := t[1].(etf.Atom); ok {
				g.inSync(string(node))
			}
		}
	case atomLockSet:
		if len(t) == 5 {
			if pid, ok := t[1].(etf.Pid); ok && tagEq(g.myTag(string(pid.Node)), t[4]) {
				g.toLocker(msg)
			}
		} else if len(t) == 4 {
			g.toLocker(msg)
		}
	case etf.Atom("async_del_name"), etf.Atom("async_del_lock"):
	default:
		g.log.Warn("global: unexpected cast", "message", etf.Format(msg))
	}
	return nil
}

// ---- info ----

func (h *handler) HandleInfo(msg etf.Term) error {
	g := h.g()
	switch m := msg.(type) {
	case startMsg:
		for _, peer := range g.n.Nodes() {
			g.nodeup(peer)
		}
		return nil
	case lockIsSetMsg:
		if tagEq(g.myTag(m.node), m.myTag) {
			g.lockIsSet(m.node, m.lockID)
		} else {
			g.cancelLocker(m.node, m.myTag, nil)
		}
		return nil
	case exchangeOpsMsg:
		g.exchangeOps(m)
		return nil
	case getKnownMsg:
		m.reply <- g.knownNodes()
		return nil
	case syncMsg:
		g.startSync(m.s)
		return nil
	case extraNodedownMsg:
		g.syncedEvent(m.node)
		g.handleNodedown(m.node, "disconnected")
		delete(g.st.connID, m.node)
		return nil
	case resendMsg:
		return h.HandleCast(m.cast)
	case monitorReadyMsg:
		g.monitorReady(m)
		return nil
	case etf.Tuple:
		return g.info(m)
	}
	return nil
}

func (g *Global) info(t etf.Tuple) error {
	if len(t) == 0 {
		return nil
	}
	switch t[0] {
	case etf.Atom("nodeup"):
		if len(t) >= 2 {
			if node, ok := t[1].(etf.Atom); ok {
				g.nodeup(string(node))
			}
		}
	case etf.Atom("nodedown"):
		if len(t) >= 2 {
			if node, ok := t[1].(etf.Atom); ok {
				if _, up := g.st.connID[string(node)]; up {
					g.syncedEvent(string(node))
					g.handleNodedown(string(node), "disconnected")
					delete(g.st.connID, string(node))
				}
			}
		}
	case etf.Atom("DOWN"):
		if len(t) == 5 {
			if ref, ok := t[1].(etf.Ref); ok {
				g.mu.Lock()
				g.tables.deleteNodeRes(ref)
				g.mu.Unlock()
				g.deleteLockByRef(ref)
				g.delNameByRef(ref)
			}
		}
	case etf.Atom("lost_connection"):
		if len(t) == 5 {
			a, ok1 := t[1].(etf.Atom)
			b, ok2 := t[4].(etf.Atom)
			if ok1 && ok2 {
				g.lostConnection(t, string(a), t[2], t[3], string(b))
			}
		}
	case etf.Atom("remove_connection"):
		if len(t) == 2 {
			if node, ok := t[1].(etf.Atom); ok {
				g.removeConnection(string(node))
			}
		}
	case etf.Atom("cancel_connect"):
		if len(t) == 3 {
			if node, ok := t[1].(etf.Atom); ok {
				g.cancelConnect(string(node), t[2])
			}
		}
	case etf.Atom("init_connect_ack"):
		if len(t) == 4 {
			if node, ok := t[1].(etf.Atom); ok {
				g.initConnectAck(string(node), t[2], t[3])
			}
		}
	case etf.Atom("whereis"):
		if len(t) == 3 {
			g.doWhereis(t[1], t[2])
		}
	case etf.Atom("EXIT"):
	default:
		g.log.Warn("global: unexpected message", "message", etf.Format(t))
	}
	return nil
}

// ---- node events ----

func (g *Global) nodeup(node string) {
	if node == g.self {
		return
	}
	c := g.n.Conn(node)
	if c == nil || c.Flags()&handshake.FlagPublished == 0 {
		return // hidden (or gone already): not global's business
	}
	if _, up := g.st.connID[node]; up {
		return
	}
	g.st.nextConn++
	g.st.connID[node] = g.st.nextConn
	g.handleNodeup(node)
}

func (g *Global) handleNodeup(node string) {
	if _, ok := g.st.known[node]; ok {
		return
	}
	if _, ok := g.st.resolvers[node]; ok {
		return
	}
	g.resendPreConnect(node)
	g.st.nextTag++
	tag := etf.Term(g.st.nextTag)
	g.sess(node).myTag = tag
	lockerMsg := etf.Tuple{etf.Atom("locker"), etf.Atom("no_longer_a_pid"), g.knownMap(), g.lk.p.Pid()}
	g.cast(node, etf.Tuple{etf.Atom("init_connect"), etf.Tuple{int64(Vsn), tag}, etf.Atom(g.self), lockerMsg})
	g.st.resolvers[node] = g.startResolver(node, tag)
}

func (g *Global) resendPreConnect(node string) {
	s := g.st.sess[node]
	if s == nil || s.pre == nil {
		return
	}
	pre := s.pre
	s.pre = nil
	_ = g.n.Send(g.proc(), resendMsg{cast: etf.Tuple{etf.Atom("init_connect"),
		etf.Tuple{int64(pre.vsn), pre.hisTag}, etf.Atom(node), pre.initMsg}})
}

func (g *Global) handleNodedown(node, what string) {
	g.cancelLocker(node, g.myTag(node), nil)
	g.toLocker(knownRemoveMsg{node: node})
	g.resetNodeState(node)
	switch what {
	case "remove_connection":
		g.st.removing[node] = true
	case "ignore_node":
		delete(g.st.removing, node)
	default: // disconnected
		if g.st.removing[node] {
			delete(g.st.removing, node)
		} else {
			g.informConnectionLoss(node)
		}
	}
	delete(g.st.pending, node)
	delete(g.st.known, node)
	g.st.synced = slices.DeleteFunc(g.st.synced, func(s string) bool { return s == node })
}

func (g *Global) informConnectionLoss(node string) {
	g.st.nextOp++
	msg := etf.Tuple{etf.Atom("lost_connection"), etf.Atom(g.self), g.st.creation, g.st.nextOp, etf.Atom(node)}
	g.volatileMulticast(msg, node, popVsn, true)
}

func (g *Global) volatileMulticast(msg etf.Term, ignore string, minVsn int, alsoPending bool) {
	for n, v := range g.st.known {
		if n != ignore && v >= minVsn {
			g.sendVolatile(n, msg)
		}
	}
	if alsoPending {
		for n, v := range g.st.pending {
			if n != ignore && v >= minVsn {
				g.sendVolatile(n, msg)
			}
		}
	}
}

func (g *Global) potentiallyKnown(node string) bool {
	_, k := g.st.known[node]
	_, p := g.st.pending[node]
	return k || p
}

func (g *Global) nodeVsn(node string) int {
	if node == g.self {
		return Vsn
	}
	if v, ok := g.st.known[node]; ok {
		return v
	}
	return g.st.pending[node]
}

func (g *Global) knownNodes() []string {
	out := make([]string, 0, len(g.st.known))
	for n := range g.st.known {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// knownMap is the Known map init_connect carries (peers of OTP 25+ ignore it).
func (g *Global) knownMap() etf.Map {
	m := etf.Map{}
	for n, v := range g.st.known {
		m = append(m, etf.MapEntry{Key: etf.Atom(n), Value: int64(v)})
	}
	for n, v := range g.st.pending {
		m = append(m, etf.MapEntry{Key: etf.Tuple{etf.Atom("pending"), etf.Atom(n)}, Value: int64(v)})
	}
	for n, id := range g.st.connID {
		m = append(m, etf.MapEntry{Key: etf.Tuple{etf.Atom("connection_id"), etf.Atom(n)}, Value: id})
	}
	return m
}

// mkKnownList is global.erl's mk_known_list: [{Node, Vsn}] for peers of version 7+.
func (g *Global) mkKnownList(vsn int) etf.List {
	l := etf.List{}
	for _, n := range g.knownNodes() {
		if vsn < pgpvVsn {
			l = append(l, etf.Atom(n))
		} else {
			l = append(l, etf.Tuple{etf.Atom(n), int64(g.st.known[n])})
		}
	}
	return l
}

// ---- the connect protocol ----

func (g *Global) castInitConnect(vsnT, nodeT, initMsg etf.Term) {
	node, ok := nodeT.(etf.Atom)
	if !ok {
		return
	}
	vt, ok := vsnT.(etf.Tuple)
	if !ok || len(vt) < 2 {
		g.log.Info("global: illegal protocol version", "vsn", etf.Format(vsnT), "node", string(node))
		return
	}
	hisVsn64, ok := vt[0].(int64)
	if !ok {
		return
	}
	hisVsn := int(hisVsn64)
	vsn := hisVsn
	if hisVsn > Vsn || len(vt) > 2 {
		vsn = Vsn
	}
	g.initConnect(vsn, string(node), initMsg, vt[1], hisVsn)
}

func (g *Global) initConnect(vsn int, node string, initMsg, hisTag etf.Term, hisVsn int) {
	if _, ok := g.st.pending[node]; ok {
		if hisVsn < verifyConnectVsn {
			g.n.Disconnect(node)
			g.log.Error("global: out of sync connection attempt from an old node; disconnecting", "node", node, "vsn", hisVsn)
			return
		}
		g.sendCancelConnectMessage(node, hisTag)
		g.restartConnect(node, g.myTag(node))
		return // as OTP 27+ does
	}
	s := g.sess(node)
	s.protVsn, s.hasVsn = vsn, true
	s.hisTag = hisTag
	r := g.st.resolvers[node]
	if r == nil {
		s.pre = &preConnect{vsn: vsn, initMsg: initMsg, hisTag: hisTag}
		return
	}
	im, ok := initMsg.(etf.Tuple)
	if !ok || len(im) != 4 {
		return
	}
	hisLocker, ok := im[3].(etf.Pid)
	if !ok {
		return
	}
	g.toLocker(hisTheLockerMsg{locker: hisLocker, vsn: vsn, hisTag: hisTag, myTag: r.tag})
	if hisVsn >= verifyConnectVsn {
		g.sendVolatile(node, etf.Tuple{etf.Atom("init_connect_ack"), etf.Atom(g.self), hisTag, r.tag})
	}
	g.st.pending[node] = hisVsn
}

func (g *Global) restartConnect(node string, myTag etf.Term) {
	g.cancelLocker(node, myTag, nil)
	g.resetNodeState(node)
	delete(g.st.pending, node)
	g.deleteNodeResources(node) // OTP 27+
	if _, isInt := myTag.(int64); isInt {
		g.handleNodeup(node)
	}
}

func (g *Global) initConnectAck(node string, hisMyTag, hisHisTag etf.Term) {
	myMy := g.myTag(node)
	var myHis etf.Term
	if s := g.st.sess[node]; s != nil {
		myHis = s.hisTag
	}
	if tagEq(myMy, hisMyTag) && tagEq(myHis, hisHisTag) {
		return
	}
	g.sendCancelConnectMessage(node, hisHisTag)
	g.restartConnect(node, myMy)
}

func (g *Global) cancelConnect(node string, tag etf.Term) {
	if !tagEq(g.myTag(node), tag) || g.myTag(node) == nil {
		return
	}
	g.cancelLocker(node, tag, nil)
	g.resetNodeState(node)
	delete(g.st.pending, node)
	g.restartConnect(node, tag)
}

func (g *Global) sendCancelConnectMessage(node string, hisTag etf.Term) {
	if hisTag == nil {
		hisTag = atomUndefined
	}
	g.sendVolatile(node, etf.Tuple{etf.Atom("cancel_connect"), etf.Atom(g.self), hisTag})
}

// cancelLocker is global.erl's cancel_locker: tell the locker, tell the peer (cancel_connect)
// when a connect with it is pending, and kill the resolver of that session.
func (g *Global) cancelLocker(node string, tag etf.Term, fn func(*process.Process)) {
	g.toLocker(cancelMsg{node: node, tag: tag, fn: fn})
	g.sendCancelConnect(node, tag)
	if r := g.st.resolvers[node]; r != nil && tagEq(r.tag, tag) {
		r.stop()
		delete(g.st.resolvers, node)
	}
}

func (g *Global) sendCancelConnect(node string, myTag etf.Term) {
	v, ok := g.st.pending[node]
	if !ok || v < verifyConnectVsn || !tagEq(g.myTag(node), myTag) {
		return
	}
	g.sendCancelConnectMessage(node, g.hisTag(node))
}

func (g *Global) lockIsSet(node string, lockID etf.Term) {
	g.mu.RLock()
	names := g.tables.namesList()
	g.mu.RUnlock()
	g.cast(node, etf.Tuple{etf.Atom("exchange"), etf.Atom(g.self), names, etf.List{}, g.hisTag(node)})
	s := g.sess(node)
	s.lockID = lockID
	if s.waitLock == 2 {
		s.waitLock = 1
		g.exchange(node, s.waitNames)
		return
	}
	s.waitLock = 1
}

func (g *Global) exchange(node string, names etf.List) {
	s := g.sess(node)
	if s.waitLock == 1 {
		s.waitLock = 0
		if r := g.st.resolvers[node]; r != nil {
			r.resolve(names)
		}
		return
	}
	s.waitLock, s.waitNames = 2, names
}

func (g *Global) exchangeOps(m exchangeOpsMsg) {
	if !tagEq(g.myTag(m.node), m.myTag) {
		g.cancelLocker(m.node, m.myTag, nil)
		return
	}
	s := g.sess(m.node)
	known := g.mkKnownList(g.nodeVsn(m.node))
	g.mu.RLock()
	ext := g.tables.namesExtList()
	g.mu.RUnlock()
	g.cast(m.node, etf.Tuple{etf.Atom("resolved"), etf.Atom(g.self), m.resolved, known, etf.Atom("unused"), ext, g.hisTag(m.node)})
	if s.saveOps == 2 {
		hisKnown, namesExt, hisOps := s.resHisKnown, s.resNamesExt, s.resHisOps
		s.saveOps, s.ops = 1, m.ops
		g.resolved(m.node, hisOps, hisKnown, namesExt)
		return
	}
	s.saveOps, s.ops = 1, m.ops
}

func (g *Global) castResolved(node string, hisOps, hisKnown etf.List, namesExt, tag etf.Term) {
	if !tagEq(g.myTag(node), tag) {
		g.cancelLocker(node, tag, nil)
		return
	}
	s := g.sess(node)
	if s.saveOps == 1 {
		g.resolved(node, hisOps, hisKnown, namesExt)
		return
	}
	s.saveOps = 2
	s.resHisKnown, s.resNamesExt, s.resHisOps = hisKnown, namesExt, hisOps
}

type nodeVsn struct {
	node string
	vsn  int
}

// resolved is global.erl's resolved/5: the names of both partitions are settled with node;
// apply the operations, tell our partition about the other one (new_nodes, sent by the locker
// before it releases the lock) and get in sync with the other partition's nodes.
func (g *Global) resolved(node string, hisOps, hisKnown etf.List, namesExt etf.Term) {
	s := g.sess(node)
	ops := append(slices.Clone(s.ops), hisOps...)
	s.saveOps, s.ops = 0, nil
	knownBefore := make(map[string]int, len(g.st.known))
	for k, v := range g.st.known {
		knownBefore[k] = v
	}
	newNodes := g.makeNodeVsnList(append(etf.List{etf.Atom(node)}, hisKnown...))
	hisKnownNodes := nodeList(hisKnown)
	g.syncOthers(hisKnownNodes)
	extra := etf.List{etf.Tuple{etf.Atom("vsn"), vsnTerm(s)}, etf.Tuple{etf.Atom("lock"), orUndefined(s.lockID)}}
	g.doOps(ops, etf.Atom(g.self), namesExt, extra)
	g.syncedEvent(node)
	for _, cn := range hisKnownNodes {
		tag := g.myTag(cn)
		delete(g.st.pending, cn)
		g.cancelLocker(cn, tag, nil)
		g.resetNodeState(cn)
	}
	nnList := etf.List{}
	nnPlain := etf.List{}
	for _, nv := range newNodes {
		nnList = append(nnList, etf.Tuple{etf.Atom(nv.node), int64(nv.vsn)})
		nnPlain = append(nnPlain, etf.Atom(nv.node))
	}
	self := etf.Atom(g.self)
	newNodesF := func(p *process.Process) {
		for n, v := range knownBefore {
			var msg etf.Tuple
			if v >= pgpvVsn {
				msg = etf.Tuple{etf.Atom("new_nodes"), self, ops, namesExt, nnList, extra}
			} else {
				msg = etf.Tuple{etf.Atom("new_nodes"), self, ops, namesExt, nnPlain, extra}
			}
			_ = gen.CastFrom(p, process.Name{Name: ServerName, Node: n}, msg)
		}
	}
	tag := g.myTag(node)
	delete(g.st.pending, node)
	g.cancelLocker(node, tag, newNodesF)
	g.resetNodeState(node)
	added := g.addToKnown(newNodes)
	g.toLocker(knownAddMsg{nodes: added})
	g.st.synced = append(g.st.synced, node)
}

func vsnTerm(s *session) etf.Term {
	if !s.hasVsn {
		return atomUndefined
	}
	return int64(s.protVsn)
}

func orUndefined(t etf.Term) etf.Term {
	if t == nil {
		return atomUndefined
	}
	return t
}

func (g *Global) newNodes(ops etf.List, connNode string, namesExt etf.Term, nodes etf.List, extra etf.Term) {
	added := g.addToKnown(g.parseNodeVsns(nodes))
	g.syncOthers(added)
	g.doOps(ops, etf.Atom(connNode), namesExt, extra)
	g.toLocker(knownAddMsg{nodes: added})
}

func (g *Global) inSync(node string) {
	g.syncedEvent(node)
	if !slices.Contains(g.st.synced, node) {
		g.st.synced = append(g.st.synced, node)
	}
	delete(g.st.pending, node)
	g.cancelLocker(node, g.myTag(node), nil)
	g.resetNodeState(node)
}

// parseNodeVsns reads a list of Node or {Node, Vsn} (vsn -1 when absent: version unknown).
func (g *Global) parseNodeVsns(l etf.List) []nodeVsn {
	out := make([]nodeVsn, 0, len(l))
	for _, e := range l {
		switch x := e.(type) {
		case etf.Atom:
			out = append(out, nodeVsn{string(x), -1})
		case etf.Tuple:
			if len(x) == 2 {
				n, ok1 := x[0].(etf.Atom)
				v, ok2 := x[1].(int64)
				if ok1 && ok2 {
					out = append(out, nodeVsn{string(n), int(v)})
				}
			}
		}
	}
	return out
}

// makeNodeVsnList is global.erl's make_node_vsn_list: versions filled in from what we know.
func (g *Global) makeNodeVsnList(l etf.List) []nodeVsn {
	in := g.parseNodeVsns(l)
	for i, nv := range in {
		if nv.vsn <= 0 {
			in[i].vsn = g.nodeVsn(nv.node)
		}
	}
	return in
}

func nodeList(l etf.List) []string {
	var out []string
	for _, e := range l {
		switch x := e.(type) {
		case etf.Atom:
			out = append(out, string(x))
		case etf.Tuple:
			if len(x) == 2 {
				if n, ok := x[0].(etf.Atom); ok {
					out = append(out, string(n))
				}
			}
		}
	}
	return out
}

// addToKnown is global.erl's add_to_known; it returns the nodes that were not known.
func (g *Global) addToKnown(nodes []nodeVsn) []string {
	var added []string
	for _, nv := range nodes {
		if nv.node == g.self {
			continue
		}
		v := nv.vsn
		if v < 0 {
			v = 0
		}
		old, ok := g.st.known[nv.node]
		switch {
		case !ok:
			added = append(added, nv.node)
			g.st.known[nv.node] = v
		case old < 0 || (old == 0 && nv.vsn > 0):
			g.st.known[nv.node] = v
		}
	}
	return added
}

// syncOthers is global.erl's sync_others: connect to each node (with connect_all, this is how
// the mesh forms) and tell it we are in sync, or report it down.
func (g *Global) syncOthers(nodes []string) {
	for _, node := range nodes {
		if node == g.self {
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			p := g.n.Spawn()
			defer p.Exit(etf.Atom("normal"))
			p.MonitorNode(node)
			ctx, cancel := contextDone()
			m, err := p.ReceiveMatch(ctx, func(t etf.Term) bool {
				tt, ok := t.(etf.Tuple)
				return ok && len(tt) == 2 && tt[0] == etf.Atom("nodedown")
			})
			cancel()
			if err == nil && m != nil {
				g.log.Warn("global: failed to connect", "node", node)
				_ = g.n.Send(g.proc(), extraNodedownMsg{node: node})
				return
			}
			_ = gen.CastFrom(p, process.Name{Name: ServerName, Node: node}, etf.Tuple{etf.Atom("in_sync"), etf.Atom(g.self), atomTrue})
		}()
	}
}

// ---- names ----

// doOps is global.erl's do_ops: insert and delete names as a settled exchange says.
func (g *Global) doOps(ops etf.List, connNode etf.Atom, namesExt, extra etf.Term) {
	exts := map[string]etf.Atom{}
	if l, ok := namesExt.(etf.List); ok {
		for _, e := range l {
			if t, ok := e.(etf.Tuple); ok && len(t) == 3 {
				if rn, ok := t[2].(etf.Atom); ok {
					exts[termKey(etf.Tuple{t[0], t[1]})] = rn
				}
			}
		}
	}
	var dels []etf.Term
	for _, op := range ops {
		t, ok := op.(etf.Tuple)
		if !ok || len(t) != 2 {
			continue
		}
		switch t[0] {
		case atomInsert:
			e, ok := t[1].(etf.Tuple)
			if !ok || len(e) != 3 {
				continue
			}
			pid, ok := e[1].(etf.Pid)
			if !ok {
				continue
			}
			if rn, ok := exts[termKey(etf.Tuple{e[0], pid})]; ok {
				g.insNameExt(e[0], pid, e[2], rn, connNode, extra)
			} else {
				g.insName(e[0], pid, e[2], connNode, extra)
			}
		case atomDelete:
			dels = append(dels, t[1])
		}
	}
	for _, n := range dels {
		g.deleteName(n)
	}
}

func (g *Global) insName(name etf.Term, pid etf.Pid, method etf.Term, from etf.Term, extra etf.Term) {
	g.deleteNameKeepPid(name)
	g.insertName(name, pid, method, from, extra)
}

func (g *Global) insNameExt(name etf.Term, pid etf.Pid, method etf.Term, regNode etf.Atom, from etf.Term, extra etf.Term) {
	g.deleteNameKeepPid(name)
	g.mu.Lock()
	g.tables.namesExt[termKey(name)] = extEntry{name: name, pid: pid, regNode: regNode}
	g.mu.Unlock()
	g.insertName(name, pid, method, from, extra)
}

func (g *Global) insertName(name etf.Term, pid etf.Pid, method etf.Term, from etf.Term, extra etf.Term) {
	ref := g.monitor(pid)
	k := termKey(name)
	g.mu.Lock()
	g.tables.saveNodeRes(string(pid.Node), ref)
	g.tables.names[k] = &nameEntry{name: name, pid: pid, method: method, ref: ref}
	g.tables.nameRefs[ref] = k
	still := g.lockStillSet(from, extra)
	g.mu.Unlock()
	if !still {
		g.deleteName(name)
	}
}

// lockStillSet is global.erl's lock_still_set (g.mu held).
func (g *Global) lockStillSet(from etf.Term, extra etf.Term) bool {
	l := g.tables.locks[termKey(atomGlobal)]
	if l == nil {
		return !g.tables.globalLockDown
	}
	switch f := from.(type) {
	case etf.Pid:
		for _, h := range l.holders {
			if h.pid == f {
				return true
			}
		}
		return false
	case etf.Atom:
		li, ok := extraInfo(extra, "lock").(etf.Tuple)
		if !ok || len(li) != 2 {
			return false
		}
		return etf.Equal(l.reqID, li[1])
	}
	return false
}

func extraInfo(extra etf.Term, tag etf.Atom) etf.Term {
	l, ok := extra.(etf.List)
	if !ok {
		return nil
	}
	for _, e := range l {
		if t, ok := e.(etf.Tuple); ok && len(t) == 2 && t[0] == tag {
			return t[1]
		}
	}
	return nil
}

func (g *Global) delNameByRef(ref etf.Ref) {
	g.mu.RLock()
	k, ok := g.tables.nameRefs[ref]
	var name etf.Term
	if ok {
		if e := g.tables.names[k]; e != nil && e.ref == ref {
			name = e.name
		} else {
			ok = false
		}
	}
	g.mu.RUnlock()
	if ok {
		g.deleteName(name)
	}
}

// deleteNameKeepPid drops the monitor and bookkeeping of name but leaves its entry, which the
// caller overwrites at once (so whereis never sees a gap).
func (g *Global) deleteNameKeepPid(name etf.Term) {
	k := termKey(name)
	g.mu.Lock()
	e := g.tables.names[k]
	if e != nil {
		g.dropNameLocked(k, e)
	}
	g.mu.Unlock()
	if e != nil {
		g.demonitor(e.ref)
	}
}

func (g *Global) deleteName(name etf.Term) {
	k := termKey(name)
	g.mu.Lock()
	e := g.tables.names[k]
	if e != nil {
		delete(g.tables.names, k)
		g.dropNameLocked(k, e)
	}
	g.mu.Unlock()
	if e != nil {
		g.demonitor(e.ref)
	}
}

func (g *Global) dropNameLocked(k string, e *nameEntry) {
	g.tables.deleteNodeRes(e.ref)
	delete(g.tables.nameRefs, e.ref)
	if x, ok := g.tables.namesExt[k]; ok && x.pid == e.pid {
		delete(g.tables.namesExt, k)
	}
}

func (g *Global) deleteNodeResources(node string) {
	g.mu.Lock()
	refs := g.tables.nodeRes[node]
	delete(g.tables.nodeRes, node)
	for r := range refs {
		delete(g.tables.resNode, r)
	}
	g.mu.Unlock()
	for r := range refs {
		g.demonitor(r)
		g.deleteLockByRef(r)
		g.delNameByRef(r)
	}
}

func (g *Global) doWhereis(name, from etf.Term) {
	g.mu.RLock()
	set := g.tables.isLockSet(atomGlobal)
	g.mu.RUnlock()
	if set {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			t := time.NewTimer(randomSleep(5))
			defer t.Stop()
			select {
			case <-t.C:
				_ = g.n.Send(g.proc(), etf.Tuple{etf.Atom("whereis"), name, from})
			case <-g.ctx.Done():
			}
		}()
		return
	}
	var reply etf.Term = atomUndefined
	if pid, ok := g.Whereis(name); ok {
		reply = pid
	}
	g.reply(from, reply)
}

// ---- locks ----

func (g *Global) handleSetLock(id etf.Term, pid etf.Pid) bool {
	t, ok := id.(etf.Tuple)
	if !ok || len(t) != 2 {
		return false
	}
	g.mu.RLock()
	holders, can := g.tables.canSetLock(t[0], t[1])
	g.mu.RUnlock()
	if !can {
		return false
	}
	for _, h := range holders {
		if h.pid == pid {
			return true
		}
	}
	ref := g.monitor(pid)
	k := termKey(t[0])
	g.mu.Lock()
	g.tables.saveNodeRes(string(pid.Node), ref)
	l := g.tables.locks[k]
	if l == nil {
		l = &lockEntry{resource: t[0], reqID: t[1]}
		g.tables.locks[k] = l
	}
	l.holders = append([]holder{{pid: pid, ref: ref}}, l.holders...)
	g.tables.lockRefs[ref] = k
	g.mu.Unlock()
	return true
}

func (g *Global) handleDelLock(id etf.Term, pid etf.Pid) {
	t, ok := id.(etf.Tuple)
	if !ok || len(t) != 2 {
		return
	}
	k := termKey(t[0])
	g.mu.RLock()
	l := g.tables.locks[k]
	match := l != nil && etf.Equal(l.reqID, t[1])
	g.mu.RUnlock()
	if match {
		g.removeLock(k, pid, false)
	}
}

// removeLock is global.erl's remove_lock: pid no longer holds the lock at key.
func (g *Global) removeLock(k string, pid etf.Pid, down bool) {
	var refs []etf.Ref
	g.mu.Lock()
	l := g.tables.locks[k]
	if l == nil {
		g.mu.Unlock()
		return
	}
	if len(l.holders) == 1 && l.holders[0].pid == pid {
		refs = append(refs, l.holders[0].ref)
		delete(g.tables.locks, k)
		if etf.Equal(l.resource, atomGlobal) {
			g.tables.globalLockDown = down
		}
	} else {
		l.holders = slices.DeleteFunc(l.holders, func(h holder) bool {
			if h.pid == pid {
				refs = append(refs, h.ref)
				return true
			}
			return false
		})
	}
	for _, r := range refs {
		g.tables.deleteNodeRes(r)
		delete(g.tables.lockRefs, r)
	}
	g.mu.Unlock()
	for _, r := range refs {
		g.demonitor(r)
	}
}

func (g *Global) deleteLockByRef(ref etf.Ref) {
	g.mu.RLock()
	k, ok := g.tables.lockRefs[ref]
	var pid etf.Pid
	found := false
	if ok {
		if l := g.tables.locks[k]; l != nil {
			for _, h := range l.holders {
				if h.ref == ref {
					pid, found = h.pid, true
				}
			}
		}
	}
	g.mu.RUnlock()
	if found {
		g.removeLock(k, pid, true)
	}
}

func (g *Global) isGlobalLockSet() bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.tables.isLockSet(atomGlobal)
}

// ---- overlapping partitions ----

func (g *Global) lostConnection(msg etf.Tuple, nodeA string, xcre, opID etf.Term, nodeB string) {
	key := [2]string{nodeA, nodeB}
	now := time.Now()
	for k, v := range g.st.lostConn {
		if now.Sub(v.at) > lostConnKeep {
			delete(g.st.lostConn, k)
		}
	}
	if old, ok := g.st.lostConn[key]; ok && etf.Equal(old.xcre, xcre) && etf.Compare(opID, old.opID) <= 0 {
		return // seen already
	}
	g.volatileMulticast(msg, nodeA, popVsn, true)
	g.st.lostConn[key] = lostInfo{xcre: xcre, opID: opID, at: now}
	rm := nodeB
	if nodeB == g.self {
		rm = nodeA
	}
	if !g.potentiallyKnown(rm) {
		return
	}
	what := "requested disconnect from"
	ndType := "remove_connection"
	if g.nodeVsn(rm) < popVsn {
		g.n.Disconnect(rm)
		what = "disconnected old"
	} else {
		g.sendVolatile(rm, etf.Tuple{etf.Atom("remove_connection"), etf.Atom(g.self)})
	}
	g.log.Warn("global: "+what+" node to prevent overlapping partitions", "node", rm)
	g.handleNodedown(rm, ndType)
}

func (g *Global) removeConnection(node string) {
	if !g.potentiallyKnown(node) {
		return
	}
	g.n.Disconnect(node)
	g.handleNodedown(node, "remove_connection")
	g.log.Warn("global: disconnected node to prevent overlapping partitions", "node", node)
}

// ---- sending ----

type outMsg struct {
	to       any // a process.Name, a pid or an alias
	msg      etf.Term
	volatile bool // drop it when not connected (erlang:send with noconnect)
}

// reply answers a call as gen:reply does, the multi_call tag of OTP 26+ ([[alias|Alias]|Ref])
// included: a local caller at once, a remote one through the outbox, so that the server never
// waits for a connection (the caller's may have gone) and the reply keeps its order with the
// server's other messages to that node.
func (g *Global) reply(from etf.Term, reply etf.Term) {
	t, _ := from.(etf.Tuple)
	if len(t) != 2 {
		return
	}
	pid, ok := t[0].(etf.Pid)
	if !ok {
		return
	}
	var to any = pid
	if l, ok := t[1].(etf.ImproperList); ok && len(l.Elems) == 1 {
		if alias, ok := aliasOf(l); ok {
			to = alias // [alias|Alias]
		} else if inner, ok := l.Elems[0].(etf.ImproperList); ok {
			if alias, ok := aliasOf(inner); ok {
				to = alias // [[alias|Alias]|Ref]
			}
		}
	}
	msg := etf.Tuple{t[1], reply}
	if string(pid.Node) == g.self {
		_ = g.proc().Send(to, msg)
		return
	}
	g.post(string(pid.Node), outMsg{to: to, msg: msg})
}

func aliasOf(l etf.ImproperList) (etf.Ref, bool) {
	if len(l.Elems) != 1 || l.Elems[0] != etf.Atom("alias") {
		return etf.Ref{}, false
	}
	r, ok := l.Tail.(etf.Ref)
	return r, ok
}

// cast sends a $gen_cast to global_name_server on node, from the server's process, without
// blocking the server: messages to one node go out in order from one goroutine.
func (g *Global) cast(node string, msg etf.Term) {
	g.post(node, outMsg{to: process.Name{Name: ServerName, Node: node}, msg: etf.Tuple{etf.Atom("$gen_cast"), msg}})
}

// sendVolatile sends a plain message to global_name_server on node if it is connected.
func (g *Global) sendVolatile(node string, msg etf.Term) {
	g.post(node, outMsg{to: process.Name{Name: ServerName, Node: node}, msg: msg, volatile: true})
}

func (g *Global) post(node string, m outMsg) {
	g.omu.Lock()
	g.oq[node] = append(g.oq[node], m)
	if g.orun[node] {
		g.omu.Unlock()
		return
	}
	g.orun[node] = true
	g.wg.Add(1)
	g.omu.Unlock()
	go g.drain(node)
}

func (g *Global) drain(node string) {
	defer g.wg.Done()
	for {
		g.omu.Lock()
		q := g.oq[node]
		if len(q) == 0 || g.ctx.Err() != nil {
			delete(g.oq, node)
			delete(g.orun, node)
			g.omu.Unlock()
			return
		}
		m := q[0]
		q[0] = outMsg{}
		g.oq[node] = q[1:]
		g.omu.Unlock()
		if m.volatile && g.n.Conn(node) == nil {
			continue
		}
		_ = g.proc().Send(m.to, m.msg)
	}
}

func (g *Global) toLocker(m etf.Term) { _ = g.n.Send(g.lk.p, m) }

func atomList(l []string) etf.List {
	out := make(etf.List, 0, len(l))
	for _, s := range l {
		out = append(out, etf.Atom(s))
	}
	return out
}

func boolAtom(b bool) etf.Atom {
	if b {
		return atomTrue
	}
	return atomFalse
}

// randomSleep is global.erl's random_sleep: up to 1/8 s the first time, doubling up to 8 s.
func randomSleep(times int) time.Duration {
	maxMs := 8000
	if times <= 5 {
		maxMs = (1 << times) * 1000 / 8
	}
	return time.Duration(1+rand.IntN(maxMs)) * time.Millisecond
}

// syncedEvent tells the Sync callers that node is in sync (or gone).
func (g *Global) syncedEvent(node string) {
	for sy := range g.st.syncers {
		if sy.synced(node) {
			delete(g.st.syncers, sy)
		}
	}
}

// monitor monitors pid from the server. A pid of a node we are not connected to gets a
// placeholder reference at once and the connection is set up in the background, as BEAM's
// erlang:monitor does it, so the server never waits for a connection (up to the setup time for
// an unreachable node) while peers wait for its answers.
func (g *Global) monitor(pid etf.Pid) etf.Ref {
	node := string(pid.Node)
	if node == g.self || g.n.Conn(node) != nil {
		ref, _ := g.proc().Monitor(pid)
		return ref
	}
	ph := g.n.MakeRef()
	g.st.pendingMons[ph] = pid
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		err := g.n.Connect(g.ctx, node)
		if g.ctx.Err() == nil {
			g.toServer(monitorReadyMsg{placeholder: ph, pid: pid, ok: err == nil})
		}
	}()
	return ph
}

// monitorReady turns a placeholder into a real monitor, or, when the connection failed, acts as
// the DOWN (noconnection) the monitor would have given.
func (g *Global) monitorReady(m monitorReadyMsg) {
	if _, ok := g.st.pendingMons[m.placeholder]; !ok {
		return // its name or lock went meanwhile
	}
	delete(g.st.pendingMons, m.placeholder)
	if !m.ok || g.n.Conn(string(m.pid.Node)) == nil {
		g.info(etf.Tuple{etf.Atom("DOWN"), m.placeholder, etf.Atom("process"), m.pid, etf.Atom("noconnection")})
		return
	}
	ref, _ := g.proc().Monitor(m.pid)
	g.mu.Lock()
	t := &g.tables
	if k, ok := t.nameRefs[m.placeholder]; ok {
		delete(t.nameRefs, m.placeholder)
		t.nameRefs[ref] = k
		if e := t.names[k]; e != nil && e.ref == m.placeholder {
			e.ref = ref
		}
	}
	if k, ok := t.lockRefs[m.placeholder]; ok {
		delete(t.lockRefs, m.placeholder)
		t.lockRefs[ref] = k
		if l := t.locks[k]; l != nil {
			for i := range l.holders {
				if l.holders[i].ref == m.placeholder {
					l.holders[i].ref = ref
				}
			}
		}
	}
	if node, ok := t.resNode[m.placeholder]; ok {
		t.deleteNodeRes(m.placeholder)
		t.saveNodeRes(node, ref)
	}
	g.mu.Unlock()
}

// demonitor drops a monitor the server holds, or a pending one.
func (g *Global) demonitor(ref etf.Ref) {
	if _, ok := g.st.pendingMons[ref]; ok {
		delete(g.st.pendingMons, ref)
		return
	}
	g.proc().Demonitor(ref)
}
