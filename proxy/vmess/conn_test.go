package vmess

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"testing"
	"testing/iotest"
	"time"

	"golang.org/x/net/nettest"
)

// pipe connects our client to our server over loopback TCP without proxy.Server: c1 is
// the client's conn, c2 the server's decoded stream.
func pipe(sec string, alterID int) nettest.MakePipe {
	return func() (c1, c2 net.Conn, stop func(), err error) {
		id, _ := ParseUUID(specUser1)
		srv, err := NewServer([]User{{ID: id, AlterID: alterID}}, ServerOptions{AllowLegacy: alterID > 0, Logger: quietLog})
		if err != nil {
			return nil, nil, nil, err
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, nil, err
		}
		defer ln.Close()
		type result struct {
			c   net.Conn
			err error
		}
		accepted := make(chan result, 1)
		go func() {
			raw, err := ln.Accept()
			if err != nil {
				accepted <- result{nil, err}
				return
			}
			req, err := srv.Handshake(context.Background(), raw)
			if err != nil {
				raw.Close()
				accepted <- result{nil, err}
				return
			}
			if req.Destination != "example.com:80" {
				err = errors.New("wrong destination " + req.Destination)
			}
			accepted <- result{req.Conn, err}
		}()
		c, err := NewClient("out", ln.Addr().String(), User{ID: id, AlterID: alterID}, sec, &net.Dialer{})
		if err != nil {
			return nil, nil, nil, err
		}
		c1, err = c.DialContext(context.Background(), "tcp", "example.com:80")
		if err != nil {
			return nil, nil, nil, err
		}
		r := <-accepted
		if r.err != nil {
			c1.Close()
			return nil, nil, nil, r.err
		}
		return c1, r.c, func() { c1.Close(); r.c.Close() }, nil
	}
}

func TestConn(t *testing.T) {
	for _, tc := range []struct {
		sec     string
		alterID int
	}{{"aes-128-gcm", 0}, {"chacha20-poly1305", 0}, {"none", 0}, {"zero", 0}, {"aes-128-gcm", 64}, {"zero", 64}} {
		name := tc.sec
		if tc.alterID > 0 {
			name += "/legacy"
		}
		t.Run(name, func(t *testing.T) { nettest.TestConn(t, pipe(tc.sec, tc.alterID)) })
	}
}

// TestCloseWrite: the client's CloseWrite reaches the server as EOF while the server can
// still answer, and the server's CloseWrite ends the client's read.
func TestCloseWrite(t *testing.T) {
	for _, sec := range securities {
		t.Run(sec, func(t *testing.T) {
			c1, c2, stop, err := pipe(sec, 0)()
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			if _, err := c1.Write([]byte("question")); err != nil {
				t.Fatal(err)
			}
			if err := c1.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if _, err := c1.Write([]byte("x")); err == nil {
				t.Error("write after CloseWrite succeeded")
			}
			got, err := io.ReadAll(c2)
			if err != nil || string(got) != "question" {
				t.Fatalf("server read %q, %v", got, err)
			}
			c2.Write([]byte("answer"))
			c2.(interface{ CloseWrite() error }).CloseWrite()
			got, err = io.ReadAll(c1)
			if err != nil || string(got) != "answer" {
				t.Fatalf("client read %q, %v", got, err)
			}
			if c1.(interface{ NetConn() net.Conn }).NetConn() == nil {
				t.Error("no NetConn")
			}
		})
	}
}

// TestEmptyResponse: a server that answers nothing still sends its header with the end
// chunk, so the client sees a clean EOF rather than an error.
func TestEmptyResponse(t *testing.T) {
	for _, alterID := range []int{0, 64} {
		c1, c2, stop, err := pipe("aes-128-gcm", alterID)()
		if err != nil {
			t.Fatal(err)
		}
		c2.(interface{ CloseWrite() error }).CloseWrite()
		got, err := io.ReadAll(c1)
		if err != nil || len(got) != 0 {
			t.Errorf("alterId %d: read %q, %v; want clean EOF", alterID, got, err)
		}
		stop()
	}
}

// memSession builds both ends of a session in memory: the client's request wire, the
// server's decode of it, and framers for both directions.
type memSession struct {
	wire          []byte
	h             *requestHeader
	aead          bool
	rkey, riv     [16]byte
	srv           *Server
	clientOptions byte
}

func newMemSession(t testing.TB, sec string, alterID int) *memSession {
	t.Helper()
	srv, c := testPair(t, alterID)
	s, o, err := parseSecurity(sec)
	if err != nil {
		t.Fatal(err)
	}
	c.security, c.options = s, o
	h, wire, err := c.newRequest("example.com:443")
	if err != nil {
		t.Fatal(err)
	}
	m := &memSession{wire: wire, h: h, aead: alterID == 0, srv: srv}
	m.rkey, m.riv = responseKeys(m.aead, h.bodyKey, h.bodyIV)
	return m
}

func (m *memSession) spec() bodySpec {
	return bodySpec{security: m.h.security, options: m.h.options, key: m.h.bodyKey, iv: m.h.bodyIV}
}

var readers = map[string]func(io.Reader) io.Reader{
	"OneByte": iotest.OneByteReader,
	"Half":    iotest.HalfReader,
	"DataErr": iotest.DataErrReader,
	"Plain":   func(r io.Reader) io.Reader { return r },
}

// TestDecodersByteByByte feeds request headers, chunk streams and response headers
// through readers that return one byte, half the buffer, or data with the error.
func TestDecodersByteByByte(t *testing.T) {
	payload := make([]byte, 100<<10+3)
	rand.Read(payload)
	for rname, wrap := range readers {
		for _, sec := range securities {
			for _, alterID := range []int{0, 64} {
				m := newMemSession(t, sec, alterID)
				// Request: header then body, in one stream.
				var req bytes.Buffer
				req.Write(m.wire)
				w := chunkWriter{w: &req, f: m.spec().framer(m.h.bodyKey, m.h.bodyIV)}
				w.Write(payload)
				w.end()
				r := newChunkReader(wrap(bytes.NewReader(req.Bytes())))
				sess, err := m.srv.decode(r)
				if err != nil {
					t.Fatalf("%s/%s/%d: decode: %v", rname, sec, alterID, err)
				}
				if sess.h.dest != "example.com:443" || sess.aead != m.aead {
					t.Fatalf("decoded %+v", sess)
				}
				r.startBody(m.spec().framer(m.h.bodyKey, m.h.bodyIV))
				got, err := io.ReadAll(r)
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("%s/%s/%d: request body: %d bytes, %v", rname, sec, alterID, len(got), err)
				}
				// Response: header sealed as a prefix, then body.
				var resp bytes.Buffer
				sw := chunkWriter{w: &resp, f: m.spec().framer(m.rkey, m.riv),
					prefix: sealResponseHeader(m.aead, m.rkey, m.riv, m.h.respAuth)}
				sw.Write(payload)
				sw.end()
				cr := newChunkReader(wrap(bytes.NewReader(resp.Bytes())))
				rr := &responseReader{r: cr, aead: m.aead, key: m.rkey, iv: m.riv, auth: m.h.respAuth}
				if err := rr.read(); err != nil {
					t.Fatalf("%s/%s/%d: response header: %v", rname, sec, alterID, err)
				}
				cr.startBody(m.spec().framer(m.rkey, m.riv))
				var sink bytes.Buffer
				if _, err := cr.WriteTo(&sink); err != nil || !bytes.Equal(sink.Bytes(), payload) {
					t.Fatalf("%s/%s/%d: response body: %d bytes, %v", rname, sec, alterID, sink.Len(), err)
				}
			}
		}
	}
}

// TestTruncatedStreams: a stream cut inside a chunk is an error, never a short success.
func TestTruncatedStreams(t *testing.T) {
	m := newMemSession(t, "aes-128-gcm", 0)
	var body bytes.Buffer
	w := chunkWriter{w: &body, f: m.spec().framer(m.h.bodyKey, m.h.bodyIV)}
	w.Write(make([]byte, 1000))
	for cut := 1; cut < body.Len(); cut++ {
		r := newChunkReader(bytes.NewReader(body.Bytes()[:cut]))
		r.startBody(m.spec().framer(m.h.bodyKey, m.h.bodyIV))
		if _, err := io.ReadAll(r); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("cut at %d: %v, want unexpected EOF", cut, err)
		}
	}
	// A wrong response auth byte is refused.
	prefix := sealResponseHeader(true, m.rkey, m.riv, m.h.respAuth+1)
	rr := &responseReader{r: newChunkReader(bytes.NewReader(prefix)), aead: true, key: m.rkey, iv: m.riv, auth: m.h.respAuth}
	if err := rr.read(); !errors.Is(err, ErrResponse) {
		t.Errorf("wrong response auth: %v", err)
	}
}

// timeoutReader fails with a timeout every other call, to check nothing is lost or
// decoded twice when a read times out partway through a chunk.
type timeoutReader struct {
	r     io.Reader
	calls int
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func (tr *timeoutReader) Read(p []byte) (int, error) {
	tr.calls++
	if tr.calls%2 == 0 {
		return 0, timeoutErr{}
	}
	return tr.r.Read(p[:min(len(p), 7)])
}

func TestReadResumesAfterTimeout(t *testing.T) {
	m := newMemSession(t, "chacha20-poly1305", 0)
	payload := make([]byte, 50000)
	rand.Read(payload)
	var resp bytes.Buffer
	sw := chunkWriter{w: &resp, f: m.spec().framer(m.rkey, m.riv), prefix: sealResponseHeader(true, m.rkey, m.riv, m.h.respAuth)}
	sw.Write(payload)
	sw.end()
	cr := newChunkReader(&timeoutReader{r: bytes.NewReader(resp.Bytes())})
	c := &conn{r: cr}
	rr := &responseReader{r: cr, aead: true, key: m.rkey, iv: m.riv, auth: m.h.respAuth}
	c.head = func() error {
		if err := rr.read(); err != nil {
			return err
		}
		cr.startBody(m.spec().framer(m.rkey, m.riv))
		return nil
	}
	var got []byte
	buf := make([]byte, 999)
	for i := 0; i < 1e6; i++ {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		var te timeoutErr
		if err != nil && !errors.As(err, &te) {
			t.Fatal(err)
		}
	}
	if sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Fatalf("got %d bytes, want %d, or different", len(got), len(payload))
	}
}

// failingWriter refuses the first write outright, then accepts.
type failingWriter struct {
	bytes.Buffer
	fail int
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.fail > 0 {
		w.fail--
		return 0, timeoutErr{}
	}
	return w.Buffer.Write(p)
}

// TestWriteRetriesAfterTimeout: a chunk that could not be written at all leaves no trace
// in the framing, so the retry decodes.
func TestWriteRetriesAfterTimeout(t *testing.T) {
	m := newMemSession(t, "aes-128-gcm", 0)
	out := &failingWriter{fail: 1}
	w := chunkWriter{w: out, f: m.spec().framer(m.rkey, m.riv), prefix: sealResponseHeader(true, m.rkey, m.riv, m.h.respAuth)}
	if n, err := w.Write([]byte("first")); n != 0 || err == nil {
		t.Fatalf("write = %d, %v; want 0 and the timeout", n, err)
	}
	w.Write([]byte("first"))
	w.Write([]byte("second"))
	w.end()
	cr := newChunkReader(bytes.NewReader(out.Bytes()))
	rr := &responseReader{r: cr, aead: true, key: m.rkey, iv: m.riv, auth: m.h.respAuth}
	if err := rr.read(); err != nil {
		t.Fatal(err)
	}
	cr.startBody(m.spec().framer(m.rkey, m.riv))
	got, err := io.ReadAll(cr)
	if err != nil || string(got) != "firstsecond" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestNonceExhaustion(t *testing.T) {
	m := newMemSession(t, "aes-128-gcm", 0)
	w := chunkWriter{w: io.Discard, f: m.spec().framer(m.rkey, m.riv)}
	w.f.sealed = maxSealedChunks - 2
	if _, err := w.Write([]byte("last data chunk")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("one too many")); !errors.Is(err, ErrNonceExhausted) {
		t.Fatalf("write past the counter: %v", err)
	}
	if w.f.sealed != maxSealedChunks-1 {
		t.Fatalf("sealed %d", w.f.sealed)
	}
	// None has no nonce and no limit.
	m = newMemSession(t, "none", 0)
	w = chunkWriter{w: io.Discard, f: m.spec().framer(m.rkey, m.riv)}
	w.f.sealed = maxSealedChunks + 5
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
}

func TestReadsAfterClose(t *testing.T) {
	c1, c2, stop, err := pipe("aes-128-gcm", 0)()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	c2.Close()
	c1.Close()
	if _, err := c1.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read after close: %v", err)
	}
	c1.SetDeadline(time.Now())
}
