package rpc

import (
	"context"
	"io"
	"sync"
	"unicode/utf8"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/process"
)

// captureGL is a group leader that writes the output of the I/O requests it gets to w and
// answers them ok (The Erlang I/O Protocol): put_chars in its forms, {put_chars, Enc, Chars},
// {put_chars, Enc, M, F, A} and the old latin1 {put_chars, Chars} and {put_chars, M, F, A}, and
// {requests, List}. Input requests get {error, enotsup}. The M:F(A) forms (io:format sends
// {put_chars, unicode, io_lib, format, [Fmt, Args]}) are applied on the requester's node with
// Call, since Go cannot run io_lib. A mailbox process served by one goroutine, so output keeps
// the order of the requests.
type captureGL struct {
	n    *process.Node
	p    *process.Process
	w    io.Writer
	ctx  context.Context
	done chan struct{}
	once sync.Once
}

func startCaptureGL(ctx context.Context, n *process.Node, w io.Writer) *captureGL {
	g := &captureGL{n: n, p: n.Spawn(), w: w, ctx: ctx, done: make(chan struct{})}
	go g.loop()
	return g
}

// stop ends the group leader and waits for its goroutine.
func (g *captureGL) stop() {
	g.once.Do(func() { g.p.Exit(atomNormal) })
	<-g.done
}

func (g *captureGL) loop() {
	defer close(g.done)
	for {
		m, err := g.p.Receive(context.Background())
		if err != nil {
			return
		}
		t, ok := m.(etf.Tuple)
		if !ok || len(t) != 4 || t[0] != atomIORequest {
			continue
		}
		from, ok := t[1].(etf.Pid)
		if !ok {
			continue
		}
		reply := g.request(from, t[3])
		_ = g.p.Send(from, etf.Tuple{atomIOReply, t[2], reply})
	}
}

var (
	atomIORequest = etf.Atom("io_request")
	atomIOReply   = etf.Atom("io_reply")
	atomPutChars  = etf.Atom("put_chars")
	atomRequests  = etf.Atom("requests")
	atomLatin1    = etf.Atom("latin1")
	atomUnicode   = etf.Atom("unicode")
	errEnotsup    = etf.Tuple{atomError, etf.Atom("enotsup")}
	errRequest    = etf.Tuple{atomError, etf.Atom("request")}
)

// request serves one I/O request and returns the reply.
func (g *captureGL) request(from etf.Pid, req etf.Term) etf.Term {
	r, ok := req.(etf.Tuple)
	if !ok || len(r) == 0 {
		if req == etf.Atom("getopts") {
			return etf.List{etf.Tuple{etf.Atom("binary"), false}, etf.Tuple{etf.Atom("encoding"), atomUnicode}}
		}
		return errRequest
	}
	switch r[0] {
	case atomPutChars:
		var enc etf.Term = atomLatin1
		rest := r[1:]
		if len(r) == 3 || len(r) == 5 {
			enc, rest = r[1], r[2:]
		}
		latin1 := enc == atomLatin1
		var chars etf.Term
		switch len(rest) {
		case 1:
			chars = rest[0]
		case 3:
			m, ok1 := rest[0].(etf.Atom)
			f, ok2 := rest[1].(etf.Atom)
			a, ok3 := asList(rest[2])
			if !ok1 || !ok2 || !ok3 {
				return errRequest
			}
			v, err := Call(g.ctx, g.n, string(from.Node), m, f, a)
			if err != nil {
				return etf.Tuple{atomError, f}
			}
			chars = v
		default:
			return errRequest
		}
		b, ok := chardata(nil, chars, latin1, 0)
		if !ok {
			return etf.Tuple{atomError, etf.Atom("put_chars")}
		}
		_, _ = g.w.Write(b)
		return atomOK
	case atomRequests:
		if len(r) != 2 {
			return errRequest
		}
		l, ok := asList(r[1])
		if !ok {
			return errRequest
		}
		var reply etf.Term = atomOK
		for _, x := range l {
			reply = g.request(from, x)
			if reply != atomOK {
				return reply
			}
		}
		return reply
	case etf.Atom("setopts"):
		return atomOK
	case etf.Atom("get_chars"), etf.Atom("get_line"), etf.Atom("get_until"), etf.Atom("get_password"),
		etf.Atom("get_geometry"):
		return errEnotsup
	}
	return errRequest
}

// maxChardataDepth bounds the nesting of chardata lists we walk (recursively); deeper output
// is refused with an I/O error reply, never a crash.
const maxChardataDepth = 10000

// chardata appends the UTF-8 of Erlang chardata (characters, binaries and nested lists) to b:
// integers are code points; binaries are UTF-8, or Latin-1 with latin1.
func chardata(b []byte, t etf.Term, latin1 bool, depth int) ([]byte, bool) {
	if depth > maxChardataDepth {
		return b, false
	}
	switch x := t.(type) {
	case []byte:
		if !latin1 {
			return append(b, x...), true
		}
		for _, c := range x {
			b = utf8.AppendRune(b, rune(c))
		}
		return b, true
	case etf.String:
		for i := 0; i < len(x); i++ {
			b = utf8.AppendRune(b, rune(x[i]))
		}
		return b, true
	case int64:
		// Code points above 255 are taken in latin1 mode too: a peer that thinks our node
		// has no unicode I/O sends old-style latin1 requests whose characters may exceed it.
		if x < 0 || x > utf8.MaxRune {
			return b, false
		}
		return utf8.AppendRune(b, rune(x)), true
	case etf.List:
		for _, e := range x {
			var ok bool
			if b, ok = chardata(b, e, latin1, depth+1); !ok {
				return b, false
			}
		}
		return b, true
	case etf.ImproperList:
		for _, e := range x.Elems {
			var ok bool
			if b, ok = chardata(b, e, latin1, depth+1); !ok {
				return b, false
			}
		}
		if tail, ok := x.Tail.([]byte); ok {
			return chardata(b, tail, latin1, depth+1)
		}
		return b, false
	}
	return b, false
}

// asList returns an Erlang proper list as a List (a STRING_EXT decodes as etf.String).
func asList(t etf.Term) (etf.List, bool) {
	switch x := t.(type) {
	case etf.List:
		return x, true
	case etf.String:
		l := make(etf.List, len(x))
		for i := 0; i < len(x); i++ {
			l[i] = int64(x[i])
		}
		return l, true
	}
	return nil, false
}

// newDiscardGL returns a group leader that answers every I/O request (output ok, input
// {error, enotsup}) and keeps nothing; the caller ends it.
func newDiscardGL(n *process.Node) *process.Process {
	return n.SpawnHandler(func(p *process.Process, m etf.Term) {
		t, ok := m.(etf.Tuple)
		if !ok || len(t) != 4 || t[0] != atomIORequest {
			return
		}
		from, ok := t[1].(etf.Pid)
		if !ok {
			return
		}
		var reply etf.Term = atomOK
		if r, ok := t[3].(etf.Tuple); ok && len(r) > 0 && r[0] != atomPutChars && r[0] != atomRequests && r[0] != etf.Atom("setopts") {
			reply = errEnotsup
		}
		_ = p.Send(from, etf.Tuple{atomIOReply, t[2], reply})
	})
}
