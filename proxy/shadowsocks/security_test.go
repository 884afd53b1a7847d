package shadowsocks

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/test/harness"
)

// TestReplayRefused: the same request twice to one server; the second is refused.
// "none" has nothing to check a replay against.
func TestReplayRefused(t *testing.T) {
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		if ciph.family == familyNone {
			t.Skip("no salt or IV to remember")
		}
		s := newSession(t, ciph, []byte("GET / HTTP/1.0\r\n\r\n"))
		srv := NewServer(ciph, ServerOptions{Logger: quiet})
		if _, _, err := serve(srv, s.request); err != nil {
			t.Fatalf("first: %v", err)
		}
		if _, _, err := serve(srv, s.request); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay: err = %v, want ErrReplay", err)
		}
		// Another server has its own memory.
		if _, _, err := serve(NewServer(ciph, ServerOptions{Logger: quiet}), s.request); err != nil {
			t.Fatalf("fresh server: %v", err)
		}
	})
}

// TestSharedReplayFilter: a request one server accepted is refused by another given the
// same filter, and a server refuses a filter made for another key.
func TestSharedReplayFilter(t *testing.T) {
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		if ciph.family == familyNone {
			t.Skip("no salt or IV to remember")
		}
		// A cipher built again from the same password shares the filter, as after a reload.
		again := mustCipher(t, ciph.Method())
		shared := NewReplayFilter(ciph, 0)
		s := newSession(t, ciph, []byte("GET / HTTP/1.0\r\n\r\n"))
		if _, _, err := serve(NewServer(ciph, ServerOptions{Logger: quiet, Replay: shared}), s.request); err != nil {
			t.Fatalf("first: %v", err)
		}
		if _, _, err := serve(NewServer(again, ServerOptions{Logger: quiet, Replay: shared}), s.request); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay at a server sharing the filter: err = %v, want ErrReplay", err)
		}

		otherPassword := "another password"
		if ciph.family == family2022 {
			otherPassword = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, ciph.keyLen))
		}
		other, err := NewCipher(ciph.Method(), otherPassword)
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			if recover() == nil {
				t.Error("NewServer took a filter made for another key")
			}
		}()
		NewServer(other, ServerOptions{Logger: quiet, Replay: shared})
	})
}

// TestReflectionRefused: a server's own response, sent back to it as a request, is
// refused (its salt or IV is remembered; SIP022 headers also carry a direction).
func TestReflectionRefused(t *testing.T) {
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		if ciph.family == familyNone {
			t.Skip("nothing to check")
		}
		srv := NewServer(ciph, ServerOptions{Logger: quiet})
		s := newSession(t, ciph, []byte("x"))
		srvRaw := newMemConn(s.request)
		req, err := srv.Handshake(context.Background(), srvRaw)
		if err != nil {
			t.Fatal(err)
		}
		// A response that starts like an address: 1 = IPv4.
		req.Conn.Write([]byte{1, 127, 0, 0, 1, 0, 80, 'h', 'i'})
		req.Conn.Close()
		if _, _, err := serve(srv, srvRaw.written()); err == nil {
			t.Fatal("reflected response accepted as a request")
		}
	})
}

// echoDialer's connections send back whatever is written to them: a man in the middle
// reflecting the client's request as the response.
type echoDialer struct{}

func (echoDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	c, peer := net.Pipe()
	go func() {
		io.Copy(peer, peer)
		peer.Close()
	}()
	return c, nil
}

// TestClientRefusesReflection: a client's own request, reflected as the response, is
// refused before any byte reaches the application. (SIP022 also binds the response to
// the request salt and marks its direction.)
func TestClientRefusesReflection(t *testing.T) {
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		if ciph.family == familyNone {
			t.Skip("nothing to check")
		}
		c, err := NewClient("hop", "192.0.2.1:8388", ciph, echoDialer{}).DialContext(context.Background(), "tcp", "example.com:80")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		go c.Write([]byte("GET /secret HTTP/1.1\r\n\r\n"))
		c.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound, not a measurement
		buf := make([]byte, 4096)
		n, err := c.Read(buf)
		if n > 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("the reflected request was read as the response: %q, %v", buf[:n], err)
		}
		if ciph.family != family2022 && !errors.Is(err, ErrReplay) {
			t.Errorf("error %v, want ErrReplay", err)
		}
	})
}

func TestReplayCapacity(t *testing.T) {
	s := newCountedSaltSet(3)
	salts := [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e"), []byte("f"), []byte("g")}
	for _, v := range salts {
		if !s.add(v, time.Time{}) {
			t.Fatalf("%s: fresh salt refused", v)
		}
	}
	// At least the last capacity salts are remembered; the oldest beyond twice that are not.
	for _, v := range salts[len(salts)-3:] {
		if s.add(v, time.Time{}) {
			t.Errorf("%s: recent salt forgotten", v)
		}
	}
	if !s.add([]byte("a"), time.Time{}) {
		t.Error("salt from beyond twice the capacity still remembered")
	}
}

func TestSaltSetTimed(t *testing.T) {
	s := newTimedSaltSet(saltTTL)
	t0 := time.Unix(1_700_000_000, 0)
	if !s.add([]byte("a"), t0) {
		t.Fatal("fresh salt refused")
	}
	// Every point in the first 60 s after insertion, including across a rotation.
	for _, d := range []time.Duration{time.Second, 59 * time.Second, 60 * time.Second, 61 * time.Second} {
		if s.add([]byte("a"), t0.Add(d)) {
			t.Fatalf("salt forgotten after %v", d)
		}
		s.add(fmt.Appendf(nil, "filler %v", d), t0.Add(d))
	}
	if !s.add([]byte("a"), t0.Add(3*saltTTL)) {
		t.Fatal("salt remembered for three minutes")
	}
}

// build2022Request seals a SIP022 request by hand, for header fields a client never sends.
func build2022Request(ciph *Cipher, typ byte, ts time.Time, varHeader []byte) []byte {
	sl, salt, err := newSealer(ciph)
	if err != nil {
		panic(err)
	}
	b := bytes.Clone(salt)
	start := len(b)
	b = append(b, typ)
	b = binary.BigEndian.AppendUint64(b, uint64(ts.Unix()))
	b = binary.BigEndian.AppendUint16(b, uint16(len(varHeader)))
	b = sl.sealFrom(b, start)
	start = len(b)
	b = append(b, varHeader...)
	return sl.sealFrom(b, start)
}

func varHeader(addr []byte, padding int, payload []byte) []byte {
	b := bytes.Clone(addr)
	b = binary.BigEndian.AppendUint16(b, uint16(padding))
	b = append(b, make([]byte, padding)...)
	return append(b, payload...)
}

func Test2022RequestHeader(t *testing.T) {
	ciph := mustCipher(t, "2022-blake3-aes-128-gcm")
	now := time.Unix(1_700_000_000, 0)
	addr := addrBytes(t, "10.0.0.1:443")
	cases := []struct {
		name    string
		typ     byte
		skew    time.Duration
		header  []byte
		wantErr error
		payload string
	}{
		{"payload", typeRequest, 0, varHeader(addr, 0, []byte("hi")), nil, "hi"},
		{"padding only", typeRequest, 0, varHeader(addr, 900, nil), nil, ""},
		{"padding and payload", typeRequest, 0, varHeader(addr, 5, []byte("hi")), nil, "hi"},
		{"29 s behind", typeRequest, -29 * time.Second, varHeader(addr, 0, []byte("x")), nil, "x"},
		{"29 s ahead", typeRequest, 29 * time.Second, varHeader(addr, 0, []byte("x")), nil, "x"},
		{"31 s behind", typeRequest, -31 * time.Second, varHeader(addr, 0, []byte("x")), ErrTimestamp, ""},
		{"31 s ahead", typeRequest, 31 * time.Second, varHeader(addr, 0, []byte("x")), ErrTimestamp, ""},
		{"response type", typeResponse, 0, varHeader(addr, 0, []byte("x")), ErrHeader, ""},
		{"no payload no padding", typeRequest, 0, varHeader(addr, 0, nil), ErrHeader, ""},
		{"padding over 900", typeRequest, 0, varHeader(addr, 901, nil), ErrHeader, ""},
		{"padding past header", typeRequest, 0, varHeader(addr, 10, nil)[:len(addr)+2+5], ErrHeader, ""},
		{"no padding length", typeRequest, 0, addr, ErrHeader, ""},
		{"bad address type", typeRequest, 0, varHeader([]byte{9, 1, 2, 3, 4, 0, 80}, 0, []byte("x")), ErrHeader, ""},
		{"empty", typeRequest, 0, nil, ErrHeader, ""},
	}
	for _, c := range cases {
		srv := NewServer(ciph, ServerOptions{Logger: quiet})
		srv.now = func() time.Time { return now }
		dest, payload, err := serve(srv, build2022Request(ciph, c.typ, now.Add(c.skew), c.header))
		if c.wantErr != nil {
			if !errors.Is(err, c.wantErr) {
				t.Errorf("%s: err = %v, want %v", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil || dest != "10.0.0.1:443" || string(payload) != c.payload {
			t.Errorf("%s: got %q %q %v", c.name, dest, payload, err)
		}
	}
}

// TestClientPadding: a header sent before any payload carries 1..900 bytes of padding.
func TestClientPadding(t *testing.T) {
	ciph := mustCipher(t, "2022-blake3-aes-256-gcm")
	addr := addrBytes(t, "example.com:443")
	seen := map[int]bool{}
	for range 50 {
		req := request(t, NewClient("t", "unused:1", ciph, nil), "example.com:443", nil)
		padding := len(req) - (ciph.saltLen + fixedHeaderLen + tagLen + len(addr) + 2 + tagLen)
		if padding < 1 || padding > maxPadding {
			t.Fatalf("padding %d", padding)
		}
		seen[padding] = true
		if dest, payload, err := serve(NewServer(ciph, ServerOptions{Logger: quiet}), req); err != nil || dest != "example.com:443" || len(payload) != 0 {
			t.Fatalf("padded header: %q %q %v", dest, payload, err)
		}
	}
	if len(seen) < 10 {
		t.Errorf("padding lengths barely vary: %v", seen)
	}
}

// Test2022Response covers the client's checks on the response header.
func Test2022Response(t *testing.T) {
	ciph := mustCipher(t, "2022-blake3-chacha20-poly1305")
	t.Run("clock", func(t *testing.T) {
		for _, skew := range []time.Duration{-31 * time.Second, 31 * time.Second} {
			s := newSession(t, ciph, []byte("x"), []byte("answer"))
			s.client.dec.(*chunkReader).preamble = func() error {
				cr := s.client.dec.(*chunkReader)
				salt := s.request[:ciph.saltLen]
				skewed := func() time.Time { return time.Now().Add(skew) }
				return cr.readResponse2022(ciph, salt, skewed, newTimedSaltSet(saltTTL))
			}
			if _, err := io.ReadAll(s.feed(func(r io.Reader) io.Reader { return r })); !errors.Is(err, ErrTimestamp) {
				t.Errorf("skew %v: err = %v, want ErrTimestamp", skew, err)
			}
		}
	})
	t.Run("binding", func(t *testing.T) {
		a := newSession(t, ciph, []byte("x"), []byte("for a"))
		b := newSession(t, ciph, []byte("x"), []byte("for b"))
		b.response = a.response
		if got, err := io.ReadAll(b.feed(func(r io.Reader) io.Reader { return r })); !errors.Is(err, ErrBinding) || len(got) != 0 {
			t.Errorf("response to another request: %q, %v; want ErrBinding", got, err)
		}
	})
	t.Run("replay", func(t *testing.T) {
		s := newSession(t, ciph, []byte("x"), []byte("once"))
		cr := s.client.dec.(*chunkReader)
		salt := s.request[:ciph.saltLen]
		pool := newTimedSaltSet(saltTTL)
		cr.preamble = func() error { return cr.readResponse2022(ciph, salt, time.Now, pool) }
		if got, err := io.ReadAll(s.feed(func(r io.Reader) io.Reader { return r })); err != nil || string(got) != "once" {
			t.Fatalf("first: %q %v", got, err)
		}
		// The same response again, to a fresh reader bound to the same request salt.
		again := newChunkReader(bytes.NewReader(s.response), maxPayload2022)
		again.preamble = func() error { return again.readResponse2022(ciph, salt, time.Now, pool) }
		if _, err := io.ReadAll(again); !errors.Is(err, ErrReplay) {
			t.Fatalf("replayed response: err = %v, want ErrReplay", err)
		}
	})
}

// probe connects to server, sends payload, and reports what came back and how the
// connection ended. First it checks that the server holds the connection open, without
// a word, until hold after the moment before the dial (earlyErr otherwise): that moment
// precedes the accept, so a server keeping a handshake deadline longer than hold cannot
// have closed by then, however slow the machine. Then, with closeFirst, the prober
// half-closes; without it, the prober waits for the server to close.
func probe(t *testing.T, server string, payload []byte, hold time.Duration, closeFirst bool) (back []byte, earlyErr, err error) {
	beforeDial := time.Now()
	conn, err := net.Dial("tcp", server)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(payload); err != nil {
		t.Fatal(err)
	}
	if n, err := harness.HeldOpen(conn, beforeDial.Add(hold)); err != nil {
		earlyErr = fmt.Errorf("within %v of the dial, before any deadline, the server %w", hold, err)
	} else if n != 0 {
		earlyErr = fmt.Errorf("within %v of the dial the server answered %d bytes", hold, n)
	}
	if closeFirst {
		conn.(*net.TCPConn).CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	back, err = io.ReadAll(conn)
	return back, earlyErr, err
}

// TestProbes sends what a prober would: random bytes of many lengths, including the
// lengths around the first length chunk (49, 50, 51 for a 32-byte salt). Authenticated
// methods must answer nothing, dial nothing, and close only when the prober closes or
// the handshake deadline fires: every probe finds the connection still open at half the
// deadline, then most half-close and the server must close cleanly after them, and two
// wait, and the server must close cleanly by itself (not never). The close is judged by
// outcome, open or closed, never by a bound on elapsed time (see harness.HeldOpen).
func TestProbes(t *testing.T) {
	const handshake = 400 * time.Millisecond
	rng := mrand.New(mrand.NewPCG(3, 4))
	lengths := []int{0, 1, 15, 16, 17, 31, 32, 33, 49, 50, 51, 58, 59, 60, 221}
	for range 5 {
		lengths = append(lengths, rng.IntN(222))
	}
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		server, dials := startServer(t, ciph, proxy.ServerOptions{HandshakeTimeout: handshake})
		var wg sync.WaitGroup
		for i, n := range lengths {
			payload := make([]byte, n)
			rand.Read(payload)
			// A prober waiting for the server: only the longest and one short probe,
			// since each one lasts the whole handshake deadline.
			waitForServer := i == 0 || n == 221
			wg.Go(func() {
				back, earlyErr, err := probe(t, server, payload, handshake/2, !waitForServer)
				if len(back) != 0 {
					t.Errorf("%d bytes: server answered %d bytes", n, len(back))
				}
				if ciph.Insecure() {
					// Random bytes decrypt to a valid address now and then, and the
					// server (refused a dial by the test dialer) closes early. These
					// methods cannot tell, which is one reason they report Insecure.
					return
				}
				if earlyErr != nil {
					t.Errorf("%d bytes: %v", n, earlyErr)
				}
				if err != nil {
					t.Errorf("%d bytes: connection ended with %v, want a clean close", n, err)
				}
			})
		}
		wg.Wait()
		if d := dials.Load(); d != 0 && !ciph.Insecure() {
			t.Errorf("probes caused %d dials", d)
		}
	})
}

// TestReplayOverTCP replays a captured request at a live server: no dial, no answer,
// and the connection stays open until the prober closes it.
func TestReplayOverTCP(t *testing.T) {
	target := startTarget(t, false)
	for _, m := range []string{"aes-256-gcm", "2022-blake3-aes-128-gcm", "aes-128-cfb"} {
		t.Run(m, func(t *testing.T) {
			ciph := mustCipher(t, m)
			server, dials := startServer(t, ciph, proxy.ServerOptions{HandshakeTimeout: 2 * time.Second})
			payload := pattern(64, 5)
			binary.BigEndian.PutUint64(payload, 10) // ask the target for 10 bytes back
			req := request(t, NewClient("t", "unused:1", ciph, nil), target, payload)
			conn, err := net.Dial("tcp", server)
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			conn.Write(req)
			conn.(*net.TCPConn).CloseWrite()
			first, err := io.ReadAll(conn)
			conn.Close()
			if err != nil || len(first) == 0 || dials.Load() != 1 {
				t.Fatalf("original request: %d bytes back, %v, %d dials", len(first), err, dials.Load())
			}
			back, earlyErr, err := probe(t, server, req, 150*time.Millisecond, true)
			if len(back) != 0 || earlyErr != nil || err != nil {
				t.Fatalf("replay: %d bytes back, %v, %v", len(back), earlyErr, err)
			}
			if d := dials.Load(); d != 1 {
				t.Fatalf("replay dialed: %d dials", d)
			}
		})
	}
}
