package shadowsocks

import (
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/proxychain/proxychain/proxy/internal/bufpool"
)

var benchMethods = []string{"aes-128-gcm", "chacha20-ietf-poly1305", "2022-blake3-aes-256-gcm", "aes-256-cfb", "chacha20-ietf", "none"}

// BenchmarkEncrypt measures one 16 KiB record after the first: the steady state of a
// relay's Write.
func BenchmarkEncrypt(b *testing.B) {
	for _, m := range benchMethods {
		b.Run(m, func(b *testing.B) {
			ciph := mustCipher(b, m)
			c, err := NewClient("b", "unused:1", ciph, nil).wrap(newMemConn(nil), addrBytes(b, "example.com:443"))
			if err != nil {
				b.Fatal(err)
			}
			buf := bufpool.Get()
			defer bufpool.Put(buf)
			payload := pattern(16<<10, 1)
			c.enc.encode((*buf)[:0], []byte("x"))
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				for p := payload; len(p) > 0; {
					_, n := c.enc.encode((*buf)[:0], p)
					p = p[n:]
				}
			}
		})
	}
}

// loopReader replays data forever, so a decoder can run for b.N records.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := copy(p, l.data[l.off:])
	l.off = (l.off + n) % len(l.data)
	return n, nil
}

// BenchmarkDecrypt measures reading 16 KiB of payload through WriteTo, the relay's path.
// The AEAD stream replays one record under a fixed nonce, which decryption does not mind.
func BenchmarkDecrypt(b *testing.B) {
	for _, m := range benchMethods {
		b.Run(m, func(b *testing.B) {
			ciph := mustCipher(b, m)
			payload := pattern(16<<10, 2)
			var dec decoder
			switch ciph.family {
			case familyAEAD, family2022:
				sl, _, err := newSealer(ciph)
				if err != nil {
					b.Fatal(err)
				}
				aead := sl.aead
				var records []byte
				for p := payload; len(p) > 0; {
					n := min(len(p), maxPayload)
					records = sl.chunk(records, nil, p[:n])
					p = p[n:]
				}
				cr := newChunkReader(nil, maxPayload2022)
				cr.aead = aead
				dec = &nonceResetter{cr: cr, src: bytes.NewReader(nil), records: records}
			case familyStream:
				iv := make([]byte, ciph.saltLen)
				s, err := ciph.stream(iv, true)
				if err != nil {
					b.Fatal(err)
				}
				dec = &streamReader{src: &loopReader{data: payload}, stream: s}
			default:
				dec = plainReader{&loopReader{data: payload}}
			}
			defer dec.release()
			out := make([]byte, len(payload))
			b.SetBytes(int64(len(payload)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := io.ReadFull(dec, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// nonceResetter feeds a chunk reader the same records again with its nonce rewound.
type nonceResetter struct {
	cr      *chunkReader
	src     *bytes.Reader
	records []byte
}

func (n *nonceResetter) Read(p []byte) (int, error) {
	if len(n.cr.plain) == 0 && n.src.Len() == 0 && n.cr.w == n.cr.r {
		n.src.Reset(n.records)
		n.cr.src = n.src
		n.cr.nonce = [nonceLen]byte{}
	}
	return n.cr.Read(p)
}

func (n *nonceResetter) WriteTo(w io.Writer) (int64, error) {
	return io.Copy(w, struct{ io.Reader }{n})
}

func (n *nonceResetter) buffered() bool { return n.cr.buffered() }

func (n *nonceResetter) release() { n.cr.release() }

// countingDiscard counts the writes it is given, standing in for the relay's socket.
type countingDiscard struct{ writes int }

func (c *countingDiscard) Write(p []byte) (int, error) {
	c.writes++
	return len(p), nil
}

// BenchmarkAEADWriteTo measures the relay's down path for an AEAD stream: 4 MiB in
// records of 1 KiB (a peer flushing small reads) and of the 16 KiB maximum, through
// WriteTo. writes/op is how many write(2) calls the relay would make for it.
func BenchmarkAEADWriteTo(b *testing.B) {
	const body = 4 << 20
	for _, record := range []int{1 << 10, maxPayload} {
		b.Run(fmt.Sprintf("aes-128-gcm/%dB", record), func(b *testing.B) {
			sl, _, err := newSealer(mustCipher(b, "aes-128-gcm"))
			if err != nil {
				b.Fatal(err)
			}
			var records []byte
			payload := make([]byte, record)
			for left := body; left > 0; left -= record {
				records = sl.chunk(records, nil, payload[:min(left, record)])
			}
			src := bytes.NewReader(records)
			var sink countingDiscard
			b.SetBytes(body)
			b.ReportAllocs()
			for b.Loop() {
				src.Reset(records)
				cr := newChunkReader(src, maxPayload)
				cr.aead = sl.aead
				if n, err := cr.WriteTo(&sink); n != body || err != nil {
					b.Fatalf("WriteTo: %d bytes, %v", n, err)
				}
				cr.release()
			}
			b.ReportMetric(float64(sink.writes)/float64(b.N), "writes/op")
		})
	}
}
