package proxytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"io"
	"net"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
)

// EchoStream is a connection, dialed through a proxy.Dialer to an echo server, that
// sends random bytes in parts and checks that every byte comes back in order. Tests of
// reloads hold many open across a config change and finish them afterwards: a stream
// that was reset or lost bytes fails.
type EchoStream struct {
	conn         net.Conn
	sent, echoed hash.Hash
}

// OpenEchoStream dials echo through d; the connection is closed when the test ends.
func OpenEchoStream(t testing.TB, d proxy.Dialer, echo string) *EchoStream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &EchoStream{conn: c, sent: sha256.New(), echoed: sha256.New()}
}

// Conn is the stream's connection, for tests that check how it ends.
func (s *EchoStream) Conn() net.Conn { return s.conn }

// Part sends n random bytes and reads the n echoed bytes back.
func (s *EchoStream) Part(t testing.TB, n int) {
	t.Helper()
	buf := make([]byte, n)
	rand.Read(buf)
	s.sent.Write(buf)
	s.conn.SetDeadline(time.Now().Add(10 * time.Second))
	errc := make(chan error, 1)
	go func() { _, err := s.conn.Write(buf); errc <- err }()
	got := make([]byte, n)
	if _, err := io.ReadFull(s.conn, got); err != nil {
		t.Fatalf("proxytest: stream read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("proxytest: stream write: %v", err)
	}
	s.echoed.Write(got)
}

// Finish half-closes and checks that nothing more comes back and the hashes agree.
func (s *EchoStream) Finish(t testing.TB) {
	t.Helper()
	if err := proxy.CloseWrite(s.conn); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(s.conn)
	if err != nil || len(rest) > 0 {
		t.Fatalf("proxytest: after half-close: %d more bytes, err %v", len(rest), err)
	}
	if !bytes.Equal(s.sent.Sum(nil), s.echoed.Sum(nil)) {
		t.Fatal("proxytest: the stream's echoed bytes differ from what was sent")
	}
}
