package shadowsocks

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/proxychain/proxychain/proxy/internal/bufpool"
	"github.com/proxychain/proxychain/test/harness"
)

// countingConn counts the writes that reach the connection beneath.
type countingConn struct {
	*memConn
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes++
	return c.memConn.Write(p)
}

// TestWriteIsOneRecordBatch: a Write of a relay buffer, small or large, plus the framing
// of the layers inside goes out in one write beneath, whatever the method's record size,
// and decodes whole.
func TestWriteIsOneRecordBatch(t *testing.T) {
	for _, size := range []int{bufpool.Size + 100, bufpool.LargeSize + 2<<10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) { testWriteIsOneRecordBatch(t, pattern(size, 5)) })
	}
}

func testWriteIsOneRecordBatch(t *testing.T, payload []byte) {
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		raw := &countingConn{memConn: newMemConn(nil)}
		c, err := NewClient("t", "unused:1", ciph, nil).wrap(raw, addrBytes(t, "example.com:443"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 3 {
			if n, err := c.Write(payload); n != len(payload) || err != nil {
				t.Fatalf("write %d: %d, %v", i, n, err)
			}
			if raw.writes != i+1 {
				t.Fatalf("write %d of %d bytes made %d writes beneath, want 1", i, len(payload), raw.writes-i)
			}
		}
		dest, got, err := serve(NewServer(ciph, ServerOptions{Logger: quiet}), raw.written())
		if err != nil || dest != "example.com:443" || !bytes.Equal(got, bytes.Repeat(payload, 3)) {
			t.Fatalf("served %q, %d bytes, %v", dest, len(got), err)
		}
	})
}

// writeCounter keeps what it is given, counts the writes and notes the largest.
type writeCounter struct {
	bytes.Buffer
	writes, largest int
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes++
	w.largest = max(w.largest, len(p))
	return w.Buffer.Write(p)
}

// TestWriteToJoinsRecords: small AEAD records already buffered reach the writer in one
// Write (and the reader of a Read in one call), a backlog is read in large buffers, and a
// record that fails authentication stops delivery exactly where it is.
func TestWriteToJoinsRecords(t *testing.T) {
	const record, count = 1000, 300
	payload := pattern(record*count, 9)
	for _, m := range []string{"aes-128-gcm", "chacha20-ietf-poly1305"} {
		sl, _, err := newSealer(mustCipher(t, m))
		if err != nil {
			t.Fatal(err)
		}
		aead := sl.aead
		var wire []byte
		var ends []int
		for p := payload; len(p) > 0; p = p[record:] {
			wire = sl.chunk(wire, nil, p[:record])
			ends = append(ends, len(wire))
		}
		decode := func(wire []byte) (*writeCounter, int64, error) {
			cr := newChunkReader(bytes.NewReader(wire), maxPayload)
			cr.aead = aead
			defer cr.release()
			out := &writeCounter{}
			n, err := cr.WriteTo(out)
			return out, n, err
		}
		out, n, err := decode(wire)
		if n != int64(len(payload)) || err != nil || !bytes.Equal(out.Bytes(), payload) {
			t.Fatalf("%s: WriteTo = %d, %v", m, n, err)
		}
		if out.writes >= count/5 {
			t.Fatalf("%s: %d writes for %d records: buffered records are not joined", m, out.writes, count)
		}
		if out.largest <= bufpool.Size {
			t.Fatalf("%s: largest write %d bytes: a saturated reader did not grow past %d", m, out.largest, bufpool.Size)
		}
		bad := 150
		tampered := bytes.Clone(wire)
		tampered[ends[bad]-1] ^= 1 // the tag of record bad's payload
		out, n, err = decode(tampered)
		if !errors.Is(err, ErrAuth) || n != int64(bad*record) || !bytes.Equal(out.Bytes(), payload[:bad*record]) {
			t.Fatalf("%s: tampered: WriteTo = %d, %v; want %d bytes and ErrAuth", m, n, err, bad*record)
		}
		cr := newChunkReader(bytes.NewReader(tampered), maxPayload)
		cr.aead = aead
		// Read fills the caller's buffer from every record buffered, not from one, and
		// stops exactly at the bad one.
		buf := make([]byte, 64<<10)
		n1, err := cr.Read(buf)
		if err != nil || n1 <= 5*record {
			t.Fatalf("%s: first Read = %d, %v; want several records' payload", m, n1, err)
		}
		rest, err := io.ReadAll(cr)
		if got := append(buf[:n1], rest...); !errors.Is(err, ErrAuth) || !bytes.Equal(got, payload[:bad*record]) {
			t.Fatalf("%s: tampered: Read = %d bytes, %v; want %d bytes and ErrAuth", m, len(got), err, bad*record)
		}
		cr.release()
	}
}

// TestLayeredReadIsOneWrite: read through another layer that hands up a saturated read's
// worth at a time (the outer Shadowsocks conn of two hops, say), the reader takes each of
// those in one read behind its unfinished record, so the records go on in one write per
// read and not in a write and a sliver.
func TestLayeredReadIsOneWrite(t *testing.T) {
	const record, batches = 10000, 40
	payload := pattern(bufpool.LargeSize*batches, 4)
	sl, _, err := newSealer(mustCipher(t, "aes-128-gcm"))
	if err != nil {
		t.Fatal(err)
	}
	var wire []byte
	for p := payload; len(p) > 0; p = p[min(record, len(p)):] {
		wire = sl.chunk(wire, nil, p[:min(record, len(p))])
	}
	src := harness.NewLayerReader(wire, bufpool.LargeSize)
	cr := newChunkReader(src, maxPayload)
	cr.aead = sl.aead
	defer cr.release()
	out := &writeCounter{}
	if n, err := cr.WriteTo(out); n != int64(len(payload)) || err != nil || !bytes.Equal(out.Bytes(), payload) {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	// The first read, before the reader knows the stream is saturated, may be split.
	if out.writes > src.Batches+2 {
		t.Fatalf("%d writes for %d reads beneath: reads through a layer leave remainders", out.writes, src.Batches)
	}
}
