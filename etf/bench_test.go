package etf_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/distribute-go/distribute/etf"
)

var (
	benchPid = etf.Pid{Node: "go@host", ID: 77, Serial: 0, Creation: 0x5EED5EED}
	benchRef = etf.Ref{Node: "go@host", Creation: 0x5EED5EED, Len: 3, ID: [5]uint32{1, 2, 3}}
)

// isAuthCall is REG_SEND {6, From, ”, net_kernel} and {'$gen_call', {From, Ref}, {is_auth, 'go@host'}}.
func isAuthCall() (ctrl, msg etf.Term) {
	ctrl = etf.Tuple{6, benchPid, etf.Atom(""), etf.Atom("net_kernel")}
	msg = etf.Tuple{etf.Atom("$gen_call"), etf.Tuple{benchPid, benchRef},
		etf.Tuple{etf.Atom("is_auth"), etf.Atom("go@host")}}
	return ctrl, msg
}

func BenchmarkEncodeIsAuthCall(b *testing.B) {
	ctrl, msg := isAuthCall()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = etf.Append(buf[:0], ctrl)
		buf, _ = etf.Append(buf, msg)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeIsAuthReply(b *testing.B) {
	// SEND {2, '', Pid} followed by {Ref, yes}, as net_kernel answers our is_auth call.
	frame, err := etf.Append(nil, etf.Tuple{2, etf.Atom(""), benchPid})
	require.NoError(b, err)
	frame, err = etf.Append(frame, etf.Tuple{benchRef, etf.Atom("yes")})
	require.NoError(b, err)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		ctrl, n, err := etf.Decode(frame)
		if err != nil {
			b.Fatal(err)
		}
		msg, _, err := etf.Decode(frame[n:])
		if err != nil {
			b.Fatal(err)
		}
		if ctrl.(etf.Tuple)[2].(etf.Pid) != benchPid || msg.(etf.Tuple)[0].(etf.Ref) != benchRef {
			b.Fatal("wrong reply")
		}
	}
}

func BenchmarkDecodeIsAuthCall(b *testing.B) {
	ctrl, msg := isAuthCall()
	frame, err := etf.Append(nil, ctrl)
	require.NoError(b, err)
	frame, err = etf.Append(frame, msg)
	require.NoError(b, err)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		_, n, err := etf.Decode(frame)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err = etf.Decode(frame[n:]); err != nil {
			b.Fatal(err)
		}
	}
}
