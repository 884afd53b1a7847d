package harness

import (
	"context"
	"crypto/aes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"net"
	"strings"
	"sync"
	"time"
)

// VMessAuthWindow is how far a VMess request's time may be from the receiver's clock,
// in seconds, under either header.
const VMessAuthWindow = 120

// CheckVMessAuth checks first, the first 16 bytes a VMess client sent on a connection
// (at the time sentAt), against the header the client should speak for the user uuid:
// for alterID > 0 the legacy auth, HMAC-MD5 keyed by the user ID or one of its alterID
// derived IDs over the 8-byte big-endian unix time; for alterID 0 an AEAD auth ID, the
// AES-128 encryption under KDF(cmdKey, "AES Auth ID Encryption") of [time: 8][random: 4]
// [CRC32 of the 12: 4]. Either way the time must be within VMessAuthWindow of sentAt.
// The error says what the bytes are instead, when they are the other header.
//
// Everything is computed here from the protocol (see proxy/vmess's package doc), not by
// proxychain's code, so the check holds whatever that code does.
func CheckVMessAuth(first []byte, uuid string, alterID int, sentAt time.Time) error {
	if len(first) < 16 {
		return fmt.Errorf("vmess auth: only %d bytes were sent, want 16", len(first))
	}
	id, err := parseUUID(uuid)
	if err != nil {
		return err
	}
	auth := [16]byte(first[:16])
	now := sentAt.Unix()
	legacyTS, legacyID, isLegacy := openLegacyAuth(auth, id, alterID, now)
	aeadTS, isAEAD := openAEADAuthID(auth, id, now)
	switch {
	case alterID > 0 && isLegacy:
		return nil
	case alterID == 0 && isAEAD:
		return nil
	case alterID > 0 && isAEAD:
		return fmt.Errorf("vmess auth %x: want the legacy header (alterId %d), but it opens as a VMess AEAD auth ID of %s, time %+d s from now",
			auth, alterID, uuid, aeadTS-now)
	case alterID == 0 && isLegacy:
		return fmt.Errorf("vmess auth %x: want a VMess AEAD auth ID, but it is the legacy auth of %s (%s), time %+d s from now",
			auth, uuid, legacyID, legacyTS-now)
	case alterID > 0:
		return fmt.Errorf("vmess auth %x: not the legacy auth of %s or any of its %d alter IDs within %d s of %s, nor an AEAD auth ID",
			auth, uuid, alterID, VMessAuthWindow, sentAt.UTC().Format(time.RFC3339))
	}
	return fmt.Errorf("vmess auth %x: not an AEAD auth ID of %s within %d s of %s, nor a legacy auth",
		auth, uuid, VMessAuthWindow, sentAt.UTC().Format(time.RFC3339))
}

func parseUUID(s string) ([16]byte, error) {
	var id [16]byte
	h := strings.ReplaceAll(s, "-", "")
	if len(s) != 36 || len(h) != 32 {
		return id, fmt.Errorf("vmess auth: bad uuid %q", s)
	}
	if _, err := hex.Decode(id[:], []byte(h)); err != nil {
		return id, fmt.Errorf("vmess auth: bad uuid %q: %w", s, err)
	}
	return id, nil
}

// openLegacyAuth finds the ID (the user's own, or alter ID i) and the time within the
// window of now whose HMAC-MD5 is auth.
func openLegacyAuth(auth, id [16]byte, alterID int, now int64) (ts int64, which string, ok bool) {
	ids := append([][16]byte{id}, vmessAlterIDs(id, alterID)...)
	var msg [8]byte
	for i, key := range ids {
		m := hmac.New(md5.New, key[:])
		for ts := now - VMessAuthWindow; ts <= now+VMessAuthWindow; ts++ {
			m.Reset()
			binary.BigEndian.PutUint64(msg[:], uint64(ts))
			m.Write(msg[:])
			if hmac.Equal(m.Sum(nil), auth[:]) {
				which = "the user ID"
				if i > 0 {
					which = fmt.Sprintf("alter ID %d", i-1)
				}
				return ts, which, true
			}
		}
	}
	return 0, "", false
}

// vmessAlterIDs derives n alter IDs, each MD5(previous || salt), rehashed with a second
// salt in the case that the result repeats the previous one, as V2Ray's nextID does.
func vmessAlterIDs(id [16]byte, n int) [][16]byte {
	ids := make([][16]byte, n)
	prev := id
	for i := range ids {
		h := md5.New()
		h.Write(prev[:])
		h.Write([]byte("16167dc8-16b6-4e6d-b8bb-65dd68113a81"))
		var next [16]byte
		for {
			h.Sum(next[:0])
			if next != prev {
				break
			}
			h.Write([]byte("533eff8a-4113-4b10-b5ce-0f5d76b98cd2"))
		}
		ids[i], prev = next, next
	}
	return ids
}

// openAEADAuthID decrypts auth as the user's AEAD auth ID and reports its time if the
// checksum holds and the time is within the window of now.
func openAEADAuthID(auth, id [16]byte, now int64) (int64, bool) {
	ck := md5.Sum(append(id[:], "c48619fe-8f02-49e0-b9e9-edf763e17e21"...))
	block, err := aes.NewCipher(vmessKDF(ck[:], "AES Auth ID Encryption")[:16])
	if err != nil {
		return 0, false
	}
	var plain [16]byte
	block.Decrypt(plain[:], auth[:])
	if crc32.ChecksumIEEE(plain[:12]) != binary.BigEndian.Uint32(plain[12:]) {
		return 0, false
	}
	ts := int64(binary.BigEndian.Uint64(plain[:8]))
	if ts < now-VMessAuthWindow || ts > now+VMessAuthWindow {
		return ts, false
	}
	return ts, true
}

// vmessKDF is VMess AEAD's nested HMAC: HMAC-SHA256 keyed with "VMess AEAD KDF" is the
// hash of an HMAC keyed with path[0], which is the hash of one keyed with path[1], and so
// on; the outermost is applied to key.
func vmessKDF(key []byte, path ...string) []byte {
	newHash := func() hash.Hash { return hmac.New(sha256.New, []byte("VMess AEAD KDF")) }
	for _, p := range path {
		parent := newHash
		newHash = func() hash.Hash { return hmac.New(parent, []byte(p)) }
	}
	h := newHash()
	h.Write(key)
	return h.Sum(nil)
}

// HeadDialer wraps a Dialer and keeps the first 16 bytes written on every conn it dials,
// with when they were written: what a VMess client sends as its auth. Reads, CloseWrite
// and the rest pass through.
type HeadDialer struct {
	Dialer Dialer

	mu    sync.Mutex
	heads []*Head
}

// Head is the start of what a client wrote on one connection. The zero value is empty.
type Head struct {
	mu    sync.Mutex
	bytes []byte
	at    time.Time
}

// Bytes returns the bytes kept so far (up to 16) and when the first was written.
func (h *Head) Bytes() ([]byte, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]byte(nil), h.bytes...), h.at
}

// Keep adds the start of p to the head, up to 16 bytes in all; a tap of its own calls it
// with each chunk a client sends.
func (h *Head) Keep(p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.bytes) == 0 && len(p) > 0 {
		h.at = time.Now()
	}
	h.bytes = append(h.bytes, p[:min(len(p), 16-len(h.bytes))]...)
}

// DialContext dials through the wrapped Dialer and keeps the conn's head.
func (d *HeadDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.Dialer.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	h := new(Head)
	d.mu.Lock()
	d.heads = append(d.heads, h)
	d.mu.Unlock()
	return &headConn{Conn: c, head: h}, nil
}

// Heads returns the head of every conn dialed so far, in dial order.
func (d *HeadDialer) Heads() []*Head {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*Head(nil), d.heads...)
}

type headConn struct {
	net.Conn
	head *Head
}

func (c *headConn) Write(p []byte) (int, error) {
	c.head.Keep(p)
	return c.Conn.Write(p)
}

// CloseWrite half-closes the wrapped conn if it can, and does nothing otherwise.
func (c *headConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

var errNoHeads = errors.New("vmess auth: no connection was seen")

// CheckVMessHeads runs CheckVMessAuth on each head and returns the first failure, with
// how many of the heads failed. It fails on no heads, so a tap nothing went through
// cannot pass.
func CheckVMessHeads(heads []*Head, uuid string, alterID int) error {
	if len(heads) == 0 {
		return errNoHeads
	}
	var first error
	bad := 0
	for _, h := range heads {
		b, at := h.Bytes()
		if err := CheckVMessAuth(b, uuid, alterID, at); err != nil {
			bad++
			if first == nil {
				first = err
			}
		}
	}
	if first != nil {
		return fmt.Errorf("%d of %d connections: %w", bad, len(heads), first)
	}
	return nil
}
