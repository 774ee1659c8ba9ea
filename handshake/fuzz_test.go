package handshake

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// fuzzTimeout bounds each fuzzed handshake. The feeding side closes its end
// once its input is consumed, so a handshake should never need it; reaching
// it means the package waited for something that cannot come.
const fuzzTimeout = 2 * time.Second

func fuzzDecide(sel byte) Decide {
	statuses := []Status{StatusOK, StatusOKSimultaneous, StatusNok, StatusNotAllowed, StatusAlive, "bogus"}
	st := statuses[int(sel)%len(statuses)]
	return func(Peer) Status { return st }
}

func addCapture(f *testing.F, name string, sel byte) {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		f.Fatalf("seed %s: %v", name, err)
	}
	f.Add(b, sel)
}

// FuzzAccept feeds arbitrary bytes as the initiator's side of the
// connection to Accept over net.Pipe: no panic, no hang, an outcome that
// obeys the package's error contract. sel picks Decide's answer.
func FuzzAccept(f *testing.F) {
	addCapture(f, "otp_initiator.bin", 0) // a real OTP 25 initiator: succeeds
	addCapture(f, "otp_initiator.bin", 4) // the same, answered with alive
	name := nameN(DefaultFlags, 1, "a@h")
	low := uint32(DefaultFlags & 0xFFFFFFFF)
	f.Add(frames(name), byte(0))
	f.Add(frames(name, status("true"), reply(1, Digest("c", 0x01020304))), byte(4))
	f.Add(frames(name, status("false")), byte(4))
	f.Add(frames(nameV5(low, "old@h"), complement(uint32(DefaultFlags>>32), 9), reply(1, Digest("c", 0x01020304))), byte(0))
	f.Add(frames(nameV5(uint32(Mandatory25&^FlagHandshake23), "old@h"), reply(1, Digest("c", 0x01020304))), byte(1))
	f.Add(frames(nameN(DefaultFlags|FlagNameMe, 0, "host")), byte(0))
	f.Add(frames(nameN(DefaultFlags&^FlagUTF8Atoms&^FlagMandatory25Digest, 1, "a@h")), byte(0))
	f.Add([]byte{0xFF, 0xFF}, byte(0))
	f.Add([]byte{0, 0}, byte(2))
	f.Add([]byte{}, byte(3))
	f.Fuzz(func(t *testing.T, data []byte, sel byte) {
		cfg := &Config{Name: "gocap@127.0.0.1", Cookie: "c", Creation: 0x11223344,
			Timeout: fuzzTimeout, Rand: fixedRand(0x01020304)}
		r := feed(data, true, func(conn net.Conn) (*Result, error) {
			return Accept(context.Background(), conn, cfg, fuzzDecide(sel))
		})
		checkInvariants(t, r.res, r.err)
		assert.Less(t, r.elapsed, fuzzTimeout, "Accept waited for input that cannot come")
	})
}

// FuzzInitiate feeds arbitrary bytes as the acceptor's replies to Initiate
// over net.Pipe. The low bit of sel asks for a dynamic name (NAME_ME).
func FuzzInitiate(f *testing.F) {
	addCapture(f, "otp_acceptor.bin", 0) // a real OTP 25 acceptor: succeeds
	ch := challengeN(DefaultFlags, 7, 2, "capb@127.0.0.1")
	f.Add(frames(status("ok"), ch, ack(Digest("c", 0x05060708))), byte(0))
	f.Add(frames(status("alive"), ch, ack(Digest("c", 0x05060708))), byte(0))
	f.Add(frames(status("ok_simultaneous"), ch), byte(0))
	f.Add(frames(status("nok")), byte(0))
	f.Add(frames(status("not_allowed")), byte(0))
	f.Add(frames(namedStatus("dyn@127.0.0.1", 5), ch, ack(Digest("c", 0x05060708))), byte(1))
	f.Add(frames(status("ok"), challengeV5(uint32(DefaultFlags&0xFFFFFFFF), 7, "capb@127.0.0.1")), byte(0))
	f.Add(frames(status("ok"), challengeN(DefaultFlags, 7, 2, "other@h")), byte(0))
	f.Add([]byte{0xFF, 0xFF}, byte(0))
	f.Add([]byte{0, 0}, byte(0))
	f.Fuzz(func(t *testing.T, data []byte, sel byte) {
		cfg := &Config{Name: "gocap@127.0.0.1", Cookie: "c", Creation: 0x11223344,
			Timeout: fuzzTimeout, Rand: fixedRand(0x05060708)}
		if sel&1 != 0 {
			cfg.Name, cfg.Flags = "127.0.0.1", DefaultFlags|FlagNameMe
		}
		r := feed(data, true, func(conn net.Conn) (*Result, error) {
			return Initiate(context.Background(), conn, cfg, "capb@127.0.0.1")
		})
		checkInvariants(t, r.res, r.err)
		if r.err == nil {
			assert.Equal(t, "capb@127.0.0.1", r.res.Peer.Name)
		}
		assert.Less(t, r.elapsed, fuzzTimeout, "Initiate waited for input that cannot come")
	})
}
