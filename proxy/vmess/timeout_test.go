package vmess

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"testing"

	"github.com/proxychain/proxychain/test/harness"
)

// connDialer hands out one prepared conn, so a client's wire bytes can be recorded.
type connDialer struct{ c net.Conn }

func (d connDialer) DialContext(context.Context, string, string) (net.Conn, error) {
	return d.c, nil
}

// bodyModes are the body securities with the option sets our client sends for them
// (chunk masking, global padding) and those other clients may send: no masking, no
// padding, authenticated length.
var bodyModes = []struct {
	name              string
	security, options byte
}{
	{"aes-128-gcm", secAES128GCM, optChunkStream | optChunkMasking | optGlobalPadding},
	{"aes-128-gcm/plain-length", secAES128GCM, optChunkStream},
	{"aes-128-gcm/masking", secAES128GCM, optChunkStream | optChunkMasking},
	{"aes-128-gcm/auth-length", secAES128GCM, optChunkStream | optChunkMasking | optGlobalPadding | optAuthLength},
	{"chacha20-poly1305", secChacha20Poly1305, optChunkStream | optChunkMasking | optGlobalPadding},
	{"chacha20-poly1305/auth-length", secChacha20Poly1305, optChunkStream | optAuthLength},
	{"none", secNone, optChunkStream | optChunkMasking},
	{"none/plain-length", secNone, optChunkStream},
	{"zero", secNone, 0},
}

// drainRetrying reads c to its end through the relay's two paths, retrying after every timeout.
func drainRetrying(c net.Conn, via string, src *harness.TimeoutReader) ([]byte, error) {
	if via == "WriteTo" {
		return harness.WriteToRetrying(c.(io.WriterTo), src)
	}
	return harness.ReadAllRetrying(c, src, 7)
}

// TestResumesAfterTimeouts: a read deadline may expire before any byte of the request
// body after the handshake, and of the response from its first byte (the response
// header, legacy or AEAD), with pieces as small as one byte. Read and WriteTo, retried
// after each timeout, deliver exactly what was sent, in every body mode under both
// headers.
func TestResumesAfterTimeouts(t *testing.T) {
	up := make([]byte, 40000)
	down := make([]byte, 50000)
	for i := range up {
		up[i] = byte(i * 7)
	}
	for i := range down {
		down[i] = byte(i*13) ^ byte(i>>9)
	}
	for _, alterID := range []int{0, 64} {
		for _, mode := range bodyModes {
			name := mode.name
			if alterID > 0 {
				name += "/legacy"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				for _, s := range harness.Stutters {
					for _, via := range []string{"Read", "WriteTo"} {
						resumeSession(t, alterID, mode.security, mode.options, s, via, up, down)
					}
				}
			})
		}
	}
}

func resumeSession(t *testing.T, alterID int, security, options byte, s harness.Stutter, via string, up, down []byte) {
	t.Helper()
	srv, cl := testPair(t, alterID)
	cl.security, cl.options = security, options
	craw := &harness.StutterConn{}
	cl.parent = connDialer{craw}
	cc, err := cl.DialContext(context.Background(), "tcp", "example.com:443")
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	headerLen := len(craw.Written())
	if _, err := cc.Write(up); err != nil {
		t.Fatal(err)
	}
	if err := cc.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	request := craw.Written()

	upSrc := harness.NewTimeoutReader(bytes.NewReader(request[headerLen:]), s)
	sraw := &harness.StutterConn{Prefix: request[:headerLen], In: upSrc}
	req, err := srv.Handshake(context.Background(), sraw)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer req.Conn.Close()
	got, err := drainRetrying(req.Conn, via, upSrc)
	if err != nil || !bytes.Equal(got, up) {
		t.Errorf("%s/%s: server read %d bytes (sha256 %x), %v; want %d bytes", s.Name, via, len(got), sha256.Sum256(got), err, len(up))
	}
	for _, p := range [][]byte{down[:1], down[1 : len(down)-7], down[len(down)-7:]} {
		if _, err := req.Conn.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := req.Conn.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatal(err)
	}

	downSrc := harness.NewTimeoutReader(bytes.NewReader(sraw.Written()), s)
	craw.In = downSrc
	got, err = drainRetrying(cc, via, downSrc)
	if err != nil || !bytes.Equal(got, down) {
		t.Errorf("%s/%s: client read %d bytes (sha256 %x), %v; want %d bytes", s.Name, via, len(got), sha256.Sum256(got), err, len(down))
	}
	if upSrc.Timeouts() == 0 || downSrc.Timeouts() == 0 {
		t.Errorf("%s/%s: no timeouts met", s.Name, via)
	}
}
