package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"
)

// Stutter says how a TimeoutReader cuts its input: pieces of 1..MaxPiece bytes (random
// sizes when MaxPiece > 1), and a read deadline expiring before a piece with odds
// 1/TimeoutOdds (1: before every piece). Seed makes the sizes and points repeatable.
type Stutter struct {
	Name        string
	MaxPiece    int
	TimeoutOdds int
	Seed        uint64
}

// Stutters are the standard cuts: one byte after every timeout; small random pieces
// after every timeout; larger random pieces with timeouts at random points.
var Stutters = []Stutter{
	{Name: "onebyte", MaxPiece: 1, TimeoutOdds: 1, Seed: 1},
	{Name: "small", MaxPiece: 61, TimeoutOdds: 1, Seed: 2},
	{Name: "random", MaxPiece: 5000, TimeoutOdds: 3, Seed: 3},
}

// TimeoutReader returns its source's bytes in the pieces its Stutter asks for, with a
// timeout (a *net.OpError around os.ErrDeadlineExceeded, as a read deadline gives) before
// them. A timed-out call consumes nothing, so the call after a timeout always delivers:
// a reader above that retries makes progress.
//
// It is also a proxy.ReadWaiter (by method set): WaitReadable times out on the same
// schedule as Read, so the waits of the layers above are cut as well.
type TimeoutReader struct {
	r        io.Reader
	s        Stutter
	rng      *rand.Rand
	decided  bool // the next piece has had its timeout, or been spared one
	injected int
}

// NewTimeoutReader returns r cut as s says.
func NewTimeoutReader(r io.Reader, s Stutter) *TimeoutReader {
	return &TimeoutReader{r: r, s: s, rng: rand.New(rand.NewPCG(s.Seed, 0x7e57))}
}

// Timeouts returns how many timeouts it has returned.
func (t *TimeoutReader) Timeouts() int { return t.injected }

func (t *TimeoutReader) timeout() error {
	if t.decided {
		return nil
	}
	t.decided = true
	if t.s.TimeoutOdds > 1 && t.rng.IntN(t.s.TimeoutOdds) != 0 {
		return nil
	}
	t.injected++
	return &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
}

func (t *TimeoutReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if err := t.timeout(); err != nil {
		return 0, err
	}
	t.decided = false
	n := 1
	if t.s.MaxPiece > 1 {
		n = 1 + t.rng.IntN(t.s.MaxPiece)
	}
	return t.r.Read(p[:min(n, len(p))])
}

// WaitReadable times out where a Read would; otherwise it returns at once.
func (t *TimeoutReader) WaitReadable() error { return t.timeout() }

// IsTimeout reports whether err is a read deadline passing.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}

// retrier checks the timeouts a reader above a TimeoutReader reports: each must be a
// new one from the source. A timeout reported again without the source timing out since
// is a stale, sticky error, and the stream is stuck on it.
type retrier struct {
	src  *TimeoutReader
	last int // src.Timeouts() at the previous report
}

func (r *retrier) fresh(err error) error {
	if r.src.Timeouts() == r.last {
		return fmt.Errorf("harness: timeout reported again with none from the source since (sticky): %w", err)
	}
	r.last = r.src.Timeouts()
	return nil
}

// ReadAllRetrying reads r to EOF with buffers of random sizes (from seed), calling Read
// again after every timeout as a relay does once the source turns readable. src is the
// TimeoutReader beneath r; a stale timeout is an error.
func ReadAllRetrying(r io.Reader, src *TimeoutReader, seed uint64) ([]byte, error) {
	rng := rand.New(rand.NewPCG(seed, 0xbeef))
	buf := make([]byte, 4096)
	var out []byte
	check := retrier{src: src}
	empty := 0
	for {
		n, err := r.Read(buf[:1+rng.IntN(len(buf))])
		out = append(out, buf[:n]...)
		switch {
		case err == io.EOF:
			return out, nil
		case IsTimeout(err):
			if err := check.fresh(err); err != nil {
				return out, err
			}
		case err != nil:
			return out, err
		case n == 0:
			if empty++; empty == 100 {
				return out, io.ErrNoProgress
			}
			continue
		}
		empty = 0
	}
}

// WriteToRetrying drains wt with WriteTo, calling it again after every timeout; a stale
// timeout is an error, as in ReadAllRetrying.
func WriteToRetrying(wt io.WriterTo, src *TimeoutReader) ([]byte, error) {
	var out bytes.Buffer
	check := retrier{src: src}
	for {
		_, err := wt.WriteTo(&out)
		switch {
		case err == nil:
			return out.Bytes(), nil
		case IsTimeout(err):
			if err := check.fresh(err); err != nil {
				return out.Bytes(), err
			}
		default:
			return out.Bytes(), err
		}
	}
}

// StutterConn is a net.Conn with no network behind it, for replaying recorded ciphertext:
// reads play Prefix as it is, then In; writes are kept. In is typically a TimeoutReader,
// set once the bytes to replay are known; Prefix carries a handshake, which by design
// fails on a timeout. Waits (WaitReadable) go to In once Prefix is read. Deadlines are
// accepted and ignored; addresses are fixed loopback ones.
type StutterConn struct {
	Prefix []byte
	In     io.Reader

	mu  sync.Mutex
	out bytes.Buffer
}

func (c *StutterConn) Read(p []byte) (int, error) {
	if len(c.Prefix) > 0 {
		n := copy(p, c.Prefix)
		c.Prefix = c.Prefix[n:]
		return n, nil
	}
	return c.In.Read(p)
}

// WaitReadable returns at once while Prefix lasts, then waits as In does, if it can.
func (c *StutterConn) WaitReadable() error {
	if w, ok := c.In.(interface{ WaitReadable() error }); ok && len(c.Prefix) == 0 {
		return w.WaitReadable()
	}
	return nil
}

func (c *StutterConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}

// Written returns a copy of everything written so far.
func (c *StutterConn) Written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}

func (c *StutterConn) Close() error { return nil }
func (c *StutterConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1080}
}
func (c *StutterConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}
}
func (c *StutterConn) SetDeadline(time.Time) error      { return nil }
func (c *StutterConn) SetReadDeadline(time.Time) error  { return nil }
func (c *StutterConn) SetWriteDeadline(time.Time) error { return nil }
