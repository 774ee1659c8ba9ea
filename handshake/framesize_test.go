package handshake

import (
	"context"
	"encoding/binary"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFrameSize4 runs a whole handshake with 4-byte length prefixes, as
// inet_tls_dist does inside TLS, and checks the bytes on the wire.
func TestFrameSize4(t *testing.T) {
	ic, ac := tcpPair(t)
	icfg, acfg := newCfg("a@h", "c", 1), newCfg("b@h", "c", 2)
	icfg.FrameSize, acfg.FrameSize = 4, 4
	ini, acc := runPair(t, ic, ac, icfg, acfg, "b@h", nil)
	require.NoError(t, ini.err)
	require.NoError(t, acc.err)
	assert.Equal(t, "b@h", ini.res.Peer.Name)
	assert.Equal(t, "a@h", acc.res.Peer.Name)
}

// TestFrameSize4Wire checks the initiator's first frame byte by byte: a
// 4-byte big-endian length, then 'N'.
func TestFrameSize4Wire(t *testing.T) {
	ic, ac := tcpPair(t)
	cfg := newCfg("a@h", "c", 1)
	cfg.FrameSize = 4
	ch := goInitiate(context.Background(), ic, cfg, "b@h")
	_ = ac.SetReadDeadline(time.Now().Add(waitLimit))
	var hdr [5]byte
	_, err := io.ReadFull(ac, hdr[:])
	require.NoError(t, err)
	n := binary.BigEndian.Uint32(hdr[:4])
	assert.Equal(t, uint32(1+8+4+2+len("a@h")), n)
	assert.Equal(t, byte('N'), hdr[4])
	_ = ac.Close()
	requireHSError(t, wait(t, ch).err, ErrClosed, StepRecvStatus)
}

// TestFrameSize4Oversized: a 4-byte length beyond MaxFrame is refused
// without reading the body.
func TestFrameSize4Oversized(t *testing.T) {
	ic, ac := tcpPair(t)
	cfg := newCfg("b@h", "c", 1)
	cfg.FrameSize = 4
	ch := goAccept(context.Background(), ac, cfg, nil)
	_, err := ic.Write([]byte{0x7f, 0, 0, 0, 'N'})
	require.NoError(t, err)
	requireHSError(t, wait(t, ch).err, ErrProtocol, StepRecvName)
}

func TestFrameSizeInvalid(t *testing.T) {
	ic, _ := pipe(t)
	cfg := newCfg("a@h", "c", 1)
	cfg.FrameSize = 3
	_, err := Initiate(context.Background(), ic, cfg, "b@h")
	requireHSError(t, err, ErrConfig, StepSendName)
}

// TestAcceptTLSRecord: a plain acceptor that gets a TLS ClientHello record
// answers the plain status not_allowed at once and reports ErrPeerTLS.
func TestAcceptTLSRecord(t *testing.T) {
	ic, ac := tcpPair(t)
	ch := goAccept(context.Background(), ac, newCfg("b@h", "c", 1), nil)
	_, err := ic.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01})
	require.NoError(t, err)
	o := wait(t, ch)
	requireHSError(t, o.err, ErrPeerTLS, StepRecvName)
	assert.Contains(t, o.err.Error(), "TLS distribution")
	p := rawPeer{t: t, conn: ic}
	assert.Equal(t, status("not_allowed"), p.recv())
	p.expectClosed()
}

// TestInitiateTLSAlert: a plain initiator answered with a TLS alert (what a
// BEAM TLS listener sends to a plain name message: 15 03 03 00 02 02 0a,
// fatal unexpected_message) reports ErrPeerTLS at once.
func TestInitiateTLSAlert(t *testing.T) {
	ic, ac := tcpPair(t)
	ch := goInitiate(context.Background(), ic, newCfg("a@h", "c", 1), "b@h")
	p := rawPeer{t: t, conn: ac}
	p.recv()
	_, err := ac.Write([]byte{0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x0a})
	require.NoError(t, err)
	o := wait(t, ch)
	requireHSError(t, o.err, ErrPeerTLS, StepRecvStatus)
	assert.Less(t, o.dur, time.Second)
}

// TestIsTLSRecord: IsTLSRecord is exact about its bytes.
func TestIsTLSRecord(t *testing.T) {
	for _, b := range [][]byte{{0x16, 0x03}, {0x15, 0x03, 0x03}, {0x14, 0x03}, {0x17, 0x03}} {
		assert.True(t, IsTLSRecord(b), "% x", b)
	}
	for _, b := range [][]byte{{0x16}, {0x16, 0x02}, {0x00, 0x10}, {0x18, 0x03}, {0x13, 0x03}} {
		assert.False(t, IsTLSRecord(b), "% x", b)
	}
}
