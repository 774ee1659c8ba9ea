// Command capture records the handshake frames a real Erlang/OTP node sends,
// for use as fuzz seeds and replay vectors by the handshake package's tests.
// It lives under testdata so that `go build ./...` and `go test ./...` skip it.
//
// Run from the module root (needs erl and epmd on PATH):
//
//	go run ./handshake/testdata/capture -out handshake/testdata
//
// It starts a private epmd, then:
//
//   - initiator: registers "gocap" in epmd, has `erl -name capa@127.0.0.1`
//     call net_kernel:connect_node('gocap@127.0.0.1'), answers as acceptor
//     with challenge 0x01020304 and writes everything the BEAM initiator sent
//     (its name frame and its challenge reply, with their 2-byte lengths) to
//     otp_initiator.bin;
//   - acceptor: dials `erl -name capb@127.0.0.1`, sends a name message as
//     gocap@127.0.0.1 (creation 0x11223344) and a challenge reply with
//     challenge 0x05060708, and writes everything the BEAM acceptor sent
//     (status, challenge, ack, with their lengths) to otp_acceptor.bin.
//
// Every process it starts is killed before it exits. The cookie is "c".
package main

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

const (
	cookie        = "c"
	goName        = "gocap@127.0.0.1"
	goCreation    = 0x11223344
	ourChallenge  = 0x01020304 // sent to the BEAM initiator
	ourChallenge2 = 0x05060708 // sent to the BEAM acceptor
	// Mandatory26 | MANDATORY_25_DIGEST | DIST_MONITOR | DIST_MONITOR_NAME |
	// SMALL_ATOM_TAGS | SEND_SENDER | ALIAS
	goFlags = 0x4_0307_0F94 | 0x4000000 | 0x8 | 0x20 | 0x4000 | 0x80000 | 1<<35
)

func main() {
	out := flag.String("out", "handshake/testdata", "directory for the .bin files")
	flag.Parse()
	log.SetFlags(0)
	if err := run(*out); err != nil {
		log.Fatal(err)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type procs []*exec.Cmd

func (p *procs) start(env []string, name string, args ...string) error {
	c := exec.Command(name, args...)
	c.Env = append(os.Environ(), env...)
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	if err := c.Start(); err != nil {
		return err
	}
	*p = append(*p, c)
	return nil
}

func (p procs) killAll() {
	for _, c := range p {
		_ = c.Process.Kill()
		_ = c.Wait()
	}
}

func run(out string) error {
	var ps procs
	defer func() { ps.killAll() }()
	epmdPort, err := freePort()
	if err != nil {
		return err
	}
	env := []string{"ERL_EPMD_PORT=" + strconv.Itoa(epmdPort)}
	if err := ps.start(env, "epmd", "-port", strconv.Itoa(epmdPort)); err != nil {
		return err
	}
	if err := waitDial(epmdPort); err != nil {
		return err
	}

	a, err := captureInitiator(&ps, env, epmdPort)
	if err != nil {
		return fmt.Errorf("initiator capture: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "otp_initiator.bin"), a, 0o644); err != nil {
		return err
	}
	b, err := captureAcceptor(&ps, env)
	if err != nil {
		return fmt.Errorf("acceptor capture: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "otp_acceptor.bin"), b, 0o644); err != nil {
		return err
	}
	log.Printf("wrote %d + %d bytes", len(a), len(b))
	return nil
}

func waitDial(port int) error {
	for i := 0; i < 100; i++ {
		c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			return c.Close()
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %d", port)
}

func digest(challenge uint32) []byte {
	s := md5.Sum([]byte(cookie + strconv.FormatUint(uint64(challenge), 10)))
	return s[:]
}

func frame(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

// readFrame returns one frame with its length prefix.
func readFrame(c net.Conn) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return nil, err
	}
	b := make([]byte, 2+int(binary.BigEndian.Uint16(h[:])))
	copy(b, h[:])
	_, err := io.ReadFull(c, b[2:])
	return b, err
}

func captureInitiator(ps *procs, env []string, epmdPort int) ([]byte, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer l.Close()
	// Register gocap in epmd: ALIVE2_REQ, type 77, proto 0, versions 6..5.
	reg, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(epmdPort))
	if err != nil {
		return nil, err
	}
	defer reg.Close()
	body := []byte{120}
	body = binary.BigEndian.AppendUint16(body, uint16(l.Addr().(*net.TCPAddr).Port))
	body = append(body, 77, 0, 0, 6, 0, 5, 0, 5)
	body = append(body, "gocap"...)
	body = append(body, 0, 0)
	if _, err := reg.Write(frame(body)); err != nil {
		return nil, err
	}
	var resp [6]byte
	if _, err := io.ReadFull(reg, resp[:]); err != nil || resp[0] != 118 || resp[1] != 0 {
		return nil, fmt.Errorf("epmd registration failed: % x %v", resp, err)
	}

	if err := ps.start(env, "erl", "-name", "capa@127.0.0.1", "-setcookie", cookie, "-noshell",
		"-eval", "io:format(\"connect_node: ~p~n\", [net_kernel:connect_node('"+goName+"')]), timer:sleep(2000), halt()."); err != nil {
		return nil, err
	}
	_ = l.(*net.TCPListener).SetDeadline(time.Now().Add(20 * time.Second))
	c, err := l.Accept()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var rec bytes.Buffer
	name, err := readFrame(c)
	if err != nil {
		return nil, err
	}
	rec.Write(name)
	if name[2] != 'N' {
		return nil, fmt.Errorf("BEAM sent name tag %q", name[2])
	}
	if _, err := c.Write(frame([]byte("sok"))); err != nil {
		return nil, err
	}
	ch := []byte{'N'}
	ch = binary.BigEndian.AppendUint64(ch, goFlags)
	ch = binary.BigEndian.AppendUint32(ch, ourChallenge)
	ch = binary.BigEndian.AppendUint32(ch, goCreation)
	ch = binary.BigEndian.AppendUint16(ch, uint16(len(goName)))
	ch = append(ch, goName...)
	if _, err := c.Write(frame(ch)); err != nil {
		return nil, err
	}
	reply, err := readFrame(c)
	if err != nil {
		return nil, err
	}
	rec.Write(reply)
	if len(reply) != 23 || reply[2] != 'r' || !bytes.Equal(reply[7:], digest(ourChallenge)) {
		return nil, errors.New("bad challenge reply from BEAM")
	}
	ack := append([]byte{'a'}, digest(binary.BigEndian.Uint32(reply[3:7]))...)
	if _, err := c.Write(frame(ack)); err != nil {
		return nil, err
	}
	// Let the node see the connection up before we drop it.
	time.Sleep(300 * time.Millisecond)
	return rec.Bytes(), nil
}

func captureAcceptor(ps *procs, env []string) ([]byte, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	p := strconv.Itoa(port)
	if err := ps.start(env, "erl", "-name", "capb@127.0.0.1", "-setcookie", cookie, "-noshell",
		"-kernel", "inet_dist_listen_min", p, "inet_dist_listen_max", p,
		"-eval", "timer:sleep(30000), halt()."); err != nil {
		return nil, err
	}
	if err := waitDial(port); err != nil {
		return nil, err
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+p)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	nm := []byte{'N'}
	nm = binary.BigEndian.AppendUint64(nm, goFlags)
	nm = binary.BigEndian.AppendUint32(nm, goCreation)
	nm = binary.BigEndian.AppendUint16(nm, uint16(len(goName)))
	nm = append(nm, goName...)
	if _, err := c.Write(frame(nm)); err != nil {
		return nil, err
	}
	var rec bytes.Buffer
	st, err := readFrame(c)
	if err != nil {
		return nil, err
	}
	rec.Write(st)
	if string(st[2:]) != "sok" {
		return nil, fmt.Errorf("status %q", st[2:])
	}
	ch, err := readFrame(c)
	if err != nil {
		return nil, err
	}
	rec.Write(ch)
	if ch[2] != 'N' || len(ch) < 21 {
		return nil, fmt.Errorf("challenge % x", ch)
	}
	r := []byte{'r'}
	r = binary.BigEndian.AppendUint32(r, ourChallenge2)
	r = append(r, digest(binary.BigEndian.Uint32(ch[11:15]))...)
	if _, err := c.Write(frame(r)); err != nil {
		return nil, err
	}
	ack, err := readFrame(c)
	if err != nil {
		return nil, err
	}
	rec.Write(ack)
	if ack[2] != 'a' || !bytes.Equal(ack[3:], digest(ourChallenge2)) {
		return nil, errors.New("bad ack from BEAM")
	}
	return rec.Bytes(), nil
}
