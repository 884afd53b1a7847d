package shadowsocks

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

// session runs one exchange in memory: the client asks for example.com:443 and sends up,
// the server answers with the down pieces, one Write each. It returns the client conn,
// not yet fed, its memConn, and the wire bytes of both directions.
type session struct {
	client   *conn
	raw      *memConn
	request  []byte
	response []byte
}

func newSession(t testing.TB, ciph *Cipher, up []byte, down ...[]byte) *session {
	t.Helper()
	cl := NewClient("t", "unused:1", ciph, nil)
	raw := newMemConn(nil)
	cc, err := cl.wrap(raw, addrBytes(t, "example.com:443"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Write(up); err != nil {
		t.Fatal(err)
	}
	request := raw.written()
	srvRaw := newMemConn(request)
	req, err := NewServer(ciph, ServerOptions{Logger: quiet}).Handshake(context.Background(), srvRaw)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	got, err := io.ReadAll(req.Conn)
	if err != nil || !bytes.Equal(got, up) {
		t.Fatalf("server read %d bytes (%v), want %d", len(got), err, len(up))
	}
	for _, d := range down {
		if _, err := req.Conn.Write(d); err != nil {
			t.Fatal(err)
		}
	}
	req.Conn.Close()
	t.Cleanup(func() { cc.Close() })
	return &session{client: cc, raw: raw, request: request, response: srvRaw.written()}
}

// feed makes the client read the response through wrap.
func (s *session) feed(wrap func(io.Reader) io.Reader) *conn {
	s.raw.in = wrap(bytes.NewReader(s.response))
	return s.client
}

var downPieces = [][]byte{pattern(1, 1), pattern(40000, 2), pattern(7, 3)}

func joined(pieces [][]byte) []byte { return bytes.Join(pieces, nil) }

// readAllRetrying reads to EOF, retrying after iotest.ErrTimeout as a caller would after
// a read deadline: the decoders must resume where they stopped.
func readAllRetrying(r io.Reader) ([]byte, error) {
	var out []byte
	buf := make([]byte, 777)
	for {
		n, err := r.Read(buf)
		out = append(out, buf[:n]...)
		switch {
		case err == io.EOF:
			return out, nil
		case errors.Is(err, iotest.ErrTimeout):
		case err != nil:
			return out, err
		}
	}
}

// TestResponseDecoders drives every client-side decoder through readers that return one
// byte, half the request, data with EOF, and a timeout in the middle of a record.
func TestResponseDecoders(t *testing.T) {
	identity := func(r io.Reader) io.Reader { return r }
	readers := map[string]func(io.Reader) io.Reader{
		"whole":   identity,
		"onebyte": iotest.OneByteReader,
		"half":    iotest.HalfReader,
		"dataerr": iotest.DataErrReader,
		"timeout": func(r io.Reader) io.Reader { return iotest.TimeoutReader(iotest.OneByteReader(r)) },
	}
	want := joined(downPieces)
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		for name, wrap := range readers {
			c := newSession(t, ciph, []byte("hello"), downPieces...).feed(wrap)
			got, err := readAllRetrying(c)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: got %d bytes (sha256 %x), err %v; want %d bytes", name, len(got), sum(got), err, len(want))
			}
		}
		// WriteTo is the relay's path.
		c := newSession(t, ciph, []byte("hello"), downPieces...).feed(iotest.HalfReader)
		var buf bytes.Buffer
		if n, err := c.WriteTo(&buf); err != nil || n != int64(len(want)) || !bytes.Equal(buf.Bytes(), want) {
			t.Errorf("WriteTo: %d bytes, %v", n, err)
		}
		// iotest.TestReader checks Read's contract with many buffer sizes.
		c = newSession(t, ciph, []byte("hello"), downPieces...).feed(identity)
		if err := iotest.TestReader(c, want); err != nil {
			t.Errorf("TestReader: %v", err)
		}
	})
}

// TestRequestDecoders feeds the server the request through small reads.
func TestRequestDecoders(t *testing.T) {
	up := joined(downPieces)
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		s := newSession(t, ciph, up)
		for name, wrap := range map[string]func(io.Reader) io.Reader{"onebyte": iotest.OneByteReader, "half": iotest.HalfReader} {
			raw := newMemConn(nil)
			raw.in = wrap(bytes.NewReader(s.request))
			req, err := NewServer(ciph, ServerOptions{Logger: quiet}).Handshake(context.Background(), raw)
			if ciph.family == family2022 && name == "onebyte" {
				// SIP022 3.1.3: the salt and fixed header must come in one read.
				if !errors.Is(err, ErrHeader) {
					t.Errorf("%s: err = %v, want ErrHeader", name, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s: handshake: %v", name, err)
				continue
			}
			got, err := readAllRetrying(req.Conn)
			req.Conn.Close()
			if err != nil || !bytes.Equal(got, up) {
				t.Errorf("%s: got %d bytes, %v", name, len(got), err)
			}
		}
	})
}

// flipPositions picks the bytes to tamper with: every byte of the first 128 (salt,
// headers, first length chunk) and a sample of the rest, always including the last.
func flipPositions(n int, rng *rand.Rand) []int {
	var ps []int
	for i := 0; i < n && i < 128; i++ {
		ps = append(ps, i)
	}
	for range 64 {
		if n > 128 {
			ps = append(ps, 128+rng.IntN(n-128))
		}
	}
	return append(ps, n-1)
}

// TestTamper flips one bit at a time in authenticated streams: every flip must end in an
// error, before or after the handshake, in both directions, and never in altered bytes.
func TestTamper(t *testing.T) {
	up := pattern(20000, 9)
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		if ciph.Insecure() {
			t.Skip("stream ciphers and none authenticate nothing")
		}
		rng := rand.New(rand.NewPCG(1, 2))
		s := newSession(t, ciph, up, downPieces...)
		for _, p := range flipPositions(len(s.request), rng) {
			bad := bytes.Clone(s.request)
			bad[p] ^= 1 << (p % 8)
			_, got, err := serve(NewServer(ciph, ServerOptions{Logger: quiet}), bad)
			if err == nil {
				t.Fatalf("request bit flip at %d: no error", p)
			}
			if !bytes.HasPrefix(up, got) {
				t.Fatalf("request bit flip at %d: server read altered bytes", p)
			}
		}
		want := joined(downPieces)
		for _, p := range flipPositions(len(s.response), rng) {
			s2 := newSession(t, ciph, up, downPieces...)
			s2.response[p] ^= 1 << (p % 8)
			got, err := io.ReadAll(s2.feed(func(r io.Reader) io.Reader { return r }))
			if err == nil {
				t.Fatalf("response bit flip at %d: no error", p)
			}
			if !bytes.HasPrefix(want, got) {
				t.Fatalf("response bit flip at %d: client read altered bytes", p)
			}
		}
	})
}

// responseBoundaries returns, for each offset in a response to pieces where a record
// ends, how many payload bytes precede it.
func responseBoundaries(ciph *Cipher, pieces [][]byte) map[int]int {
	b := map[int]int{0: 0}
	off, plain := ciph.saltLen, 0
	first := true
	for _, p := range pieces {
		for len(p) > 0 {
			n := min(len(p), maxPayload)
			if first && ciph.family == family2022 {
				off += responseHeaderLen(ciph.saltLen) + tagLen
			} else {
				off += 2 + tagLen
			}
			first = false
			off += n + tagLen
			plain += n
			p = p[n:]
			b[off] = plain
		}
	}
	return b
}

// TestTruncated cuts the response at many points. Authenticated methods must end cleanly
// exactly at record boundaries, having read every whole record, and report
// io.ErrUnexpectedEOF anywhere else; stream methods deliver every byte that arrived.
func TestTruncated(t *testing.T) {
	want := joined(downPieces)
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		s := newSession(t, ciph, []byte("x"), downPieces...)
		bounds := responseBoundaries(ciph, downPieces)
		for cut := range len(s.response) {
			_, atBound := bounds[cut]
			if cut > 200 && cut%97 != 0 && !atBound {
				continue
			}
			s2 := newSession(t, ciph, []byte("x"), downPieces...)
			s2.response = s2.response[:cut]
			got, err := io.ReadAll(s2.feed(func(r io.Reader) io.Reader { return r }))
			if !bytes.HasPrefix(want, got) || len(got) == len(want) {
				t.Fatalf("cut at %d: read %d bytes that are not a strict prefix", cut, len(got))
			}
			switch {
			case ciph.Insecure():
				if wantLen := max(0, cut-ciph.saltLen); err != nil && cut >= ciph.saltLen || len(got) != wantLen {
					t.Fatalf("cut at %d: got %d bytes, %v; want %d bytes", cut, len(got), err, wantLen)
				}
			case atBound:
				if err != nil || len(got) != bounds[cut] {
					t.Fatalf("cut at record boundary %d: got %d bytes, %v; want %d bytes, no error", cut, len(got), err, bounds[cut])
				}
			default:
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("cut at %d: err = %v, want io.ErrUnexpectedEOF", cut, err)
				}
			}
		}
	})
}

// TestStreamCipherMalleable documents why stream methods report Insecure: a flipped
// ciphertext bit flips the same plaintext bit (CTR) and nothing notices.
func TestStreamCipherMalleable(t *testing.T) {
	ciph := mustCipher(t, "aes-128-ctr")
	s := newSession(t, ciph, []byte("x"), []byte("pay 100 to alice"))
	s.response[len(s.response)-1] ^= 'e' ^ 'x'
	got, err := io.ReadAll(s.feed(func(r io.Reader) io.Reader { return r }))
	if err != nil || string(got) != "pay 100 to alicx" {
		t.Fatalf("got %q, %v", got, err)
	}
}
