package handshake

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultFlagsOTP26(t *testing.T) {
	assert.Equal(t, Flags(0x01070F94), Mandatory25)
	assert.Equal(t, Flags(0x4_0307_0F94), Mandatory26)
	assert.True(t, DefaultFlags.Has(0x4_0307_0F94), "DefaultFlags %v lacks OTP 26 mandatory flags", DefaultFlags)
	assert.True(t, DefaultFlags.Has(0x4000000), "DefaultFlags lacks MANDATORY_25_DIGEST")
	for _, f := range []Flags{FlagPublished, FlagAtomCache, FlagDistHdrAtomCache, FlagSpawn, FlagNameMe} {
		assert.False(t, DefaultFlags.Has(f), "DefaultFlags must not contain %v", f)
	}
	// The node reads header frames and reassembles fragments (ergo sends
	// header frames whatever is negotiated).
	assert.True(t, DefaultFlags.Has(FlagFragments), "DefaultFlags advertises FRAGMENTS")
	assert.True(t, DefaultFlags.Has(RequiredFlags), "we must satisfy what we demand")
	// The digest bit alone stands for all of OTP 25's mandatory flags.
	assert.True(t, FlagMandatory25Digest.expand().Has(Mandatory25))
	assert.Equal(t, FlagUTF8Atoms, FlagUTF8Atoms.expand())
	assert.Equal(t, "EXTENDED_REFERENCES|UTF8_ATOMS|0x1000000000", (FlagExtendedReferences | FlagUTF8Atoms | 1<<36).String())
	assert.Equal(t, "0", Flags(0).String())
}

// TestDigestMatchesErl checks Digest against vectors made by the real erl on
// this machine (OTP 25.2.3) with
//
//	erl -noshell -eval '[io:format("~p ~s~n", [C, binary:encode_hex(
//	    erlang:md5(Cookie ++ integer_to_list(C)))]) || C <- [...]], halt().'
func TestDigestMatchesErl(t *testing.T) {
	vectors := []struct {
		cookie    string
		challenge uint32
		md5       string
	}{
		{"cookie", 0, "E607172A1A7ADB262D2D98462463B1A9"},
		{"cookie", 1, "022B150AE5B6CBED66AE1201494BD24E"},
		{"cookie", 42, "BC4B5E3F17073012AEA742A22F5E1B6A"},
		{"cookie", 123456789, "5080AD74AF33567E1EC1FB4A512923DA"},
		{"cookie", 2147483648, "67A2760C0BFABAACB4D43CF74037D447"},
		{"cookie", 4294967295, "DE56FF9D11B071905BCE597A85D67F4F"},
		{"c", 0, "B0FCE403C178FA57404C1CC4176547A8"},
		{"c", 4294967295, "B6B9428EF079FC89EA04BB26BBF1A0DA"},
		{"", 7, "8F14E45FCEEA167A5A36DEDD4BEA2543"},
		{"QWERTYUIOPASDFGHJKLZ", 3735928559, "B9EB6C967FA35D47CBA883D8C6385451"},
	}
	for _, v := range vectors {
		d := Digest(v.cookie, v.challenge)
		assert.Equal(t, v.md5, strings.ToUpper(hex.EncodeToString(d[:])), "cookie %q challenge %d", v.cookie, v.challenge)
	}
}

func TestHandshakeSuccess(t *testing.T) {
	aFlags := DefaultFlags
	bFlags := (DefaultFlags | FlagPublished | FlagAtomCache) &^ (FlagAlias | FlagSendSender)
	want := DefaultFlags &^ (FlagAlias | FlagSendSender)
	for _, transport := range []string{"pipe", "tcp"} {
		for _, dir := range []string{"a->b", "b->a"} {
			t.Run(transport+"/"+dir, func(t *testing.T) {
				a := newCfg("a@localhost", "sesame", 0x0A0A0A0A)
				a.Flags = aFlags
				b := newCfg("b@localhost", "sesame", 0x0B0B0B0B)
				b.Flags = bFlags
				ini, acc := a, b
				if dir == "b->a" {
					ini, acc = b, a
				}
				var ic, ac net.Conn
				if transport == "pipe" {
					ic, ac = pipe(t)
				} else {
					ic, ac = tcpPair(t)
				}
				var decided Peer
				ir, ar := runPair(t, ic, ac, ini, acc, acc.Name, func(p Peer) Status { decided = p; return StatusOK })
				require.NoError(t, ir.err)
				require.NoError(t, ar.err)

				assert.Equal(t, want, ir.res.Flags, "initiator's negotiated flags: %v", ir.res.Flags)
				assert.Equal(t, want, ar.res.Flags, "acceptor's negotiated flags: %v", ar.res.Flags)

				assert.Equal(t, acc.Name, ir.res.Peer.Name)
				assert.Equal(t, acc.Creation, ir.res.Peer.Creation)
				assert.Equal(t, 6, ir.res.Peer.Version)
				assert.Equal(t, acc.Flags, ir.res.Peer.Flags)
				assert.Equal(t, ini.Name, ir.res.Name)
				assert.Equal(t, ini.Creation, ir.res.Creation)

				assert.Equal(t, ini.Name, ar.res.Peer.Name)
				assert.Equal(t, ini.Creation, ar.res.Peer.Creation)
				assert.Equal(t, 6, ar.res.Peer.Version)
				assert.Equal(t, ini.Flags, ar.res.Peer.Flags)
				assert.Equal(t, acc.Name, ar.res.Name)
				assert.Equal(t, ar.res.Peer, decided, "Decide saw the peer's name message")
			})
		}
	}
}

func TestWrongCookie(t *testing.T) {
	const c1, c2 = "first-Cookie-Value", "second-Cookie-Value"
	ic, ac := pipe(t)
	ir, ar := runPair(t, ic, ac, newCfg("a@h", c1, 1), newCfg("b@h", c2, 2), "b@h", nil)
	requireHSError(t, ar.err, ErrAuth, StepRecvChallengeReply)
	requireHSError(t, ir.err, ErrAuth, StepRecvChallengeAck)
	for _, err := range []error{ir.err, ar.err} {
		assert.NotContains(t, err.Error(), c1)
		assert.NotContains(t, err.Error(), c2)
	}
}

// An acceptor that sends a wrong ack digest is an authentication failure.
func TestWrongAckDigest(t *testing.T) {
	ic, pc := pipe(t)
	cfg := newCfg("a@h", "right-cookie", 1)
	ch := goInitiate(context.Background(), ic, cfg, "b@h")
	p := &rawPeer{t, pc}
	p.recv()
	p.send(status("ok"), challengeN(DefaultFlags, 99, 5, "b@h"))
	r := p.recv()
	require.Len(t, r, 21)
	assert.Equal(t, Digest("right-cookie", 99), [16]byte(r[5:21]))
	p.send(ack(Digest("wrong-cookie", binary.BigEndian.Uint32(r[1:5]))))
	o := wait(t, ch)
	he := requireHSError(t, o.err, ErrAuth, StepRecvChallengeAck)
	assert.Contains(t, he.Info, "digest")
	assert.NotContains(t, o.err.Error(), "right-cookie")
}

// A peer that closes without a word right after our challenge reply is how
// a BEAM acceptor rejects a cookie.
func TestClosedAfterReplyIsAuth(t *testing.T) {
	ic, pc := pipe(t)
	ch := goInitiate(context.Background(), ic, newCfg("a@h", "k", 1), "b@h")
	p := &rawPeer{t, pc}
	p.recv()
	p.send(status("ok"), challengeN(DefaultFlags, 1, 2, "b@h"))
	p.recv()
	_ = pc.Close()
	he := requireHSError(t, wait(t, ch).err, ErrAuth, StepRecvChallengeAck)
	assert.ErrorIs(t, he, io.EOF)
	assert.ErrorIs(t, he, ErrAuth)
}

func TestStatuses(t *testing.T) {
	t.Run("nok", func(t *testing.T) {
		ic, ac := pipe(t)
		ir, ar := runPair(t, ic, ac, newCfg("a@h", "k", 1), newCfg("b@h", "k", 2), "b@h",
			func(Peer) Status { return StatusNok })
		requireHSError(t, ir.err, ErrSimultaneous, StepRecvStatus)
		requireHSError(t, ar.err, ErrSimultaneous, StepSendStatus)
	})
	t.Run("not_allowed", func(t *testing.T) {
		ic, ac := pipe(t)
		ir, ar := runPair(t, ic, ac, newCfg("a@h", "k", 1), newCfg("b@h", "k", 2), "b@h",
			func(Peer) Status { return StatusNotAllowed })
		requireHSError(t, ir.err, ErrNotAllowed, StepRecvStatus)
		requireHSError(t, ar.err, ErrNotAllowed, StepSendStatus)
	})
	t.Run("ok_simultaneous", func(t *testing.T) {
		ic, ac := pipe(t)
		ir, ar := runPair(t, ic, ac, newCfg("a@h", "k", 1), newCfg("b@h", "k", 2), "b@h",
			func(Peer) Status { return StatusOKSimultaneous })
		require.NoError(t, ir.err)
		require.NoError(t, ar.err)
		assert.Equal(t, "b@h", ir.res.Peer.Name)
		assert.Equal(t, "a@h", ar.res.Peer.Name)
	})
	t.Run("alive/initiator answers true", func(t *testing.T) {
		ic, ac := pipe(t)
		ir, ar := runPair(t, ic, ac, newCfg("a@h", "k", 1), newCfg("b@h", "k", 2), "b@h",
			func(Peer) Status { return StatusAlive })
		require.NoError(t, ir.err)
		require.NoError(t, ar.err)
		assert.Equal(t, "a@h", ar.res.Peer.Name)
	})
	t.Run("alive/initiator sends true on the wire", func(t *testing.T) {
		ic, pc := pipe(t)
		ch := goInitiate(context.Background(), ic, newCfg("a@h", "k", 1), "b@h")
		p := &rawPeer{t, pc}
		p.recv()
		p.send(status("alive"))
		assert.Equal(t, "strue", string(p.recv()))
		_ = pc.Close()
		requireHSError(t, wait(t, ch).err, ErrClosed, StepRecvChallenge)
	})
	t.Run("alive/hand-written initiator answers false", func(t *testing.T) {
		ac, pc := pipe(t)
		ch := goAccept(context.Background(), ac, newCfg("b@h", "k", 2), func(Peer) Status { return StatusAlive })
		p := &rawPeer{t, pc}
		p.send(nameN(DefaultFlags, 1, "a@h"))
		assert.Equal(t, "salive", string(p.recv()))
		p.send(status("false"))
		he := requireHSError(t, wait(t, ch).err, ErrAlreadyConnected, StepSendStatus)
		assert.Equal(t, "a@h", he.Peer)
		p.expectClosed()
	})
	t.Run("alive/garbage answer", func(t *testing.T) {
		ac, pc := pipe(t)
		ch := goAccept(context.Background(), ac, newCfg("b@h", "k", 2), func(Peer) Status { return StatusAlive })
		p := &rawPeer{t, pc}
		p.send(nameN(DefaultFlags, 1, "a@h"))
		p.recv()
		p.send(status("maybe"))
		requireHSError(t, wait(t, ch).err, ErrProtocol, StepSendStatus)
	})
	t.Run("bad Decide status", func(t *testing.T) {
		ac, pc := pipe(t)
		ch := goAccept(context.Background(), ac, newCfg("b@h", "k", 2), func(Peer) Status { return "perhaps" })
		p := &rawPeer{t, pc}
		p.send(nameN(DefaultFlags, 1, "a@h"))
		requireHSError(t, wait(t, ch).err, ErrProtocol, StepSendStatus)
	})
}

func TestNameMismatch(t *testing.T) {
	ic, ac := pipe(t)
	ir, ar := runPair(t, ic, ac, newCfg("x@h", "k", 1), newCfg("b@h", "k", 2), "a@h", nil)
	he := requireHSError(t, ir.err, ErrNameMismatch, StepRecvChallenge)
	assert.Contains(t, he.Info, `"b@h"`)
	assert.Equal(t, "a@h", he.Peer)
	// The initiator hung up before its challenge reply.
	requireHSError(t, ar.err, ErrClosed, StepRecvChallengeReply)
}

func TestMissingRequiredFlags(t *testing.T) {
	lacking := DefaultFlags &^ (FlagUTF8Atoms | FlagMandatory25Digest)
	t.Run("Initiate vs Accept", func(t *testing.T) {
		ic, ac := pipe(t)
		icfg := newCfg("a@h", "k", 1)
		icfg.Flags = lacking
		ir, ar := runPair(t, ic, ac, icfg, newCfg("b@h", "k", 2), "b@h",
			func(Peer) Status { t.Error("Decide called for a peer lacking flags"); return StatusOK })
		he := requireHSError(t, ar.err, ErrNotAllowed, StepSendStatus)
		assert.Contains(t, he.Info, "UTF8_ATOMS")
		requireHSError(t, ir.err, ErrNotAllowed, StepRecvStatus)
	})
	t.Run("acceptor sends not_allowed", func(t *testing.T) {
		ac, pc := pipe(t)
		ch := goAccept(context.Background(), ac, newCfg("b@h", "k", 2), nil)
		p := &rawPeer{t, pc}
		p.send(nameN(lacking, 1, "a@h"))
		assert.Equal(t, "snot_allowed", string(p.recv()))
		requireHSError(t, wait(t, ch).err, ErrNotAllowed, StepSendStatus)
	})
	t.Run("Required overrides the default", func(t *testing.T) {
		ac, pc := pipe(t)
		acfg := newCfg("b@h", "k", 2)
		acfg.Required = FlagPublished
		ch := goAccept(context.Background(), ac, acfg, nil)
		p := &rawPeer{t, pc}
		p.send(nameN(DefaultFlags, 1, "a@h"))
		assert.Equal(t, "snot_allowed", string(p.recv()))
		he := requireHSError(t, wait(t, ch).err, ErrNotAllowed, StepSendStatus)
		assert.Contains(t, he.Info, "PUBLISHED")
	})
	t.Run("initiator refuses an acceptor lacking flags", func(t *testing.T) {
		ic, pc := pipe(t)
		ch := goInitiate(context.Background(), ic, newCfg("a@h", "k", 1), "b@h")
		p := &rawPeer{t, pc}
		p.recv()
		p.send(status("ok"), challengeN(lacking, 1, 2, "b@h"))
		he := requireHSError(t, wait(t, ch).err, ErrNotAllowed, StepRecvChallenge)
		assert.Contains(t, he.Info, "UTF8_ATOMS")
	})
}

func TestVersion5(t *testing.T) {
	low := uint32(DefaultFlags & 0xFFFFFFFF) // HANDSHAKE_23 and the digest bit included
	t.Run("with HANDSHAKE_23", func(t *testing.T) {
		ac, pc := pipe(t)
		acfg := newCfg("b@h", "k5", 0xB0B)
		ch := goAccept(context.Background(), ac, acfg, nil)
		p := &rawPeer{t, pc}
		p.send(nameV5(low, "old@h"))
		assert.Equal(t, "sok", string(p.recv()))
		c := parseChallengeN(t, p.recv())
		assert.Equal(t, DefaultFlags, c.flags)
		assert.Equal(t, uint32(0xB0B), c.creation)
		assert.Equal(t, "b@h", c.name)
		high := uint32(DefaultFlags >> 32)
		require.NotZero(t, high)
		p.send(complement(high, 0xC0FFEE), reply(0x1234, Digest("k5", c.challenge)))
		assert.Equal(t, ack(Digest("k5", 0x1234)), p.recv())
		o := wait(t, ch)
		require.NoError(t, o.err)
		assert.Equal(t, 5, o.res.Peer.Version)
		assert.Equal(t, uint32(0xC0FFEE), o.res.Peer.Creation)
		assert.Equal(t, "old@h", o.res.Peer.Name)
		assert.True(t, o.res.Peer.Flags.Has(FlagV4NC|FlagAlias), "high flags from the complement: %v", o.res.Peer.Flags)
		assert.Equal(t, DefaultFlags, o.res.Flags)
	})
	t.Run("without HANDSHAKE_23", func(t *testing.T) {
		ac, pc := pipe(t)
		ch := goAccept(context.Background(), ac, newCfg("b@h", "k5", 0xB0B), nil)
		p := &rawPeer{t, pc}
		old := uint32(Mandatory25 &^ FlagHandshake23)
		p.send(nameV5(old, "old@h"))
		assert.Equal(t, "sok", string(p.recv()))
		f := p.recv()
		require.Len(t, f, 11+len("b@h"))
		assert.Equal(t, []byte{'n', 0, 5}, f[:3])
		assert.Equal(t, uint32(DefaultFlags&0xFFFFFFFF), binary.BigEndian.Uint32(f[3:7]))
		assert.Equal(t, "b@h", string(f[11:]))
		p.send(reply(77, Digest("k5", binary.BigEndian.Uint32(f[7:11]))))
		assert.Equal(t, ack(Digest("k5", 77)), p.recv())
		o := wait(t, ch)
		require.NoError(t, o.err)
		assert.Equal(t, 5, o.res.Peer.Version)
		assert.Zero(t, o.res.Peer.Creation)
		assert.Equal(t, Flags(old), o.res.Peer.Flags)
		assert.Equal(t, Flags(old)&DefaultFlags, o.res.Flags)
	})
	t.Run("reply instead of complement", func(t *testing.T) {
		ac, pc := pipe(t)
		ch := goAccept(context.Background(), ac, newCfg("b@h", "k5", 1), nil)
		p := &rawPeer{t, pc}
		p.send(nameV5(low, "old@h"))
		p.recv()
		c := parseChallengeN(t, p.recv())
		p.send(reply(1, Digest("k5", c.challenge)))
		requireHSError(t, wait(t, ch).err, ErrProtocol, StepRecvComplement)
	})
	t.Run("unsupported version", func(t *testing.T) {
		ac, pc := pipe(t)
		ch := goAccept(context.Background(), ac, newCfg("b@h", "k", 1), nil)
		p := &rawPeer{t, pc}
		f := nameV5(low, "old@h")
		f[2] = 7
		p.send(f)
		requireHSError(t, wait(t, ch).err, ErrProtocol, StepRecvName)
	})
	t.Run("Initiate takes a version 5 challenge", func(t *testing.T) {
		ic, pc := pipe(t)
		ch := goInitiate(context.Background(), ic, newCfg("a@h", "k", 1), "b@h")
		p := &rawPeer{t, pc}
		p.recv()
		p.send(status("ok"), challengeV5(low, 5, "b@h"))
		r := p.recv()
		require.Len(t, r, 21)
		p.send(ack(Digest("k", binary.BigEndian.Uint32(r[1:5]))))
		o := wait(t, ch)
		require.NoError(t, o.err)
		assert.Equal(t, 5, o.res.Peer.Version)
		assert.Zero(t, o.res.Peer.Creation)
	})
}

func TestNameMe(t *testing.T) {
	for _, host := range []string{"somehost", "@somehost"} {
		t.Run("acceptor names "+host, func(t *testing.T) {
			ac, pc := pipe(t)
			acfg := newCfg("b@h", "nm", 3)
			ch := goAccept(context.Background(), ac, acfg, nil)
			p := &rawPeer{t, pc}
			p.send(nameN(DefaultFlags|FlagNameMe, 0, host))
			st := p.recv()
			require.True(t, strings.HasPrefix(string(st), "snamed:"), "status %q", st)
			b := st[len("snamed:"):]
			require.GreaterOrEqual(t, len(b), 2)
			n := int(binary.BigEndian.Uint16(b))
			require.Len(t, b, 2+n+4)
			name := string(b[2 : 2+n])
			creation := binary.BigEndian.Uint32(b[2+n:])
			assert.NoError(t, ValidateNodeName(name))
			assert.True(t, strings.HasSuffix(name, "@somehost"), name)
			assert.NotZero(t, creation, "named: must assign a creation")
			c := parseChallengeN(t, p.recv())
			p.send(reply(8, Digest("nm", c.challenge)))
			assert.Equal(t, ack(Digest("nm", 8)), p.recv())
			o := wait(t, ch)
			require.NoError(t, o.err)
			assert.Equal(t, name, o.res.Peer.Name)
			assert.Equal(t, creation, o.res.Peer.Creation)
		})
	}
	t.Run("bad host", func(t *testing.T) {
		ac, pc := pipe(t)
		ch := goAccept(context.Background(), ac, newCfg("b@h", "nm", 3), nil)
		p := &rawPeer{t, pc}
		p.send(nameN(DefaultFlags|FlagNameMe, 0, "x@y"))
		requireHSError(t, wait(t, ch).err, ErrProtocol, StepSendStatus)
	})
	t.Run("Initiate adopts the name", func(t *testing.T) {
		ic, pc := pipe(t)
		icfg := newCfg("myhost", "nm", 0)
		icfg.Flags = DefaultFlags | FlagNameMe
		ch := goInitiate(context.Background(), ic, icfg, "b@myhost")
		p := &rawPeer{t, pc}
		flags, _, name := parseNameN(t, p.recv())
		assert.True(t, flags.Has(FlagNameMe))
		assert.Equal(t, "myhost", name)
		p.send(namedStatus("dyn1@myhost", 0xABCD), challengeN(DefaultFlags, 31, 9, "b@myhost"))
		r := p.recv()
		require.Len(t, r, 21)
		assert.Equal(t, Digest("nm", 31), [16]byte(r[5:]))
		p.send(ack(Digest("nm", binary.BigEndian.Uint32(r[1:5]))))
		o := wait(t, ch)
		require.NoError(t, o.err)
		assert.Equal(t, "dyn1@myhost", o.res.Name)
		assert.Equal(t, uint32(0xABCD), o.res.Creation)
		assert.Equal(t, "b@myhost", o.res.Peer.Name)
	})
	t.Run("Initiate refuses ok when it asked for a name", func(t *testing.T) {
		ic, pc := pipe(t)
		icfg := newCfg("myhost", "nm", 0)
		icfg.Flags = DefaultFlags | FlagNameMe
		ch := goInitiate(context.Background(), ic, icfg, "b@myhost")
		p := &rawPeer{t, pc}
		p.recv()
		p.send(status("ok"))
		requireHSError(t, wait(t, ch).err, ErrProtocol, StepRecvStatus)
	})
	t.Run("named: without NAME_ME", func(t *testing.T) {
		ic, pc := pipe(t)
		ch := goInitiate(context.Background(), ic, newCfg("a@h", "nm", 1), "b@h")
		p := &rawPeer{t, pc}
		p.recv()
		p.send(namedStatus("x@h", 1))
		requireHSError(t, wait(t, ch).err, ErrProtocol, StepRecvStatus)
	})
	t.Run("Initiate and Accept", func(t *testing.T) {
		ic, ac := pipe(t)
		icfg := newCfg("somehost", "nm", 0)
		icfg.Flags = DefaultFlags | FlagNameMe
		ir, ar := runPair(t, ic, ac, icfg, newCfg("b@h", "nm", 2), "b@h", nil)
		require.NoError(t, ir.err)
		require.NoError(t, ar.err)
		assert.Equal(t, ar.res.Peer.Name, ir.res.Name)
		assert.Equal(t, ar.res.Peer.Creation, ir.res.Creation)
		assert.True(t, strings.HasSuffix(ir.res.Name, "@somehost"))
		assert.NotZero(t, ir.res.Creation)
	})
}

func TestConfigErrors(t *testing.T) {
	ic, _ := pipe(t)
	_, err := Initiate(context.Background(), ic, newCfg("a@h", strings.Repeat("x", MaxCookie+1), 1), "b@h")
	requireHSError(t, err, ErrConfig, StepSendName)
	ac, _ := pipe(t)
	_, err = Accept(context.Background(), ac, newCfg("noat", "k", 1), nil)
	requireHSError(t, err, ErrConfig, StepRecvName)
}

func TestValidateNodeName(t *testing.T) {
	for _, ok := range []string{"a@h", "a@127.0.0.1", "ü@höst", strings.Repeat("a", 253) + "@h"} {
		assert.NoError(t, ValidateNodeName(ok), ok)
	}
	for _, bad := range []string{"", "a", "@h", "a@", "a\n@h", "a@h\x7f", "a@\xff", strings.Repeat("a", 254) + "@h"} {
		assert.Error(t, ValidateNodeName(bad), "%q", bad)
	}
}

func TestTimeouts(t *testing.T) {
	const timeout = 300 * time.Millisecond
	t.Run("silent initiator", func(t *testing.T) {
		t.Parallel()
		_, ac := tcpPair(t)
		cfg := newCfg("b@h", "k", 1)
		cfg.Timeout = timeout
		o := wait(t, goAccept(context.Background(), ac, cfg, nil))
		requireHSError(t, o.err, ErrTimeout, StepRecvName)
		assert.ErrorIs(t, o.err, os.ErrDeadlineExceeded)
		assert.InDelta(t, timeout.Seconds(), o.dur.Seconds(), 0.25, "took %v", o.dur)
	})
	t.Run("silent acceptor", func(t *testing.T) {
		t.Parallel()
		ic, pc := tcpPair(t)
		cfg := newCfg("a@h", "k", 1)
		cfg.Timeout = timeout
		ch := goInitiate(context.Background(), ic, cfg, "b@h")
		p := &rawPeer{t, pc}
		p.recv() // reads the name, never answers
		o := wait(t, ch)
		requireHSError(t, o.err, ErrTimeout, StepRecvStatus)
		assert.ErrorIs(t, o.err, os.ErrDeadlineExceeded)
		assert.InDelta(t, timeout.Seconds(), o.dur.Seconds(), 0.25, "took %v", o.dur)
	})
	t.Run("silent peer before the ack", func(t *testing.T) {
		t.Parallel()
		ic, pc := pipe(t)
		cfg := newCfg("a@h", "k", 1)
		cfg.Timeout = timeout
		ch := goInitiate(context.Background(), ic, cfg, "b@h")
		p := &rawPeer{t, pc}
		p.recv()
		p.send(status("ok"), challengeN(DefaultFlags, 1, 1, "b@h"))
		p.recv()
		o := wait(t, ch)
		// A timeout is not mistaken for a cookie rejection.
		requireHSError(t, o.err, ErrTimeout, StepRecvChallengeAck)
		assert.ErrorIs(t, o.err, os.ErrDeadlineExceeded)
	})
	t.Run("silent peer before the reply", func(t *testing.T) {
		t.Parallel()
		ac, pc := pipe(t)
		cfg := newCfg("b@h", "k", 1)
		cfg.Timeout = timeout
		ch := goAccept(context.Background(), ac, cfg, nil)
		p := &rawPeer{t, pc}
		p.send(nameN(DefaultFlags, 1, "a@h"))
		p.recv()
		p.recv()
		requireHSError(t, wait(t, ch).err, ErrTimeout, StepRecvChallengeReply)
	})
	t.Run("context cancel", func(t *testing.T) {
		t.Parallel()
		ic, _ := tcpPair(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cfg := newCfg("a@h", "k", 1)
		cfg.Timeout = 5 * time.Second
		ch := goInitiate(ctx, ic, cfg, "b@h")
		time.Sleep(100 * time.Millisecond)
		cancel()
		start := time.Now()
		o := wait(t, ch)
		assert.Less(t, time.Since(start), 300*time.Millisecond, "not prompt")
		requireHSError(t, o.err, ErrTimeout, StepRecvStatus)
		assert.ErrorIs(t, o.err, context.Canceled)
	})
	t.Run("context already cancelled", func(t *testing.T) {
		t.Parallel()
		ac, _ := tcpPair(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		o := wait(t, goAccept(ctx, ac, newCfg("b@h", "k", 1), nil))
		require.Error(t, o.err)
		assert.ErrorIs(t, o.err, ErrTimeout)
		assert.ErrorIs(t, o.err, context.Canceled)
		assert.Less(t, o.dur, 300*time.Millisecond)
	})
	t.Run("context deadline before Timeout", func(t *testing.T) {
		t.Parallel()
		ac, _ := tcpPair(t)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		cfg := newCfg("b@h", "k", 1)
		cfg.Timeout = 5 * time.Second
		o := wait(t, goAccept(ctx, ac, cfg, nil))
		requireHSError(t, o.err, ErrTimeout, StepRecvName)
		assert.InDelta(t, 0.2, o.dur.Seconds(), 0.2, "took %v", o.dur)
	})
	t.Run("one byte per 100ms", func(t *testing.T) {
		t.Parallel()
		pc, ac := tcpPair(t)
		cfg := newCfg("b@h", "k", 1)
		cfg.Timeout = 500 * time.Millisecond
		ch := goAccept(context.Background(), ac, cfg, nil)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for _, c := range frames(nameN(DefaultFlags, 1, "slow@h")) {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if _, err := pc.Write([]byte{c}); err != nil {
					return
				}
			}
		}()
		o := wait(t, ch)
		close(stop)
		<-done
		requireHSError(t, o.err, ErrTimeout, StepRecvName)
		assert.InDelta(t, 0.5, o.dur.Seconds(), 0.3, "took %v", o.dur)
	})
}

func TestNoDeadlineAfterSuccess(t *testing.T) {
	ic, ac := pipe(t)
	icfg, acfg := newCfg("a@h", "k", 1), newCfg("b@h", "k", 2)
	icfg.Timeout, acfg.Timeout = 150*time.Millisecond, 150*time.Millisecond
	ir, ar := runPair(t, ic, ac, icfg, acfg, "b@h", nil)
	require.NoError(t, ir.err)
	require.NoError(t, ar.err)
	time.Sleep(2 * icfg.Timeout)
	for _, dir := range [][2]net.Conn{{ic, ac}, {ac, ic}} {
		w, r := dir[0], dir[1]
		errc := make(chan error, 1)
		go func() { _, err := w.Write([]byte("tick")); errc <- err }()
		buf := make([]byte, 4)
		_, err := io.ReadFull(r, buf)
		require.NoError(t, err, "read after the handshake hit a stale deadline")
		assert.Equal(t, "tick", string(buf))
		require.NoError(t, <-errc)
	}
}

// TestFrameErrorsAccept feeds malformed input to Accept.
func TestFrameErrorsAccept(t *testing.T) {
	good := frames(nameN(DefaultFlags, 1, "a@h"))
	cases := []struct {
		name  string
		input []byte
		kind  error
		step  Step
	}{
		{"oversized 0xFFFF", []byte{0xFF, 0xFF}, ErrProtocol, StepRecvName},
		{"oversized MaxFrame+1", binary.BigEndian.AppendUint16(nil, MaxFrame+1), ErrProtocol, StepRecvName},
		{"empty frame", []byte{0, 0}, ErrProtocol, StepRecvName},
		{"unknown tag", frames([]byte("x")), ErrProtocol, StepRecvName},
		{"short name message", frames([]byte{'N', 0, 0}), ErrProtocol, StepRecvName},
		{"name length mismatch", frames(append(nameN(DefaultFlags, 1, "a@h"), 'x')), ErrProtocol, StepRecvName},
		{"invalid name", frames(nameN(DefaultFlags, 1, "nohost")), ErrProtocol, StepSendStatus},
		{"short old name", frames([]byte{'n', 0, 5, 0}), ErrProtocol, StepRecvName},
		{"nothing", nil, ErrClosed, StepRecvName},
		{"truncated length", []byte{0}, ErrClosed, StepRecvName},
		{"truncated frame", good[:len(good)-1], ErrClosed, StepRecvName},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := newCfg("b@h", "k", 1)
			r := feed(c.input, true, func(conn net.Conn) (*Result, error) {
				return Accept(context.Background(), conn, cfg, nil)
			})
			requireHSError(t, r.err, c.kind, c.step)
			if c.kind == ErrClosed {
				assert.True(t, errors.Is(r.err, io.EOF) || errors.Is(r.err, io.ErrUnexpectedEOF), "%v", r.err)
			}
			assert.Less(t, r.elapsed, time.Second)
		})
	}
}

// An oversized length is refused without reading the body: the writer
// sees only the 2 length bytes consumed.
func TestOversizedNotRead(t *testing.T) {
	ac, pc := pipe(t)
	ch := goAccept(context.Background(), ac, newCfg("b@h", "k", 1), nil)
	type wr struct {
		n   int
		err error
	}
	wc := make(chan wr, 1)
	go func() {
		n, err := pc.Write(append([]byte{0xFF, 0xFF}, make([]byte, 100)...))
		wc <- wr{n, err}
	}()
	o := wait(t, ch)
	he := requireHSError(t, o.err, ErrProtocol, StepRecvName)
	assert.Contains(t, he.Info, "65535")
	w := <-wc // Accept closed its end
	assert.Equal(t, 2, w.n)
	assert.Error(t, w.err)
}

// TestFrameErrorsAfterName checks errors at later acceptor steps.
func TestFrameErrorsAfterName(t *testing.T) {
	cases := []struct {
		name string
		next []byte // raw bytes after the name message
		kind error
		step Step
	}{
		{"unknown reply tag", frames([]byte("x")), ErrProtocol, StepRecvChallengeReply},
		{"short reply", frames([]byte{'r', 0, 0, 0, 1}), ErrProtocol, StepRecvChallengeReply},
		{"oversized reply", []byte{0xFF, 0xFF}, ErrProtocol, StepRecvChallengeReply},
		{"empty reply", []byte{0, 0}, ErrProtocol, StepRecvChallengeReply},
		{"truncated reply", frames(reply(1, [16]byte{}))[:10], ErrClosed, StepRecvChallengeReply},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ac, pc := pipe(t)
			ch := goAccept(context.Background(), ac, newCfg("b@h", "k", 1), nil)
			p := &rawPeer{t, pc}
			p.send(nameN(DefaultFlags, 1, "a@h"))
			p.recv()
			p.recv()
			_, _ = pc.Write(c.next)
			_ = pc.Close()
			requireHSError(t, wait(t, ch).err, c.kind, c.step)
		})
	}
}

// TestFrameErrorsInitiate feeds malformed acceptor replies to Initiate.
func TestFrameErrorsInitiate(t *testing.T) {
	ok := frames(status("ok"))
	chal := frames(challengeN(DefaultFlags, 1, 2, "b@h"))
	cases := []struct {
		name  string
		input []byte
		kind  error
		step  Step
	}{
		{"nothing", nil, ErrClosed, StepRecvStatus},
		{"oversized status", []byte{0xFF, 0xFF}, ErrProtocol, StepRecvStatus},
		{"empty status", []byte{0, 0}, ErrProtocol, StepRecvStatus},
		{"status tag", frames([]byte("xok")), ErrProtocol, StepRecvStatus},
		{"unknown status", frames(status("fine")), ErrProtocol, StepRecvStatus},
		{"truncated status", ok[:3], ErrClosed, StepRecvStatus},
		{"challenge tag", append(ok, frames([]byte("x"))...), ErrProtocol, StepRecvChallenge},
		{"short challenge", append(ok, frames([]byte{'N', 0, 0, 0})...), ErrProtocol, StepRecvChallenge},
		{"short challenge name", append(ok, frames(challengeN(DefaultFlags, 1, 2, "b@h")[:20])...), ErrProtocol, StepRecvChallenge},
		{"short old challenge", append(ok, frames([]byte{'n', 0, 5, 0})...), ErrProtocol, StepRecvChallenge},
		{"oversized challenge", append(ok, 0xFF, 0xFF), ErrProtocol, StepRecvChallenge},
		{"truncated challenge", append(ok, chal[:10]...), ErrClosed, StepRecvChallenge},
		{"ack tag", append(append(ok, chal...), frames([]byte("x"))...), ErrProtocol, StepRecvChallengeAck},
		{"short ack", append(append(ok, chal...), frames([]byte("a123"))...), ErrProtocol, StepRecvChallengeAck},
		{"oversized ack", append(append(ok, chal...), 0xFF, 0xFF), ErrProtocol, StepRecvChallengeAck},
		{"truncated ack", append(append(ok, chal...), frames(ack([16]byte{}))[:8]...), ErrClosed, StepRecvChallengeAck},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := newCfg("a@h", "k", 1)
			r := feed(c.input, true, func(conn net.Conn) (*Result, error) {
				return Initiate(context.Background(), conn, cfg, "b@h")
			})
			requireHSError(t, r.err, c.kind, c.step)
			assert.Less(t, r.elapsed, time.Second)
		})
	}
}

func readCapture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return b
}

// TestReplayOTP25Initiator replays what a real OTP 25 initiator sent
// (testdata/README.md) into Accept, with the challenge the capture used.
func TestReplayOTP25Initiator(t *testing.T) {
	in := readCapture(t, "otp_initiator.bin")
	fr := splitFrames(in)
	require.Len(t, fr, 2)
	cfg := &Config{Name: "gocap@127.0.0.1", Cookie: "c", Creation: 0x11223344, Timeout: 3 * time.Second,
		Rand: fixedRand(0x01020304)}
	r := feed(in, false, func(conn net.Conn) (*Result, error) {
		return Accept(context.Background(), conn, cfg, nil)
	})
	require.NoError(t, r.err)
	assert.Equal(t, "capa@127.0.0.1", r.res.Peer.Name)
	assert.Equal(t, 6, r.res.Peer.Version)
	assert.Equal(t, binary.BigEndian.Uint32(fr[0][9:13]), r.res.Peer.Creation)
	assert.True(t, r.res.Peer.Flags.Has(Mandatory26), "OTP 25 flags %v", r.res.Peer.Flags)
	out := splitFrames(r.written)
	require.Len(t, out, 3)
	assert.Equal(t, "sok", string(out[0]))
	assert.Equal(t, ack(Digest("c", binary.BigEndian.Uint32(fr[1][1:5]))), out[2])
}

// TestReplayOTP25Acceptor replays what a real OTP 25 acceptor sent into
// Initiate, with the challenge the capture used.
func TestReplayOTP25Acceptor(t *testing.T) {
	in := readCapture(t, "otp_acceptor.bin")
	require.Len(t, splitFrames(in), 3)
	cfg := &Config{Name: "gocap@127.0.0.1", Cookie: "c", Creation: 0x11223344, Timeout: 3 * time.Second,
		Rand: fixedRand(0x05060708)}
	r := feed(in, false, func(conn net.Conn) (*Result, error) {
		return Initiate(context.Background(), conn, cfg, "capb@127.0.0.1")
	})
	require.NoError(t, r.err)
	assert.Equal(t, "capb@127.0.0.1", r.res.Peer.Name)
	assert.Equal(t, 6, r.res.Peer.Version)
	assert.NotZero(t, r.res.Peer.Creation)
	assert.Equal(t, DefaultFlags&r.res.Peer.Flags, r.res.Flags)
	out := splitFrames(r.written)
	require.Len(t, out, 2)
	_, creation, name := parseNameN(t, out[0])
	assert.Equal(t, uint32(0x11223344), creation)
	assert.Equal(t, "gocap@127.0.0.1", name)
	// Same wrong-cookie replay: BEAM's ack no longer matches.
	cfg.Cookie, cfg.Rand = "d", fixedRand(0x05060708)
	r = feed(in, false, func(conn net.Conn) (*Result, error) {
		return Initiate(context.Background(), conn, cfg, "capb@127.0.0.1")
	})
	requireHSError(t, r.err, ErrAuth, StepRecvChallengeAck)
}
