package node

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/distribute-go/distribute/epmd"
)

// sharedEPMD is an embedded EPMD server on one port, shared by the nodes
// of this process that use it; the last one to stop closes it.
type sharedEPMD struct {
	port int
	srv  *epmd.Server
	done chan struct{}
	refs int
}

var (
	embeddedMu sync.Mutex
	embedded   = map[int]*sharedEPMD{}
)

// acquireEmbedded returns the embedded server on port, starting one if this
// process has none. It fails (with EADDRINUSE) if another process listens.
func acquireEmbedded(port int, n *Node) (*sharedEPMD, error) {
	embeddedMu.Lock()
	defer embeddedMu.Unlock()
	if s := embedded[port]; s != nil {
		s.refs++
		return s, nil
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	s := &sharedEPMD{port: port, srv: &epmd.Server{Logger: n.opts.Logger}, done: make(chan struct{}), refs: 1}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	embedded[port] = s
	n.log.Info("started embedded EPMD", "port", port)
	return s, nil
}

func (s *sharedEPMD) release() {
	embeddedMu.Lock()
	s.refs--
	last := s.refs == 0
	if last && embedded[s.port] == s {
		delete(embedded, s.port)
	}
	embeddedMu.Unlock()
	if last {
		_ = s.srv.Close()
		<-s.done
	}
}

// register registers the node with the local EPMD; with embed, it starts
// the embedded server when nothing listens on the EPMD port.
func (n *Node) register(ctx context.Context, embed bool) (*epmd.Registration, *sharedEPMD, error) {
	c := epmd.Client{Port: n.epmdPort}
	alive, _ := splitName(n.name)
	// Register fills in the rest as OTP 25 does: type 77, TCP, versions 6 and 5.
	info := epmd.NodeInfo{Name: alive, Port: n.port}
	var shared *sharedEPMD
	for try := 0; ; try++ {
		reg, err := c.Register(ctx, info)
		if err == nil {
			return reg, shared, nil
		}
		if !embed || shared != nil || !errors.Is(err, syscall.ECONNREFUSED) || try > 3 {
			if shared != nil {
				shared.release()
			}
			return nil, nil, err
		}
		s, lerr := acquireEmbedded(n.epmdPort, n)
		if lerr != nil && !errors.Is(lerr, syscall.EADDRINUSE) {
			return nil, nil, errors.Join(err, lerr)
		}
		// EADDRINUSE: another process just started one; register with it.
		shared = s
		if s == nil {
			select {
			case <-time.After(50 * time.Millisecond):
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		}
	}
}

// epmdWatch registers the node again whenever its EPMD connection drops
// (EPMD restarted or killed), starting the embedded server when the port is
// free in embedded mode. Links are not touched.
func (n *Node) epmdWatch() {
	defer n.wg.Done()
	for {
		n.epmdMu.Lock()
		reg := n.reg
		n.epmdMu.Unlock()
		select {
		case <-n.ctx.Done():
			return
		case <-reg.Done():
		}
		n.log.Warn("EPMD registration lost; registering again", "epmd_port", n.epmdPort)
		n.emit(Event{Kind: EventEPMDLost})
		for {
			select {
			case <-n.ctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
			ctx, cancel := context.WithTimeout(n.ctx, 2*time.Second)
			newReg, shared, err := n.register(ctx, n.opts.EPMD == EPMDEmbedded)
			cancel()
			if err != nil {
				n.log.Debug("EPMD registration failed; retrying", "err", err)
				continue
			}
			n.epmdMu.Lock()
			stopped := n.ctx.Err() != nil
			if !stopped {
				_ = n.reg.Close()
				n.reg = newReg
				if shared != nil {
					if n.embedded != nil {
						n.embedded.release()
					}
					n.embedded = shared
				}
			}
			n.epmdMu.Unlock()
			if stopped {
				_ = newReg.Close()
				if shared != nil {
					shared.release()
				}
				return
			}
			n.log.Info("registered with EPMD again", "epmd_port", n.epmdPort)
			n.emit(Event{Kind: EventEPMDRegistered})
			break
		}
	}
}
