package vmess

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"testing"
)

func manyUsers(b *testing.B, n, alterID int) []User {
	users := make([]User, n)
	for i := range users {
		rand.Read(users[i].ID[:])
		users[i].AlterID = alterID
	}
	return users
}

// BenchmarkAEADLookup10k measures finding the last of 10,000 users by auth ID: one AES
// block decryption and a CRC32 per user tried.
func BenchmarkAEADLookup10k(b *testing.B) {
	users := manyUsers(b, 10000, 0)
	srv, err := NewServer(users, ServerOptions{Logger: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	ck := cmdKey(users[len(users)-1].ID)
	now := srv.now().Unix()
	auth := sealAuthID(authIDCipher(ck), now, [4]byte{})
	b.ReportAllocs()
	for b.Loop() {
		if user, _, ok, err := srv.matchAuthID(&auth, now); !ok || err != nil || user != len(users)-1 {
			b.Fatalf("user %d ok %v err %v", user, ok, err)
		}
	}
}

// BenchmarkLegacyLookup10k measures a legacy hash lookup among 10,000 users with
// alterId 1, the table already covering the window.
func BenchmarkLegacyLookup10k(b *testing.B) {
	users := manyUsers(b, 10000, 1)
	srv, err := NewServer(users, ServerOptions{AllowLegacy: true, Logger: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	now := srv.now().Unix()
	auth := legacyAuth(alterIDs(users[5000].ID, 1)[0], now-17)
	if _, _, ok := srv.legacy.lookup(auth, now); !ok {
		b.Fatal("not found")
	}
	b.ReportAllocs()
	for b.Loop() {
		if user, _, ok := srv.legacy.lookup(auth, now); !ok || user != 5000 {
			b.Fatal("lookup failed")
		}
	}
}

// BenchmarkLegacyAdvance measures the per-second cost of moving the legacy window for
// 10,000 users with alterId 1.
func BenchmarkLegacyAdvance10k(b *testing.B) {
	users := manyUsers(b, 10000, 1)
	srv, err := NewServer(users, ServerOptions{AllowLegacy: true, Logger: quietLog})
	if err != nil {
		b.Fatal(err)
	}
	now := srv.now().Unix()
	srv.legacy.advance(now)
	b.ReportAllocs()
	for b.Loop() {
		now++
		srv.legacy.advance(now)
	}
}

func BenchmarkHandshake(b *testing.B) {
	for _, alterID := range []int{0, 64} {
		b.Run(fmt.Sprintf("alterId%d", alterID), func(b *testing.B) {
			srv, c := testPair(b, alterID)
			b.ReportAllocs()
			for b.Loop() {
				_, wire, _ := c.newRequest("example.com:443")
				if _, err := decodeWire(srv, wire); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkChunks measures sealing and opening a body stream in 16 KiB writes.
func BenchmarkChunks(b *testing.B) {
	for _, sec := range []string{"aes-128-gcm", "chacha20-poly1305", "none"} {
		b.Run(sec, func(b *testing.B) {
			s, opts, _ := parseSecurity(sec)
			spec := bodySpec{security: s, options: opts}
			rand.Read(spec.key[:])
			rand.Read(spec.iv[:])
			payload := make([]byte, 16<<10)
			var wire bytes.Buffer
			w := chunkWriter{w: &wire, f: spec.framer(spec.key, spec.iv)}
			r := newChunkReader(&wire)
			r.startBody(spec.framer(spec.key, spec.iv))
			out := make([]byte, len(payload))
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				w.Write(payload)
				if _, err := io.ReadFull(r, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkLoopback measures a client-server stream over loopback TCP.
func BenchmarkLoopback(b *testing.B) {
	c1, c2, stop, err := pipe("aes-128-gcm", 0)()
	if err != nil {
		b.Fatal(err)
	}
	defer stop()
	payload := make([]byte, 32<<10)
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, c2)
		done <- err
	}()
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c1.Write(payload); err != nil {
			b.Fatal(err)
		}
	}
	c1.(interface{ CloseWrite() error }).CloseWrite()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	_ = net.ErrClosed
}

// countingDiscard counts the writes it is given, standing in for the relay's socket.
type countingDiscard struct{ writes int }

func (c *countingDiscard) Write(p []byte) (int, error) {
	c.writes++
	return len(p), nil
}

// BenchmarkChunkWriteTo measures the relay's down path: a 4 MiB body, in chunks of V2Ray
// 4.34's size (about 2 KiB) and of ours (16 KiB), delivered through WriteTo. writes/op is
// how many write(2) calls the relay would make for it.
func BenchmarkChunkWriteTo(b *testing.B) {
	const body = 4 << 20
	for _, chunk := range []int{2 << 10, maxChunkPayload} {
		for _, sec := range []string{"aes-128-gcm", "chacha20-poly1305"} {
			b.Run(fmt.Sprintf("%s/%dKiB", sec, chunk>>10), func(b *testing.B) {
				s, opts, _ := parseSecurity(sec)
				spec := bodySpec{security: s, options: opts}
				rand.Read(spec.key[:])
				rand.Read(spec.iv[:])
				var wire bytes.Buffer
				w := chunkWriter{w: &wire, f: spec.framer(spec.key, spec.iv)}
				payload := make([]byte, chunk)
				for range body / chunk {
					w.Write(payload)
				}
				w.end()
				src := bytes.NewReader(wire.Bytes())
				var sink countingDiscard
				b.SetBytes(body)
				b.ReportAllocs()
				for b.Loop() {
					src.Reset(wire.Bytes())
					r := newChunkReader(src)
					r.startBody(spec.framer(spec.key, spec.iv))
					if n, err := r.WriteTo(&sink); n != body || err != nil {
						b.Fatalf("WriteTo: %d bytes, %v", n, err)
					}
					r.release()
				}
				b.ReportMetric(float64(sink.writes)/float64(b.N), "writes/op")
			})
		}
	}
}
