package harness

import (
	"bytes"
	"crypto/sha256"
	"hash"
	"io"
	"net"
	"sync"
	"testing"
)

// ExchangeCopyingOut has server and client each read the other's bytes with io.Copy (so
// through WriteTo where a conn has one, as a relay does), sends up from client to server
// and then down back, and fails t unless each side got exactly its bytes. The copies keep
// waiting for more until the conns are closed; the returned func waits for them to end.
func ExchangeCopyingOut(t testing.TB, client, server net.Conn, up, down []byte) (wait func()) {
	t.Helper()
	upSink, downSink := newHashSink(len(up)), newHashSink(len(down))
	var wg sync.WaitGroup
	wg.Go(func() { io.Copy(upSink, server) })
	wg.Go(func() { io.Copy(downSink, client) })
	if _, err := client.Write(up); err != nil {
		t.Fatal(err)
	}
	<-upSink.done
	if _, err := server.Write(down); err != nil {
		t.Fatal(err)
	}
	<-downSink.done
	if got, want := upSink.h.Sum(nil), sha256.Sum256(up); !bytes.Equal(got, want[:]) {
		t.Error("up: hashes differ")
	}
	if got, want := downSink.h.Sum(nil), sha256.Sum256(down); !bytes.Equal(got, want[:]) {
		t.Error("down: hashes differ")
	}
	return wg.Wait
}

// hashSink hashes what it is given and reports on done once it has want bytes.
type hashSink struct {
	h    hash.Hash
	n    int
	want int
	done chan struct{}
}

func newHashSink(want int) *hashSink {
	return &hashSink{h: sha256.New(), want: want, done: make(chan struct{})}
}

func (s *hashSink) Write(p []byte) (int, error) {
	s.h.Write(p)
	if s.n < s.want && s.n+len(p) >= s.want {
		defer close(s.done)
	}
	s.n += len(p)
	return len(p), nil
}
