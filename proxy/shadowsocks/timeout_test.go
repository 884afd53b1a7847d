package shadowsocks

import (
	"bytes"
	"context"
	"io"
	"net"
	"testing"

	"github.com/proxychain/proxychain/test/harness"
)

// drain reads c to its end through the relay's two paths, retrying after every timeout.
func drain(c net.Conn, via string, src *harness.TimeoutReader) ([]byte, error) {
	if via == "WriteTo" {
		return harness.WriteToRetrying(c.(io.WriterTo), src)
	}
	return harness.ReadAllRetrying(c, src, 7)
}

// TestResumesAfterTimeouts: a read deadline may expire before any byte of either
// direction, from the response's first byte (salt or IV, SIP022 response header) and the
// request body's first byte after the handshake, with pieces as small as one byte. Read
// and WriteTo, retried after each timeout, deliver exactly what was sent.
func TestResumesAfterTimeouts(t *testing.T) {
	up, down := pattern(20000, 4), joined(downPieces)
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		for _, s := range harness.Stutters {
			for _, via := range []string{"Read", "WriteTo"} {
				craw := &harness.StutterConn{}
				cc, err := NewClient("t", "unused:1", ciph, nil).wrap(craw, addrBytes(t, "example.com:443"))
				if err != nil {
					t.Fatal(err)
				}
				// The header goes alone, so that the server's body starts at a known byte.
				if err := cc.sendHeader(); err != nil {
					t.Fatal(err)
				}
				headerLen := len(craw.Written())
				if _, err := cc.Write(up); err != nil {
					t.Fatal(err)
				}
				request := craw.Written()

				upSrc := harness.NewTimeoutReader(bytes.NewReader(request[headerLen:]), s)
				sraw := &harness.StutterConn{Prefix: request[:headerLen], In: upSrc}
				req, err := NewServer(ciph, ServerOptions{Logger: quiet}).Handshake(context.Background(), sraw)
				if err != nil {
					t.Fatalf("handshake: %v", err)
				}
				got, err := drain(req.Conn, via, upSrc)
				if err != nil || !bytes.Equal(got, up) {
					t.Errorf("%s/%s: server read %d bytes (sha256 %x), %v; want %d bytes", s.Name, via, len(got), sum(got), err, len(up))
				}
				for _, p := range downPieces {
					if _, err := req.Conn.Write(p); err != nil {
						t.Fatal(err)
					}
				}
				req.Conn.Close()

				downSrc := harness.NewTimeoutReader(bytes.NewReader(sraw.Written()), s)
				craw.In = downSrc
				got, err = drain(cc, via, downSrc)
				if err != nil || !bytes.Equal(got, down) {
					t.Errorf("%s/%s: client read %d bytes (sha256 %x), %v; want %d bytes", s.Name, via, len(got), sum(got), err, len(down))
				}
				if downSrc.Timeouts() == 0 || upSrc.Timeouts() == 0 {
					t.Errorf("%s/%s: no timeouts met", s.Name, via)
				}
				cc.Close()
			}
		}
	})
}
