package harness

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"
)

// The vectors are those of proxy/vmess/vectors_test.go, computed by an independent
// implementation (Python) for the spec's user at unix time 1700000000; the AEAD auth ID
// has random bytes 01 02 03 04.
const (
	vecUser       = "b12614c5-5ca4-4eba-a215-c61d642116ce"
	vecTime       = 1700000000
	vecLegacyAuth = "9ae612078deb9648954ab70e84431716" // HMAC-MD5(user ID, vecTime)
	vecAEADAuthID = "7726b376e6eb8b0f0ec2d257a3bb4c3e"
	vecAuthIDKDF  = "c93bba260a4ac9473758de9ac36f8cbb597fcf87fc424eca558041f258983b6e"
	vecAlterID0   = "16d406ee1ff36155e6673551460369d7"
	vecAlterID2   = "830922933aa3d260dadb824cbc816adf"
)

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVMessDerivations(t *testing.T) {
	id, err := parseUUID(vecUser)
	if err != nil {
		t.Fatal(err)
	}
	alts := vmessAlterIDs(id, 3)
	if got := hex.EncodeToString(alts[0][:]); got != vecAlterID0 {
		t.Errorf("alter ID 0 = %s, want %s", got, vecAlterID0)
	}
	if got := hex.EncodeToString(alts[2][:]); got != vecAlterID2 {
		t.Errorf("alter ID 2 = %s, want %s", got, vecAlterID2)
	}
	ck := unhex(t, "2d9fc25ca593845268f45d40e00d3815") // cmdKey of the user
	if got := hex.EncodeToString(vmessKDF(ck, "AES Auth ID Encryption")); got != vecAuthIDKDF {
		t.Errorf("KDF(cmdKey, auth id) = %s, want %s", got, vecAuthIDKDF)
	}
}

func TestCheckVMessAuth(t *testing.T) {
	at := time.Unix(vecTime, 0)
	legacy, aead := unhex(t, vecLegacyAuth), unhex(t, vecAEADAuthID)
	cases := []struct {
		name    string
		first   []byte
		alterID int
		sentAt  time.Time
		wantErr string // "" for accepted
	}{
		{"legacy as legacy", legacy, 64, at, ""},
		{"legacy, 120 s later", legacy, 64, at.Add(120 * time.Second), ""},
		{"legacy, 120 s earlier", legacy, 64, at.Add(-120 * time.Second), ""},
		{"legacy, 121 s later", legacy, 64, at.Add(121 * time.Second), "not the legacy auth"},
		{"aead as legacy", aead, 64, at, "opens as a VMess AEAD auth ID"},
		{"aead as aead", aead, 0, at, ""},
		{"aead, 121 s earlier", aead, 0, at.Add(-121 * time.Second), "not an AEAD auth ID"},
		{"legacy as aead", legacy, 0, at, "it is the legacy auth"},
		{"random", unhex(t, "00112233445566778899aabbccddeeff"), 64, at, "not the legacy auth"},
		{"short", legacy[:15], 64, at, "only 15 bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := CheckVMessAuth(c.first, vecUser, c.alterID, c.sentAt)
			switch {
			case c.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Errorf("got %v, want an error saying %q", err, c.wantErr)
			}
		})
	}
	// Another user's auth is not this one's, under either header.
	other := "b27c24ab-2b5a-433e-902c-33f1168a7902"
	if err := CheckVMessAuth(legacy, other, 64, at); err == nil {
		t.Error("the spec user's legacy auth passed for another user")
	}
	if err := CheckVMessAuth(aead, other, 0, at); err == nil {
		t.Error("the spec user's AEAD auth ID passed for another user")
	}
}

// An alter ID's auth is accepted: computed here from the vector alter ID, not from the
// code under test.
func TestCheckVMessAuthAlterID(t *testing.T) {
	id, _ := parseUUID(vecUser)
	alt := vmessAlterIDs(id, 64)[63]
	ts, which, ok := openLegacyAuth(legacyAuthFor(alt, vecTime+30), id, 64, vecTime)
	if !ok || ts != vecTime+30 || which != "alter ID 63" {
		t.Fatalf("openLegacyAuth = %d, %q, %v; want %d, alter ID 63", ts, which, ok, vecTime+30)
	}
	if _, _, ok := openLegacyAuth(legacyAuthFor(alt, vecTime), id, 63, vecTime); ok {
		t.Error("alter ID 63 accepted for a user with 63 alter IDs (0..62)")
	}
}

func TestHeadDialer(t *testing.T) {
	got := make(chan []byte, 1)
	addr := ServeTCP(t, func(c net.Conn) {
		b := make([]byte, 20)
		n, _ := c.Read(b)
		for n < 20 {
			m, err := c.Read(b[n:])
			if err != nil {
				break
			}
			n += m
		}
		got <- b[:n]
	})
	d := &HeadDialer{Dialer: &net.Dialer{}}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("0123456789"))
	c.Write([]byte("abcdefghij"))
	if b := <-got; string(b) != "0123456789abcdefghij" {
		t.Fatalf("the server got %q", b)
	}
	heads := d.Heads()
	if len(heads) != 1 {
		t.Fatalf("%d heads, want 1", len(heads))
	}
	if b, at := heads[0].Bytes(); string(b) != "0123456789abcdef" || at.IsZero() {
		t.Fatalf("head %q at %v, want the first 16 bytes and a time", b, at)
	}
	if err := CheckVMessHeads(nil, vecUser, 64); err == nil {
		t.Error("CheckVMessHeads passed with no connections")
	}
}

func legacyAuthFor(id [16]byte, ts int64) [16]byte {
	m := hmac.New(md5.New, id[:])
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(ts)))
	return [16]byte(m.Sum(nil))
}
