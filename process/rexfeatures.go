package process

import (
	"github.com/distribute-go/distribute/control"
	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/handshake"
	"github.com/distribute-go/distribute/node"
)

var (
	atomRex             = etf.Atom("rex")
	atomFeaturesRequest = etf.Atom("features_request")
	atomFeaturesReply   = etf.Atom("features_reply")
	atomErpc            = etf.Atom("erpc")
)

// regSend delivers a REG_SEND. A message to rex while no process is registered as rex (the rpc
// package's ServeRex registers one) is the features request BEAM's rex sends every published
// peer on nodeup, {Pid, features_request}: it is answered as rex answers it, {features_reply,
// Node, Features}, with [erpc] only when the node serves spawn requests (Options.Spawn) and
// the connection negotiated them, else []. Nothing on BEAM waits for that answer (OTP 25-29
// only record it), but answering keeps every visible connection from costing a dropped message.
func (n *Node) regSend(c *node.Conn, to etf.Atom, pl control.Payload) {
	p := n.byName(to)
	if p == nil && to == atomRex && n.answerFeatures(c, pl) {
		return
	}
	n.deliverTo(p, pl, "name", to)
}

// answerFeatures answers {Pid, features_request} from a process of c's peer; it reports
// whether the message was one.
func (n *Node) answerFeatures(c *node.Conn, pl control.Payload) bool {
	t, err := pl.Decode()
	if err != nil {
		return false
	}
	m, ok := t.(etf.Tuple)
	if !ok || len(m) != 2 || m[1] != atomFeaturesRequest {
		return false
	}
	pid, ok := m[0].(etf.Pid)
	if !ok || string(pid.Node) != c.Peer() {
		return false
	}
	features := etf.List{}
	if n.opts.Spawn != nil && c.Flags()&handshake.FlagSpawn != 0 {
		features = etf.List{atomErpc}
	}
	_ = c.Send(control.Send{To: pid}, etf.Tuple{atomFeaturesReply, n.self, features})
	return true
}
