package vmess

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy/socksaddr"
)

// fuzzServer is a fresh server (empty replay filters) at a fixed time, with the spec's
// first user, alterId 2.
func fuzzServer(t testing.TB) *Server {
	srv, err := NewServer([]User{{ID: mustUUID(t, specUser1), AlterID: 2}},
		ServerOptions{AllowLegacy: true, Logger: quietLog, Now: fixedClock(epoch)})
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// fuzzRequest builds a valid request header for dest with fixed keys.
func fuzzHeader(t testing.TB, dest string, sec, opts byte, padding int) []byte {
	h := &requestHeader{respAuth: 7, options: opts, security: sec, command: cmdTCP}
	for i := range h.bodyKey {
		h.bodyKey[i], h.bodyIV[i] = byte(i), byte(i+100)
	}
	addr, err := appendAddress(nil, dest)
	if err != nil {
		t.Fatal(err)
	}
	return appendRequestHeader(nil, h, addr, make([]byte, padding))
}

func checkDecoded(t *testing.T, sess session, err error) {
	if err != nil {
		return
	}
	host, _, err := net.SplitHostPort(sess.h.dest)
	if err != nil || socksaddr.CheckDomain(host) != nil {
		t.Fatalf("accepted a request with destination %q", sess.h.dest)
	}
	if err := (bodySpec{security: sess.h.security, options: sess.h.options}).check(); err != nil {
		t.Fatalf("accepted a request with a body it cannot decode: %v", err)
	}
}

func FuzzAEADHeader(f *testing.F) {
	id := mustUUID(f, specUser1)
	ck := cmdKey(id)
	seal := func(at time.Time, header []byte) []byte {
		auth := sealAuthID(authIDCipher(ck), at.Unix(), [4]byte{1, 2, 3, 4})
		return sealAEADRequest(nil, ck, auth, [8]byte{9, 9, 9, 9, 9, 9, 9, 9}, header)
	}
	good := seal(epoch, fuzzHeader(f, "example.com:443", secAES128GCM, optChunkStream|optChunkMasking|optGlobalPadding, 5))
	f.Add(good)                                                                                    // a valid request
	f.Add(seal(epoch, fuzzHeader(f, "[2001:db8::1]:80", secChacha20Poly1305, optChunkStream, 15))) // IPv6, longest padding
	f.Add(seal(epoch, fuzzHeader(f, "1.2.3.4:0", secNone, 0, 0)))                                  // zero: no chunk stream
	f.Add(seal(epoch.Add(121*time.Second), fuzzHeader(f, "1.2.3.4:1", secNone, 0, 0)))             // outside the window
	f.Add(seal(epoch, fuzzHeader(f, "1.2.3.4:1", 9, 0, 0)))                                        // unknown security
	f.Add(seal(epoch, []byte("short")))                                                            // sealed, but not a header
	f.Add(good[:16])                                                                               // auth ID only
	f.Add(good[:len(good)-1])                                                                      // truncated tag
	f.Add(bytes.Repeat([]byte{0}, 80))                                                             // zeros
	f.Fuzz(func(t *testing.T, wire []byte) {
		srv := fuzzServer(t)
		sess, err := decodeWire(srv, wire)
		checkDecoded(t, sess, err)
	})
}

func FuzzLegacyHeader(f *testing.F) {
	id := mustUUID(f, specUser1)
	ck := cmdKey(id)
	alt := alterIDs(id, 2)
	good := sealLegacyRequest(ck, alt[1], epoch.Unix()-30, fuzzHeader(f, "example.com:443", secAES128GCM, optChunkStream|optChunkMasking|optGlobalPadding, 3))
	f.Add(good)                                                                                                                       // a valid request
	f.Add(sealLegacyRequest(ck, alt[0], epoch.Unix()+120, fuzzHeader(f, "[::1]:65535", secNone, optChunkStream|optChunkMasking, 15))) // window edge, IPv6
	f.Add(sealLegacyRequest(ck, alt[0], epoch.Unix(), fuzzHeader(f, "9.9.9.9:53", secNone, 0, 0)))                                    // zero security
	f.Add(sealLegacyRequest(ck, id, epoch.Unix(), fuzzHeader(f, "9.9.9.9:53", secNone, 0, 0)))                                        // primary id: refused
	f.Add(good[:40])                                                                                                                  // cut inside the fixed part
	f.Add(good[:len(good)-4])                                                                                                         // checksum missing
	f.Fuzz(func(t *testing.T, wire []byte) {
		srv := fuzzServer(t)
		sess, err := decodeWire(srv, wire)
		checkDecoded(t, sess, err)
	})
}

func FuzzChunkReader(f *testing.F) {
	var key, iv [16]byte
	for i := range key {
		key[i], iv[i] = byte(i), byte(i*3)
	}
	seed := func(sec, opts byte, payloads ...string) {
		spec := bodySpec{security: sec, options: opts, key: key, iv: iv}
		var wire bytes.Buffer
		w := chunkWriter{w: &wire, f: spec.framer(key, iv)}
		for _, p := range payloads {
			w.Write([]byte(p))
		}
		w.end()
		f.Add(sec, opts, wire.Bytes())
	}
	seed(secAES128GCM, optChunkStream|optChunkMasking|optGlobalPadding, "hello", "world")   // v2ray's aes-128-gcm
	seed(secChacha20Poly1305, optChunkStream|optChunkMasking|optGlobalPadding, "x")         // v2ray's chacha20-poly1305
	seed(secAES128GCM, optChunkStream|optChunkMasking|optGlobalPadding|optAuthLength, "al") // authenticated length
	seed(secAES128GCM, optChunkStream, "plain size")                                        // no masking
	seed(secNone, optChunkStream|optChunkMasking, "none", "chunks")                         // v2ray's none
	seed(secNone, 0, "zero is raw bytes")                                                   // zero
	seed(secAES128GCM, optChunkStream|optChunkMasking)                                      // only the end chunk
	f.Add(byte(secAES128GCM), byte(optChunkStream), []byte{0xff, 0xff, 1, 2, 3})            // huge size, short body
	f.Fuzz(func(t *testing.T, sec, opts byte, wire []byte) {
		spec := bodySpec{security: sec, options: opts, key: key, iv: iv}
		if spec.check() != nil {
			return
		}
		r := newChunkReader(bytes.NewReader(wire))
		defer r.release()
		r.startBody(spec.framer(key, iv))
		got, err := io.ReadAll(r)
		if len(got) > len(wire) {
			t.Fatalf("decoded %d bytes from %d", len(got), len(wire))
		}
		// WriteTo, which joins the chunks it finds buffered, hands out the same bytes
		// and meets the same end.
		w := newChunkReader(bytes.NewReader(wire))
		w.startBody(spec.framer(key, iv))
		var sink bytes.Buffer
		_, werr := w.WriteTo(&sink)
		w.release()
		if !bytes.Equal(sink.Bytes(), got) || (werr == nil) != (err == nil) {
			t.Fatalf("WriteTo gave %d bytes, %v; Read gave %d bytes, %v", sink.Len(), werr, len(got), err)
		}
		if err == nil && spec.framer(key, iv) != nil {
			// What decodes re-encodes to a stream that decodes to the same bytes.
			var again bytes.Buffer
			w := chunkWriter{w: &again, f: spec.framer(key, iv)}
			w.Write(got)
			w.end()
			r2 := newChunkReader(&again)
			r2.startBody(spec.framer(key, iv))
			back, err := io.ReadAll(r2)
			r2.release()
			if err != nil || !bytes.Equal(back, got) {
				t.Fatalf("re-encoded stream decodes to %d bytes, %v", len(back), err)
			}
		}
	})
}
