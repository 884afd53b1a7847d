package blake3

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

type vectors struct {
	Key     string `json:"key"`
	Context string `json:"context_string"`
	Cases   []struct {
		InputLen  int    `json:"input_len"`
		Hash      string `json:"hash"`
		KeyedHash string `json:"keyed_hash"`
		DeriveKey string `json:"derive_key"`
	} `json:"cases"`
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/test_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("no test vectors")
	}
	return v
}

// input is the official vectors' input: the bytes 0..250 repeated.
func input(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

func decode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVectors checks every mode against the official vectors, both the full extended
// output and, as the vectors ask, the default 32-byte output as its prefix.
func TestVectors(t *testing.T) {
	v := loadVectors(t)
	var key [32]byte
	copy(key[:], v.Key)
	for _, c := range v.Cases {
		in := input(c.InputLen)
		modes := []struct {
			name string
			want []byte
			sum  func(out []byte)
		}{
			{"hash", decode(t, c.Hash), func(out []byte) { Sum(out, in) }},
			{"keyed_hash", decode(t, c.KeyedHash), func(out []byte) { KeyedSum(out, &key, in) }},
			{"derive_key", decode(t, c.DeriveKey), func(out []byte) { DeriveKey(out, v.Context, in) }},
		}
		for _, m := range modes {
			got := make([]byte, len(m.want))
			m.sum(got)
			if !bytes.Equal(got, m.want) {
				t.Errorf("len %d %s:\n got %x\nwant %x", c.InputLen, m.name, got, m.want)
			}
			short := make([]byte, 32)
			m.sum(short)
			if !bytes.Equal(short, m.want[:32]) {
				t.Errorf("len %d %s (32 bytes): got %x, want %x", c.InputLen, m.name, short, m.want[:32])
			}
		}
	}
}

func TestSum256MatchesSum(t *testing.T) {
	in := input(5000)
	want := make([]byte, 32)
	Sum(want, in)
	if got := Sum256(in); !bytes.Equal(got[:], want) {
		t.Fatalf("Sum256 = %x, want %x", got, want)
	}
}

// TestVectorsCover guards the testdata itself: the lengths must cross the chunk (1024)
// and two-chunk (2048) boundaries and reach a tree several levels deep.
func TestVectorsCover(t *testing.T) {
	v := loadVectors(t)
	need := map[int]bool{0: false, 1023: false, 1024: false, 1025: false, 2048: false, 2049: false, 102400: false}
	for _, c := range v.Cases {
		if _, ok := need[c.InputLen]; ok {
			need[c.InputLen] = true
		}
	}
	for n, ok := range need {
		if !ok {
			t.Errorf("testdata lacks input length %d", n)
		}
	}
}

func BenchmarkDeriveKey64(b *testing.B) {
	material := input(64)
	out := make([]byte, 32)
	b.SetBytes(int64(len(material)))
	b.ReportAllocs()
	for b.Loop() {
		DeriveKey(out, "shadowsocks 2022 session subkey", material)
	}
}

func BenchmarkSum16K(b *testing.B) {
	in := input(16 << 10)
	out := make([]byte, 32)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		Sum(out, in)
	}
}
