package vmess

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"testing"

	"github.com/proxychain/proxychain/proxy/internal/bufpool"
	"github.com/proxychain/proxychain/test/harness"
)

// recordingWriter keeps what it is given and how many writes it took. With cut > 0 it
// takes only cut bytes of the first write and fails it, as a deadline would; with cut < 0
// it fails the first write with nothing taken.
type recordingWriter struct {
	bytes.Buffer
	writes, largest int
	cut             int
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	w.writes++
	w.largest = max(w.largest, len(p))
	if w.cut < 0 {
		w.cut = 0
		return 0, timeoutErr{}
	}
	if w.cut > 0 && len(p) > w.cut {
		n, _ := w.Buffer.Write(p[:w.cut])
		w.cut = 0
		return n, timeoutErr{}
	}
	return w.Buffer.Write(p)
}

// TestWriteBatches: one Write goes out in one write beneath per maxBatchPayload bytes,
// and a write cut short inside a batch still decodes whole after the retry.
func TestWriteBatches(t *testing.T) {
	payload := make([]byte, 2*maxBatchPayload+maxChunkPayload/2+3)
	rand.Read(payload)
	for _, sec := range securities {
		for _, cut := range []int{0, -1, 1, maxChunkPayload + 100} {
			m := newMemSession(t, sec, 0)
			out := &recordingWriter{}
			w := chunkWriter{w: out, f: m.spec().framer(m.rkey, m.riv)}
			if w.f == nil {
				continue // "zero": a raw body is the connection's own writes
			}
			// 15 one-byte chunks first, so that the batch's masking draws cross a
			// refill of the mask buffer, which a rollback must survive.
			warm := []byte("fifteen bytes!!")
			for i := range warm {
				w.Write(warm[i : i+1])
			}
			out.cut, out.writes = cut, 0
			n, err := w.Write(payload)
			if cut == 0 {
				if n != len(payload) || err != nil {
					t.Fatalf("%s: Write = %d, %v", sec, n, err)
				}
				if want := 3; out.writes != want {
					t.Fatalf("%s: %d writes beneath for %d bytes, want %d", sec, out.writes, len(payload), want)
				}
			} else if cut < 0 {
				// Nothing went out: the framing is rolled back and the retry starts over.
				if n != 0 || err == nil {
					t.Fatalf("%s: failed write = %d, %v; want 0 and the timeout", sec, n, err)
				}
				if _, err := w.Write(payload); err != nil {
					t.Fatalf("%s: retry: %v", sec, err)
				}
			} else {
				// The cut batch counts as written; its tail goes out first next time.
				if n != maxBatchPayload || err == nil {
					t.Fatalf("%s: cut at %d: Write = %d, %v; want %d and the timeout", sec, cut, n, err, maxBatchPayload)
				}
				if _, err := w.Write(payload[n:]); err != nil {
					t.Fatalf("%s: retry: %v", sec, err)
				}
			}
			if err := w.end(); err != nil {
				t.Fatal(err)
			}
			r := newChunkReader(bytes.NewReader(out.Bytes()))
			r.startBody(m.spec().framer(m.rkey, m.riv))
			got, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(got, append(warm, payload...)) {
				t.Fatalf("%s: cut %d: read back %d of %d bytes, %v", sec, cut, len(got), len(payload), err)
			}
		}
	}
}

// TestWriteToJoinsChunks: small chunks already buffered reach the writer in one Write
// (and the reader of a Read in one call), a backlog is read in large buffers, and a chunk
// that fails authentication stops delivery exactly where it is.
func TestWriteToJoinsChunks(t *testing.T) {
	const chunk, count = 1000, 300
	payload := make([]byte, chunk*count)
	rand.Read(payload)
	for _, sec := range securities {
		m := newMemSession(t, sec, 0)
		var wire bytes.Buffer
		w := chunkWriter{w: &wire, f: m.spec().framer(m.rkey, m.riv)}
		if w.f == nil {
			continue // "zero": no chunks
		}
		var ends []int // where each chunk ends on the wire
		for p := payload; len(p) > 0; p = p[chunk:] {
			w.Write(p[:chunk])
			ends = append(ends, wire.Len())
		}
		w.end()

		r := newChunkReader(bytes.NewReader(wire.Bytes()))
		r.startBody(m.spec().framer(m.rkey, m.riv))
		out := &recordingWriter{}
		if n, err := r.WriteTo(out); n != int64(len(payload)) || err != nil || !bytes.Equal(out.Bytes(), payload) {
			t.Fatalf("%s: WriteTo = %d, %v; %d bytes match", sec, n, err, len(out.Bytes()))
		}
		if out.writes >= count/5 {
			t.Fatalf("%s: %d writes for %d chunks: buffered chunks are not joined", sec, out.writes, count)
		}
		if out.largest <= bufpool.Size {
			t.Fatalf("%s: largest write %d bytes: a saturated reader did not grow past %d", sec, out.largest, bufpool.Size)
		}

		// Read fills the caller's buffer from every chunk buffered, not from one.
		r = newChunkReader(bytes.NewReader(wire.Bytes()))
		r.startBody(m.spec().framer(m.rkey, m.riv))
		buf := make([]byte, 64<<10)
		if n, err := r.Read(buf); err != nil || n <= 5*chunk || !bytes.Equal(buf[:n], payload[:n]) {
			t.Fatalf("%s: first Read = %d, %v; want several chunks' payload", sec, n, err)
		}

		if w.f.aead == nil {
			continue // "none": no authentication to fail
		}
		bad := 150
		tampered := bytes.Clone(wire.Bytes())
		tampered[ends[bad-1]+w.f.sizeLen()] ^= 1 // chunk bad's first sealed byte
		r = newChunkReader(bytes.NewReader(tampered))
		r.startBody(m.spec().framer(m.rkey, m.riv))
		out = &recordingWriter{}
		n, err := r.WriteTo(out)
		if !errors.Is(err, ErrChunk) || n != int64(bad*chunk) || !bytes.Equal(out.Bytes(), payload[:bad*chunk]) {
			t.Fatalf("%s: tampered: WriteTo = %d, %v; want %d bytes and ErrChunk", sec, n, err, bad*chunk)
		}
		r = newChunkReader(bytes.NewReader(tampered))
		r.startBody(m.spec().framer(m.rkey, m.riv))
		got, err := io.ReadAll(r)
		if !errors.Is(err, ErrChunk) || !bytes.Equal(got, payload[:bad*chunk]) {
			t.Fatalf("%s: tampered: ReadAll = %d bytes, %v; want %d bytes and ErrChunk", sec, len(got), err, bad*chunk)
		}
	}
}

// TestLayeredReadIsOneWrite: read through another layer that hands up a saturated read's
// worth at a time (a Shadowsocks conn beneath, say), the reader takes each of those in one
// read behind its unfinished chunk, so the chunks go on in one write per read and not in a
// write and a sliver. The chunks are Xray's size, which does not divide the reads.
func TestLayeredReadIsOneWrite(t *testing.T) {
	const chunk, batches = 8110, 40
	payload := make([]byte, bufpool.LargeSize*batches)
	rand.Read(payload)
	m := newMemSession(t, "aes-128-gcm", 0)
	var wire bytes.Buffer
	w := chunkWriter{w: &wire, f: m.spec().framer(m.rkey, m.riv)}
	for p := payload; len(p) > 0; p = p[min(chunk, len(p)):] {
		w.Write(p[:min(chunk, len(p))])
	}
	w.end()

	src := harness.NewLayerReader(wire.Bytes(), bufpool.LargeSize)
	r := newChunkReader(src)
	r.startBody(m.spec().framer(m.rkey, m.riv))
	defer r.release()
	out := &recordingWriter{}
	if n, err := r.WriteTo(out); n != int64(len(payload)) || err != nil || !bytes.Equal(out.Bytes(), payload) {
		t.Fatalf("WriteTo = %d, %v; %d bytes match", n, err, len(out.Bytes()))
	}
	// The first read, before the reader knows the stream is saturated, may be split.
	if out.writes > src.Batches+2 {
		t.Fatalf("%d writes for %d reads beneath: reads through a layer leave remainders", out.writes, src.Batches)
	}
}
