package epmd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// defaultTimeout bounds one client request when its context has no deadline.
const defaultTimeout = 5 * time.Second

// Client talks to an EPMD. The zero value is ready to use: it contacts 127.0.0.1 at ERL_EPMD_PORT or 4369.
// A Client holds no connection between calls and is safe for concurrent use.
type Client struct {
	Port    int           // EPMD port; 0 means PortFromEnv() (an invalid ERL_EPMD_PORT makes every call fail)
	Host    string        // host for Register; "" means "127.0.0.1"
	Dialer  *net.Dialer   // optional
	Timeout time.Duration // per-request bound when ctx has no deadline; 0 means 5 s
}

// Register sends ALIVE2_REQ and accepts both ALIVE2_X_RESP 118 (32-bit creation) and the old ALIVE2_RESP
// 121 (16-bit). Zero fields of info take OTP 25's values: Type 77, HighestVersion 6, LowestVersion 5
// (Protocol 0 is already right). The registration lives as long as the returned connection: close it to
// unregister. A refusal (the name is taken) is ErrNameTaken; a creation of 0 is a *ProtocolError.
func (c *Client) Register(ctx context.Context, info NodeInfo) (*Registration, error) {
	const op = "register"
	if err := checkName(info.Name); err != nil {
		return nil, err
	}
	if info.Port < 1 || info.Port > 65535 {
		return nil, fmt.Errorf("epmd: register %q: port %d out of range 1..65535", info.Name, info.Port)
	}
	if len(info.Extra) > maxExtraBytes {
		return nil, fmt.Errorf("epmd: register %q: extra data longer than %d bytes", info.Name, maxExtraBytes)
	}
	if info.Type == 0 {
		info.Type = TypeNormal
	}
	if info.HighestVersion == 0 {
		info.HighestVersion = HighestVersion
	}
	if info.LowestVersion == 0 {
		info.LowestVersion = LowestVersion
	}
	host := c.Host
	if host == "" {
		host = "127.0.0.1"
	}
	x, err := c.start(ctx, op, host)
	if err != nil {
		return nil, err
	}
	var result byte
	var creation uint32
	err = x.send(appendRequest(nil, alive2Body(info)))
	if err == nil {
		result, creation, err = readAlive2Reply(x.conn)
	}
	switch {
	case err != nil:
		err = x.wrap(err)
	case result != 0:
		err = fmt.Errorf("epmd: register %q: %w (result %d)", info.Name, ErrNameTaken, result)
	case creation == 0:
		err = &ProtocolError{Op: op, Reason: "creation 0"}
	}
	if !x.finish() && err == nil {
		// The context ended just now and may have moved the connection's deadline into the past.
		err = x.wrap(x.ctx.Err())
	}
	if err != nil {
		_ = x.conn.Close()
		return nil, err
	}
	if err := x.conn.SetDeadline(time.Time{}); err != nil {
		_ = x.conn.Close()
		return nil, fmt.Errorf("epmd: %s: %w", op, err)
	}
	r := &Registration{conn: x.conn, creation: creation, done: make(chan struct{})}
	go r.watch()
	return r, nil
}

// PortPlease sends PORT_PLEASE2_REQ for name to the EPMD on host (at c.Port); host "" means 127.0.0.1.
// An unknown name is ErrNotRegistered.
func (c *Client) PortPlease(ctx context.Context, host, name string) (NodeInfo, error) {
	const op = "port_please"
	if err := checkName(name); err != nil {
		return NodeInfo{}, err
	}
	if host == "" {
		host = "127.0.0.1"
	}
	x, err := c.start(ctx, op, host)
	if err != nil {
		return NodeInfo{}, err
	}
	defer x.conn.Close()
	defer x.finish()
	var info NodeInfo
	err = x.send(appendRequest(nil, port2Body(name)))
	if err == nil {
		info, err = readPort2Reply(x.conn)
	}
	if errors.Is(err, ErrNotRegistered) {
		return NodeInfo{}, fmt.Errorf("epmd: port_please %q at %s: %w", name, host, ErrNotRegistered)
	}
	if err != nil {
		return NodeInfo{}, x.wrap(err)
	}
	return info, nil
}

// Names sends NAMES_REQ to host's EPMD (at c.Port; host "" means 127.0.0.1) and returns the registered
// names in the order the EPMD lists them.
func (c *Client) Names(ctx context.Context, host string) ([]NameEntry, error) {
	const op = "names"
	if host == "" {
		host = "127.0.0.1"
	}
	x, err := c.start(ctx, op, host)
	if err != nil {
		return nil, err
	}
	defer x.conn.Close()
	defer x.finish()
	var names []NameEntry
	err = x.send(appendRequest(nil, []byte{tagNamesReq}))
	if err == nil {
		_, names, err = readNamesReply(x.conn)
	}
	if err != nil {
		return nil, x.wrap(err)
	}
	return names, nil
}

// Registration is a live ALIVE2 registration: the name stays registered while its connection is open.
type Registration struct {
	conn      net.Conn
	creation  uint32
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// Creation returns the creation the EPMD assigned (never 0).
func (r *Registration) Creation() uint32 { return r.creation }

// Done returns a channel closed when the EPMD connection drops or Close is called.
// A goroutine blocked in Read detects the drop; it ends on Close.
func (r *Registration) Done() <-chan struct{} { return r.done }

// Close closes the connection, which unregisters the name, and waits for the watching goroutine.
func (r *Registration) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.conn.Close() })
	<-r.done
	return r.closeErr
}

// watch reads until the connection fails. An EPMD sends nothing after the reply, so any bytes
// (trailing bytes of a non-standard reply) are dropped.
func (r *Registration) watch() {
	defer close(r.done)
	var buf [64]byte
	for {
		if _, err := r.conn.Read(buf[:]); err != nil {
			return
		}
	}
}

// exchangeState is one request on its own connection, bounded by ctx (plus Client.Timeout when ctx has
// no deadline).
type exchangeState struct {
	op     string
	conn   net.Conn
	ctx    context.Context
	cancel context.CancelFunc
	stop   func() bool
}

// start resolves the port and dials.
func (c *Client) start(ctx context.Context, op, host string) (*exchangeState, error) {
	port := c.Port
	if port == 0 {
		p, err := PortFromEnv()
		if err != nil {
			return nil, err
		}
		port = p
	}
	if port < 1 || port > 65535 {
		return nil, fmt.Errorf("epmd: %s: port %d out of range 1..65535", op, port)
	}
	cancel := context.CancelFunc(func() {})
	if _, ok := ctx.Deadline(); !ok {
		t := c.Timeout
		if t <= 0 {
			t = defaultTimeout
		}
		ctx, cancel = context.WithTimeout(ctx, t)
	}
	d := c.Dialer
	if d == nil {
		d = &net.Dialer{}
	}
	x := &exchangeState{op: op, ctx: ctx, cancel: cancel}
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		cancel()
		return nil, x.wrap(err)
	}
	x.conn = conn
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Cancellation interrupts blocked I/O by moving the deadline into the past.
	x.stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	return x, nil
}

// send writes the whole request.
func (x *exchangeState) send(req []byte) error {
	_, err := x.conn.Write(req)
	return err
}

// finish releases the context; it reports false if the context ended first (the deadline of the
// connection may then be in the past).
func (x *exchangeState) finish() bool {
	ok := x.stop()
	x.cancel()
	return ok
}

// wrap adds the operation to err, keeping it inspectable with errors.Is and errors.As; if the context
// ended, its error is wrapped too so that both context.DeadlineExceeded and os.ErrDeadlineExceeded match.
func (x *exchangeState) wrap(err error) error {
	var pe *ProtocolError
	if errors.As(err, &pe) {
		return err
	}
	cerr := x.ctx.Err()
	if cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// The connection's deadline is the context's: it can fire a moment before the context's timer.
		if dl, ok := x.ctx.Deadline(); ok && !time.Now().Before(dl) {
			cerr = context.DeadlineExceeded
		}
	}
	if cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("epmd: %s: %w (%w)", x.op, cerr, err)
	}
	return fmt.Errorf("epmd: %s: %w", x.op, err)
}
