package etf_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"flag"
	"fmt"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/distribute-go/distribute/etf"
	"github.com/distribute-go/distribute/internal/erltest"
)

var update = flag.Bool("update", false, "regenerate testdata/otp25_vectors.tsv with the installed erl")

const vectorsFile = "testdata/otp25_vectors.tsv"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// vector is one line of the golden file: the canonical OTP 25 encoding (term_to_binary with
// minor_version 2) and other encodings BEAM reads as the same term.
type vector struct {
	Name  string
	Canon []byte
	Alts  [][]byte
}

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	data, err := os.ReadFile(vectorsFile)
	require.NoError(tb, err)
	var vs []vector
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		require.GreaterOrEqual(tb, len(fields), 2, "line %q", sc.Text())
		v := vector{Name: fields[0]}
		for k, f := range fields[1:] {
			b, err := hex.DecodeString(f)
			require.NoError(tb, err, "vector %s", v.Name)
			if k == 0 {
				v.Canon = b
			} else {
				v.Alts = append(v.Alts, b)
			}
		}
		vs = append(vs, v)
	}
	require.NoError(tb, sc.Err())
	require.NotEmpty(tb, vs)
	return vs
}

func vectorByName(tb testing.TB, name string) []byte {
	tb.Helper()
	for _, v := range loadVectors(tb) {
		if v.Name == name {
			return v.Canon
		}
	}
	tb.Fatalf("no vector %q", name)
	return nil
}

// runEscript runs the escript at path (which rt must be able to read: a file from rt.TempDir, or any
// file for the host) in runtime rt with a deadline; the process group is killed when the deadline passes.
func runEscript(t *testing.T, rt *erltest.Runtime, env []string, path string, args ...string) []byte {
	t.Helper()
	rt.RequireProgram(t, "escript")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := rt.Command(ctx, "escript", append([]string{path}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "escript %v: %s", args, stderr.String())
	return out
}

// render prints t the way testdata/erl_decode.escript prints the term BEAM decoded (~w of its SHOW form).
func render(t etf.Term) string {
	var sb strings.Builder
	renderTo(&sb, t)
	return sb.String()
}

func renderBin(sb *strings.Builder, b []byte) {
	sb.WriteString("<<")
	for i, c := range b {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprint(sb, c)
	}
	sb.WriteString(">>")
}

func renderList(sb *strings.Builder, elems []etf.Term) {
	sb.WriteByte('[')
	for i, e := range elems {
		if i > 0 {
			sb.WriteByte(',')
		}
		renderTo(sb, e)
	}
	sb.WriteByte(']')
}

func renderTo(sb *strings.Builder, t etf.Term) {
	switch v := t.(type) {
	case nil:
		sb.WriteString("{list,[]}")
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		fmt.Fprint(sb, v)
	case *big.Int:
		sb.WriteString(v.String())
	case float64:
		sb.WriteString("{float,")
		renderBin(sb, binaryBE(math.Float64bits(v)))
		sb.WriteByte('}')
	case float32:
		renderTo(sb, float64(v))
	case etf.Atom:
		sb.WriteString("{atom,")
		renderBin(sb, []byte(v))
		sb.WriteByte('}')
	case bool:
		renderTo(sb, etf.Atom(fmt.Sprint(v)))
	case []byte:
		sb.WriteString("{bin,")
		renderBin(sb, v)
		sb.WriteByte('}')
	case string:
		renderTo(sb, []byte(v))
	case etf.BitBinary:
		if len(v.Bytes) == 0 || v.Bits == 8 {
			renderTo(sb, v.Bytes)
			return
		}
		b := append([]byte(nil), v.Bytes...)
		b[len(b)-1] &= byte(0xFF << (8 - v.Bits))
		sb.WriteString("{bits,")
		renderBin(sb, b)
		fmt.Fprintf(sb, ",%d}", v.Bits)
	case etf.Tuple:
		sb.WriteString("{tuple,")
		renderList(sb, v)
		sb.WriteByte('}')
	case etf.List:
		sb.WriteString("{list,")
		renderList(sb, v)
		sb.WriteByte('}')
	case etf.String:
		elems := make([]etf.Term, len(v))
		for i := range elems {
			elems[i] = int(v[i])
		}
		renderTo(sb, etf.List(elems))
	case etf.ImproperList:
		if len(v.Elems) == 0 {
			renderTo(sb, v.Tail)
			return
		}
		sb.WriteString("{improper,")
		renderList(sb, v.Elems)
		sb.WriteByte(',')
		renderTo(sb, v.Tail)
		sb.WriteByte('}')
	case etf.Map:
		sb.WriteString("{map,[")
		for i, e := range v {
			if i > 0 {
				sb.WriteByte(',')
			}
			sb.WriteByte('{')
			renderTo(sb, e.Key)
			sb.WriteByte(',')
			renderTo(sb, e.Value)
			sb.WriteByte('}')
		}
		sb.WriteString("]}")
	case etf.Pid:
		sb.WriteString("{pid,")
		renderBin(sb, []byte(v.Node))
		fmt.Fprintf(sb, ",%d,%d,%d}", v.ID, v.Serial, v.Creation)
	case etf.Port:
		sb.WriteString("{port,")
		renderBin(sb, []byte(v.Node))
		fmt.Fprintf(sb, ",%d,%d}", v.ID, v.Creation)
	case etf.Ref:
		sb.WriteString("{ref,")
		renderBin(sb, []byte(v.Node))
		fmt.Fprintf(sb, ",%d,[", v.Creation)
		for i, w := range v.ID[:v.Len] {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprint(sb, w)
		}
		sb.WriteString("]}")
	case etf.Export:
		sb.WriteString("{export,")
		renderBin(sb, []byte(v.Module))
		sb.WriteByte(',')
		renderBin(sb, []byte(v.Function))
		fmt.Fprintf(sb, ",%d}", v.Arity)
	case etf.Fun:
		sb.WriteString("{localfun,")
		renderBin(sb, append([]byte{etf.VersionTag}, v.Raw...))
		sb.WriteByte('}')
	default:
		panic(fmt.Sprintf("render: unexpected %T", t))
	}
}

func binaryBE(u uint64) []byte {
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = byte(u)
		u >>= 8
	}
	return b
}

// regenerateVectors runs testdata/gen_vectors.escript with the host's OTP on a named, EPMD-less node and rewrites the golden file.
func regenerateVectors(t *testing.T) {
	name := fmt.Sprintf("etfgen%d@127.0.0.1", os.Getpid())
	flags := fmt.Sprintf("ERL_FLAGS=-name %s -setcookie etfgen -start_epmd false -erl_epmd_port %d", name, erltest.FreePort(t))
	out := runEscript(t, erltest.Host(), []string{flags}, filepath.Join("testdata", "gen_vectors.escript"))
	require.NotEmpty(t, out)
	require.NoError(t, os.WriteFile(vectorsFile, out, 0o644))
}
