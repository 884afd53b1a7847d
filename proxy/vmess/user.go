package vmess

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
)

// User is one VMess account. AlterID > 0 selects the legacy (MD5) header on a client and
// makes a server with AllowLegacy recognise the derived alter IDs as well.
type User struct {
	ID      [16]byte
	AlterID int
	Email   string
}

// MaxAlterID bounds AlterID; V2Ray stores it in 16 bits.
const MaxAlterID = 65535

// ParseUUID parses the canonical 8-4-4-4-12 hex form of a UUID.
func ParseUUID(s string) ([16]byte, error) {
	var id [16]byte
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, fmt.Errorf("vmess: bad uuid %q: want 8-4-4-4-12 hex digits", s)
	}
	hexDigits := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:36]
	if _, err := hex.Decode(id[:], []byte(hexDigits)); err != nil {
		return id, fmt.Errorf("vmess: bad uuid %q: %w", s, err)
	}
	return id, nil
}

func formatUUID(id [16]byte) string {
	h := hex.EncodeToString(id[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func (u User) validate() error {
	if u.AlterID < 0 || u.AlterID > MaxAlterID {
		return fmt.Errorf("vmess: user %s: alterId %d out of range 0..%d", formatUUID(u.ID), u.AlterID, MaxAlterID)
	}
	return nil
}

// cmdKey is the key of the request header: MD5(id || fixed salt).
func cmdKey(id [16]byte) [16]byte {
	h := md5.New()
	h.Write(id[:])
	h.Write([]byte("c48619fe-8f02-49e0-b9e9-edf763e17e21"))
	var k [16]byte
	h.Sum(k[:0])
	return k
}

// alterIDs derives the n alter IDs of a legacy account, each from the one before:
// MD5(prev || salt), re-hashed with a second salt in the (astronomically unlikely)
// case that the result repeats prev.
func alterIDs(id [16]byte, n int) [][16]byte {
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
		ids[i] = next
		prev = next
	}
	return ids
}
