package harness

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

const (
	headerMagic = "PCX1"
	headerLen   = len(headerMagic) + 3*8

	// exchangeTimeout bounds every connection the harness drives or serves.
	exchangeTimeout = 60 * time.Second

	// maxStreamLen bounds what a target agrees to send, so a garbled header cannot
	// keep it streaming for the whole deadline.
	maxStreamLen = 1 << 34

	chunkLen = 32 << 10

	// Direction bytes mixed into the stream key, so the down stream is never an echo of
	// the up stream: a relay that reflects the client's bytes must not pass.
	dirUp   = 'u'
	dirDown = 'd'
)

// header opens every exchange: how many bytes the client will send and wants back, and
// the seed both streams derive from.
type header struct {
	up, down int64
	seed     uint64
}

func (h header) marshal() []byte {
	b := make([]byte, 0, headerLen)
	b = append(b, headerMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(h.up))
	b = binary.BigEndian.AppendUint64(b, uint64(h.down))
	return binary.BigEndian.AppendUint64(b, h.seed)
}

var errHeader = errors.New("harness: bad exchange header")

func parseHeader(b []byte) (header, error) {
	if len(b) != headerLen || string(b[:len(headerMagic)]) != headerMagic {
		return header{}, fmt.Errorf("%w: %x", errHeader, b)
	}
	b = b[len(headerMagic):]
	up := binary.BigEndian.Uint64(b)
	down := binary.BigEndian.Uint64(b[8:])
	if up > maxStreamLen || down > maxStreamLen {
		return header{}, fmt.Errorf("%w: up %d, down %d bytes exceed %d", errHeader, up, down, int64(maxStreamLen))
	}
	return header{up: int64(up), down: int64(down), seed: binary.BigEndian.Uint64(b[16:])}, nil
}

// stream returns the deterministic bytes one direction of an exchange carries.
func stream(seed uint64, dir byte) *rand.ChaCha8 {
	var key [32]byte
	binary.BigEndian.PutUint64(key[:], seed)
	key[8] = dir
	return rand.NewChaCha8(key)
}

// sendStream writes n bytes of src to w and returns their sha256.
func sendStream(w io.Writer, src *rand.ChaCha8, n int64) ([sha256.Size]byte, error) {
	sum := sha256.New()
	buf := make([]byte, chunkLen)
	for sent := int64(0); sent < n; {
		chunk := buf[:min(int64(len(buf)), n-sent)]
		src.Read(chunk)
		sum.Write(chunk)
		m, err := w.Write(chunk)
		sent += int64(m)
		if err != nil {
			return [sha256.Size]byte{}, fmt.Errorf("sent %d of %d bytes: %w", sent, n, err)
		}
	}
	return [sha256.Size]byte(sum.Sum(nil)), nil
}

// Exchange drives one connection to a Target over conn, which may pass through any
// chain of proxies. It sends a header and up bytes while reading down bytes back, then
// checks that the target received exactly what was sent (by the sha256 the target
// reports in-band) and that exactly the target's stream came back. Finally it
// half-closes conn and expects the target's EOF. Exchange closes conn.
//
// conn must be able to half-close (have a CloseWrite method), as every proxychain
// conn wrapper does. Errors are returned, not reported, so Exchange can run in any
// goroutine; they name the seed so a failure can be replayed.
func Exchange(conn net.Conn, up, down int64) error {
	defer conn.Close()
	if up < 0 || down < 0 || up > maxStreamLen || down > maxStreamLen {
		return fmt.Errorf("harness: exchange sizes out of range: up %d, down %d", up, down)
	}
	h := header{up: up, down: down, seed: rand.Uint64()}
	if err := exchange(conn, h); err != nil {
		return fmt.Errorf("harness: exchange (seed %#x, up %d, down %d bytes): %w", h.seed, up, down, err)
	}
	return nil
}

func exchange(conn net.Conn, h header) error {
	closeWriter, ok := conn.(interface{ CloseWrite() error })
	if !ok {
		return fmt.Errorf("conn %T has no CloseWrite method", conn)
	}
	if err := conn.SetDeadline(time.Now().Add(exchangeTimeout)); err != nil {
		return fmt.Errorf("set deadline: %w", err)
	}

	// The first failure closes conn to unblock the other direction; later failures are
	// usually its consequence, so only the first is reported.
	var (
		failOnce sync.Once
		firstErr error
	)
	fail := func(err error) {
		failOnce.Do(func() {
			firstErr = err
			conn.Close()
		})
	}

	var sentSum [sha256.Size]byte
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		if _, err := conn.Write(h.marshal()); err != nil {
			fail(fmt.Errorf("send header: %w", err))
			return
		}
		sum, err := sendStream(conn, stream(h.seed, dirUp), h.up)
		if err != nil {
			fail(fmt.Errorf("up stream: %w", err))
			return
		}
		sentSum = sum
	}()

	reportedSum, err := receiveDown(conn, h)
	if err != nil {
		fail(err)
	}
	<-sent
	if firstErr != nil {
		return firstErr
	}
	if reportedSum != sentSum {
		return fmt.Errorf("target received other bytes than were sent: its sha256 %x, sent %x", reportedSum, sentSum)
	}
	if err := closeWriter.CloseWrite(); err != nil {
		return fmt.Errorf("half-close: %w", err)
	}
	return expectEOF(conn)
}

// receiveDown reads the target's down stream, comparing it chunk by chunk with the
// expected one, then the sha256 the target computed of the up stream.
func receiveDown(r io.Reader, h header) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	want := stream(h.seed, dirDown)
	got := make([]byte, chunkLen)
	expected := make([]byte, chunkLen)
	for received := int64(0); received < h.down; {
		n := min(int64(len(got)), h.down-received)
		m, err := io.ReadFull(r, got[:n])
		want.Read(expected[:m])
		if i := firstDifference(got[:m], expected[:m]); i >= 0 {
			return sum, fmt.Errorf("down stream differs from the target's at byte %d", received+int64(i))
		}
		received += int64(m)
		if err != nil {
			return sum, fmt.Errorf("down stream ended after %d of %d bytes: %w", received, h.down, err)
		}
	}
	if _, err := io.ReadFull(r, sum[:]); err != nil {
		return sum, fmt.Errorf("read the target's sha256 of the up stream: %w", err)
	}
	return sum, nil
}

func firstDifference(a, b []byte) int {
	if bytes.Equal(a, b) {
		return -1
	}
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// expectEOF checks that nothing follows the target's report.
func expectEOF(r io.Reader) error {
	var extra [512]byte
	n, err := io.ReadFull(r, extra[:])
	switch {
	case n > 0:
		return fmt.Errorf("%d unexpected bytes after the target's report: %x", n, extra[:n])
	case errors.Is(err, io.EOF):
		return nil
	default:
		return fmt.Errorf("wait for the target's EOF: %w", err)
	}
}

// ExchangeMany runs n Exchanges concurrently, each on a connection from dial, and returns
// the first error to happen (later ones are often its consequence).
func ExchangeMany(n int, dial func() (net.Conn, error), up, down int64) error {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	record := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	for i := range n {
		wg.Go(func() {
			conn, err := dial()
			if err != nil {
				record(fmt.Errorf("harness: dial for exchange %d of %d: %w", i, n, err))
				return
			}
			if err := Exchange(conn, up, down); err != nil {
				record(fmt.Errorf("exchange %d of %d: %w", i, n, err))
			}
		})
	}
	wg.Wait()
	return firstErr
}
