package shadowsocks

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy/socksaddr"
)

// smallReads returns at most n bytes per Read, so fuzzed inputs also fuzz where reads
// split records.
type smallReads struct {
	r io.Reader
	n int
}

func (s smallReads) Read(p []byte) (int, error) {
	return s.r.Read(p[:min(len(p), s.n)])
}

// FuzzAEADReader is a differential check of the chunk reader: data is sealed into chunks
// of a fuzzed size by our encoder, optionally one bit is flipped, and the stream is read
// back through fuzzed read sizes. Untampered, the bytes must come back exactly; tampered,
// the reader must fail and never hand out altered bytes. The raw input is also decoded
// as a ciphertext, which must not panic.
func FuzzAEADReader(f *testing.F) {
	f.Add([]byte("hello"), uint16(5), uint32(0), uint8(1))                  // one small chunk, one byte per read
	f.Add(bytes.Repeat([]byte{7}, 40000), uint16(0), uint32(0), uint8(255)) // maximal chunks
	f.Add([]byte("tamper the salt"), uint16(3), uint32(1), uint8(16))       // flip in the salt
	f.Add([]byte("tamper a length"), uint16(4), uint32(17), uint8(16))      // flip in the first length chunk
	f.Add([]byte("tamper a tag"), uint16(4), uint32(40), uint8(200))        // flip in a length tag
	f.Add([]byte{}, uint16(0), uint32(0), uint8(0))                         // empty stream
	ciph := mustCipher(f, "aes-128-gcm")
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16, flip uint32, readSize uint8) {
		sl, salt, err := newSealer(ciph)
		if err != nil {
			t.Fatal(err)
		}
		size := int(chunk)%maxPayload + 1
		var stream []byte // a writer that never writes sends no salt either
		if len(data) > 0 {
			stream = bytes.Clone(salt)
		}
		for p := data; len(p) > 0; {
			n := min(len(p), size)
			stream = sl.chunk(stream, nil, p[:n])
			p = p[n:]
		}
		tampered := flip != 0 && len(stream) > 0
		if tampered {
			bit := int(flip-1) % (len(stream) * 8)
			stream[bit/8] ^= 1 << (bit % 8)
		}
		r := newChunkReader(smallReads{bytes.NewReader(stream), int(readSize) + 1}, maxPayload)
		r.preamble = func() error { return r.readSalt(ciph, nil) }
		got, err := io.ReadAll(r)
		r.release()
		if !bytes.HasPrefix(data, got) {
			t.Fatalf("read %d bytes that are not a prefix of the %d sent", len(got), len(data))
		}
		if !tampered && (err != nil || len(got) != len(data)) {
			t.Fatalf("untampered: %d of %d bytes, %v", len(got), len(data), err)
		}
		if tampered && err == nil {
			t.Fatal("tampered stream read without error")
		}
		// WriteTo, which joins the records it finds buffered, hands out the same bytes
		// and meets the same end.
		w := newChunkReader(smallReads{bytes.NewReader(stream), int(readSize) + 1}, maxPayload)
		w.preamble = func() error { return w.readSalt(ciph, nil) }
		var sink bytes.Buffer
		_, werr := w.WriteTo(&sink)
		w.release()
		if !bytes.Equal(sink.Bytes(), got) || (werr == nil) != (err == nil) {
			t.Fatalf("WriteTo gave %d bytes, %v; Read gave %d bytes, %v", sink.Len(), werr, len(got), err)
		}

		raw := newChunkReader(bytes.NewReader(data), maxPayload)
		raw.preamble = func() error { return raw.readSalt(ciph, nil) }
		if _, err := io.Copy(io.Discard, raw); err == nil && len(data) > 0 {
			t.Fatal("random bytes decoded without error")
		}
		raw.release()
	})
}

// Fuzz2022Header seals fuzzed header fields into a SIP022 request and checks the
// server's verdict against the spec's rules, restated here independently.
func Fuzz2022Header(f *testing.F) {
	addr := []byte{socksaddr.TypeIPv4, 10, 0, 0, 1, 1, 187}
	f.Add(byte(0), int64(0), varHeader(addr, 0, []byte("payload")))   // valid, with payload
	f.Add(byte(0), int64(-30), varHeader(addr, 12, nil))              // valid, padding only, oldest allowed
	f.Add(byte(0), int64(31), varHeader(addr, 0, []byte("x")))        // too far ahead
	f.Add(byte(1), int64(0), varHeader(addr, 0, []byte("x")))         // response type
	f.Add(byte(0), int64(0), varHeader(addr, 0, nil))                 // neither payload nor padding
	f.Add(byte(0), int64(0), varHeader(addr, 901, nil))               // padding over the limit
	f.Add(byte(0), int64(0), []byte{3, 0, 0, 80, 0, 0, 'x'})          // empty domain
	f.Add(byte(0), int64(0), []byte{3, 4, 'a', '.', 'b', 'c', 0, 80}) // no padding length
	f.Add(byte(0), int64(0), []byte{})                                // empty variable header
	ciph := mustCipher(f, "2022-blake3-aes-128-gcm")
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, typ byte, skew int64, vh []byte) {
		if len(vh) > maxPayload2022 {
			return
		}
		srv := NewServer(ciph, ServerOptions{Logger: quiet})
		srv.now = func() time.Time { return now }
		skew %= 1000
		dest, payload, err := serve(srv, build2022Request(ciph, typ, now.Add(time.Duration(skew)*time.Second), vh))

		wantErr := error(nil)
		wantDest, wantPayload := "", []byte(nil)
		if typ != typeRequest {
			wantErr = ErrHeader
		} else if skew > 30 || skew < -30 {
			wantErr = ErrTimestamp
		} else if d, n, perr := socksaddr.Parse(vh); perr != nil || len(vh) < n+2 {
			wantErr = ErrHeader
		} else {
			pad := int(binary.BigEndian.Uint16(vh[n:]))
			rest := vh[n+2:]
			if pad > maxPadding || pad > len(rest) || (pad == 0 && len(rest) == 0) {
				wantErr = ErrHeader
			} else {
				wantDest, wantPayload = d, rest[pad:]
			}
		}
		if wantErr != nil {
			if !errors.Is(err, wantErr) {
				t.Fatalf("err = %v, want %v", err, wantErr)
			}
			return
		}
		if err != nil || dest != wantDest || !bytes.Equal(payload, wantPayload) {
			t.Fatalf("got %q %q %v, want %q %q", dest, payload, err, wantDest, wantPayload)
		}
	})
}

// FuzzStreamReader encrypts data with each stream family and reads it back through
// fuzzed read sizes; the raw input must also handshake or fail without panicking.
func FuzzStreamReader(f *testing.F) {
	f.Add([]byte("hello"), uint8(0))                          // one byte per read
	f.Add(bytes.Repeat([]byte{1}, 70000), uint8(200))         // longer than a pooled buffer
	f.Add([]byte{1, 127, 0, 0, 1, 0, 80, 'h', 'i'}, uint8(3)) // an IPv4 request
	f.Add([]byte{}, uint8(9))                                 // nothing
	ciphers := []*Cipher{mustCipher(f, "aes-128-cfb"), mustCipher(f, "aes-256-ctr"), mustCipher(f, "chacha20-ietf")}
	f.Fuzz(func(t *testing.T, data []byte, readSize uint8) {
		for _, ciph := range ciphers {
			iv := make([]byte, ciph.saltLen)
			enc, err := ciph.stream(iv, false)
			if err != nil {
				t.Fatal(err)
			}
			e := &streamEncoder{stream: enc, iv: iv}
			var stream []byte
			for p := data; len(p) > 0 || stream == nil; {
				rec, n := e.encode(make([]byte, 0, 1000), p)
				stream = append(stream, rec...)
				p = p[n:]
			}
			r := &streamReader{src: smallReads{bytes.NewReader(stream), int(readSize) + 1}, iv: make([]byte, ciph.saltLen), ciph: ciph}
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("%s: got %d of %d bytes, %v", ciph.name, len(got), len(data), err)
			}

			if dest, _, err := serve(NewServer(ciph, ServerOptions{Logger: quiet}), data); err == nil {
				if _, _, err := net.SplitHostPort(dest); err != nil {
					t.Fatalf("%s: accepted destination %q: %v", ciph.name, dest, err)
				}
			}
		}
	})
}
