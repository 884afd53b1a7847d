package shadowsocks

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"
)

// SIP022 header constants (section 3.1.3).
const (
	typeRequest     = 0
	typeResponse    = 1
	maxPadding      = 900
	fixedHeaderLen  = 1 + 8 + 2 // type, timestamp, length
	timestampOffset = 1
)

func responseHeaderLen(saltLen int) int { return 1 + 8 + saltLen + 2 }

// checkTimestamp enforces the 30-second window: an older or newer header counts as a
// replay.
func checkTimestamp(ts uint64, now time.Time) error {
	d := now.Sub(time.Unix(int64(ts), 0))
	if d > timestampWindow || d < -timestampWindow {
		return fmt.Errorf("%w: off by %v", ErrTimestamp, d.Round(time.Second))
	}
	return nil
}

// request2022Encoder writes a SIP022 request stream. The salt and both header chunks go
// out in one record (the spec requires one write). The variable header carries the target
// address and as much of the first payload as fits; a header sent before any payload
// (the application reads first, or half-closes) carries random padding instead.
type request2022Encoder struct {
	sealer
	salt    []byte
	addr    []byte
	now     func() time.Time
	started bool
}

func (e *request2022Encoder) headerPending() bool { return !e.started }

func (e *request2022Encoder) encode(dst, p []byte) ([]byte, int) {
	if e.started {
		n := min(len(p), maxPayload)
		return e.chunk(dst, nil, p[:n]), n
	}
	e.started = true
	dst = append(dst, e.salt...)
	n := min(len(p), maxPayload-len(e.addr)-2)
	padding := 0
	if n == 0 {
		padding = 1 + rand.IntN(maxPadding)
	}
	start := len(dst)
	dst = append(dst, typeRequest)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.now().Unix()))
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(e.addr)+2+padding+n))
	dst = e.sealFrom(dst, start)

	start = len(dst)
	dst = append(dst, e.addr...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(padding))
	dst = append(dst, make([]byte, padding)...)
	dst = append(dst, p[:n]...)
	e.salt, e.addr = nil, nil
	return e.sealFrom(dst, start), n
}

// response2022Encoder writes a SIP022 response stream. Its fixed header names the request
// salt, binding the response to the request, and doubles as the first length chunk.
type response2022Encoder struct {
	sealer
	salt        []byte
	requestSalt []byte
	now         func() time.Time
	started     bool
}

func (e *response2022Encoder) headerPending() bool { return false }

func (e *response2022Encoder) encode(dst, p []byte) ([]byte, int) {
	n := min(len(p), maxPayload)
	if e.started {
		return e.chunk(dst, nil, p[:n]), n
	}
	e.started = true
	dst = append(dst, e.salt...)
	start := len(dst)
	dst = append(dst, typeResponse)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.now().Unix()))
	dst = append(dst, e.requestSalt...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	dst = e.sealFrom(dst, start)
	start = len(dst)
	dst = append(dst, p[:n]...)
	e.salt, e.requestSalt = nil, nil
	return e.sealFrom(dst, start), n
}

// readResponse2022 is a SIP022 client's preamble: the response salt and fixed header. The
// header must be a response, fresh, and bound to our request salt; its salt must not have
// been seen in the last minute.
func (c *chunkReader) readResponse2022(ciph *Cipher, requestSalt []byte, now func() time.Time, salts *saltSet) error {
	if c.aead == nil {
		if err := c.readSalt(ciph, requestSalt); err != nil {
			return err
		}
	}
	h, err := c.open(responseHeaderLen(ciph.saltLen), nil)
	if err != nil {
		return err
	}
	t := now()
	if h[0] != typeResponse {
		return c.fail(fmt.Errorf("%w: type %d, want %d", ErrHeader, h[0], typeResponse))
	}
	if err := checkTimestamp(binary.BigEndian.Uint64(h[timestampOffset:]), t); err != nil {
		return c.fail(err)
	}
	if !bytes.Equal(h[9:9+ciph.saltLen], requestSalt) {
		return c.fail(ErrBinding)
	}
	if !salts.add(c.salt, t) {
		return c.fail(ErrReplay)
	}
	c.next = int(binary.BigEndian.Uint16(h[9+ciph.saltLen:]))
	return nil
}
