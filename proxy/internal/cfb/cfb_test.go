package cfb

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The CFB128 examples of NIST SP 800-38A, appendix F.3.13 to F.3.18.
var nistVectors = []struct {
	name, key, ciphertext string
}{
	{"F.3.13 CFB128-AES128", "2b7e151628aed2a6abf7158809cf4f3c",
		"3b3fd92eb72dad20333449f8e83cfb4a" + "c8a64537a0b3a93fcde3cdad9f1ce58b" +
			"26751f67a3cbb140b1808cf187a4f4df" + "c04b05357c5d1c0eeac4c66f9ff7f2e6"},
	{"F.3.15 CFB128-AES192", "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
		"cdc80d6fddf18cab34c25909c99a4174" + "67ce7f7f81173621961a2b70171d3d7a" +
			"2e1e8a1dd59b88b1c8e60fed1efac4c9" + "c05f9f9ca9834fa042ae8fba584b09ff"},
	{"F.3.17 CFB128-AES256", "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
		"dc7e84bfda79164b7ecd8486985d3860" + "39ffed143b28b1c832113c6331e5407b" +
			"df10132415e54b92a13ed0a8267ae2f9" + "75a385741ab9cef82031623d55b1e471"},
}

const (
	nistIV        = "000102030405060708090a0b0c0d0e0f"
	nistPlaintext = "6bc1bee22e409f96e93d7e117393172a" + "ae2d8a571e03ac9c9eb76fac45af8e51" +
		"30c81c46a35ce411e5fbc1191a0a52ef" + "f69f2445df4f9b17ad2b417be66c3710"
)

func newPair(t testing.TB, key, iv []byte) (enc, dec cipher.Stream) {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	enc, err = NewEncrypter(block, iv)
	if err != nil {
		t.Fatal(err)
	}
	dec, err = NewDecrypter(block, iv)
	if err != nil {
		t.Fatal(err)
	}
	return enc, dec
}

func TestNISTVectors(t *testing.T) {
	iv, plain := unhex(t, nistIV), unhex(t, nistPlaintext)
	for _, v := range nistVectors {
		t.Run(v.name, func(t *testing.T) {
			want := unhex(t, v.ciphertext)
			// Whole, then one byte at a time, then in place.
			for _, step := range []int{len(plain), 1, 7} {
				enc, dec := newPair(t, unhex(t, v.key), iv)
				got := make([]byte, len(plain))
				back := make([]byte, len(plain))
				for i := 0; i < len(plain); i += step {
					j := min(i+step, len(plain))
					enc.XORKeyStream(got[i:j], plain[i:j])
					dec.XORKeyStream(back[i:j], got[i:j])
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("step %d: ciphertext\n%x, want\n%x", step, got, want)
				}
				if !bytes.Equal(back, plain) {
					t.Fatalf("step %d: decrypted\n%x, want\n%x", step, back, plain)
				}
			}
			enc, dec := newPair(t, unhex(t, v.key), iv)
			buf := bytes.Clone(plain)
			enc.XORKeyStream(buf, buf)
			if !bytes.Equal(buf, want) {
				t.Fatalf("in place: ciphertext\n%x, want\n%x", buf, want)
			}
			dec.XORKeyStream(buf, buf)
			if !bytes.Equal(buf, plain) {
				t.Fatalf("in place: decrypted\n%x, want\n%x", buf, plain)
			}
		})
	}
}

// checkAgainstStdlib encrypts and decrypts data with ours and crypto/cipher's CFB, cutting
// the stream at the given points, and fails on the first differing byte. inPlace makes
// ours work in the caller's buffer, as the Shadowsocks reader does.
func checkAgainstStdlib(t testing.TB, key, iv, data []byte, cuts []int, inPlace bool) {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	enc, dec := newPair(t, key, iv)
	stdEnc := cipher.NewCFBEncrypter(block, iv) //nolint:staticcheck // the reference
	stdDec := cipher.NewCFBDecrypter(block, iv) //nolint:staticcheck // the reference

	want := make([]byte, len(data))
	stdEnc.XORKeyStream(want, data)
	got := bytes.Clone(data)
	if !inPlace {
		got = make([]byte, len(data))
	}
	back := make([]byte, len(data))
	start := 0
	for _, end := range append(cuts, len(data)) {
		end = max(start, min(end, len(data)))
		if inPlace {
			enc.XORKeyStream(got[start:end], got[start:end])
		} else {
			enc.XORKeyStream(got[start:end], data[start:end])
		}
		start = end
	}
	if i := firstDiff(got, want); i >= 0 {
		t.Fatalf("encryption differs from crypto/cipher at byte %d of %d (cuts %v)", i, len(data), cuts)
	}

	stdBack := make([]byte, len(data))
	stdDec.XORKeyStream(stdBack, want)
	start = 0
	for _, end := range append(cuts, len(data)) {
		end = max(start, min(end, len(data)))
		if inPlace {
			copy(back[start:end], want[start:end])
			dec.XORKeyStream(back[start:end], back[start:end])
		} else {
			dec.XORKeyStream(back[start:end], want[start:end])
		}
		start = end
	}
	if i := firstDiff(back, data); i >= 0 {
		t.Fatalf("decryption wrong at byte %d of %d (cuts %v)", i, len(data), cuts)
	}
	if !bytes.Equal(stdBack, data) {
		t.Fatal("crypto/cipher does not round-trip: the test itself is broken")
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	if len(a) != len(b) {
		return min(len(a), len(b))
	}
	return -1
}

// TestMatchesStdlib is the property: for random keys, lengths around batch and block
// boundaries and random cut points, both directions give crypto/cipher's bytes.
func TestMatchesStdlib(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []int{0, 1, 15, 16, 17, 31, 33, batchBlocks*blockSize - 1, batchBlocks * blockSize,
		batchBlocks*blockSize + 1, 3*batchBlocks*blockSize + 5, 16 << 10, 20<<10 + 3}
	for range 40 {
		lengths = append(lengths, rng.IntN(5000))
	}
	for _, keyLen := range []int{16, 24, 32} {
		for _, n := range lengths {
			key := randBytes(rng, keyLen)
			iv := randBytes(rng, blockSize)
			data := randBytes(rng, n)
			var cuts []int
			for c := rng.IntN(6); c > 0; c-- {
				cuts = append(cuts, rng.IntN(n+1))
			}
			sortInts(cuts)
			checkAgainstStdlib(t, key, iv, data, nil, false)
			checkAgainstStdlib(t, key, iv, data, cuts, false)
			checkAgainstStdlib(t, key, iv, data, cuts, true)
		}
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func sortInts(s []int) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// FuzzMatchesStdlib checks the same property on inputs the fuzzer picks: a key, the data
// and two cut points taken from the seed bytes.
func FuzzMatchesStdlib(f *testing.F) {
	f.Add([]byte("0123456789abcdef"), []byte("hello, world"), uint16(3), uint16(5), false)            // shorter than a block, cut twice
	f.Add(bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{1}, 1000), uint16(15), uint16(529), true)  // AES-256, cuts across a batch, in place
	f.Add(bytes.Repeat([]byte{9}, 24), bytes.Repeat([]byte{2}, 513), uint16(512), uint16(512), false) // AES-192, one byte past a batch
	f.Fuzz(func(t *testing.T, key, data []byte, cut1, cut2 uint16, inPlace bool) {
		switch {
		case len(key) >= 32:
			key = key[:32]
		case len(key) >= 24:
			key = key[:24]
		case len(key) >= 16:
			key = key[:16]
		default:
			return
		}
		a, b := min(int(cut1), int(cut2)), max(int(cut1), int(cut2))
		checkAgainstStdlib(t, key, bytes.Repeat([]byte{byte(len(data))}, blockSize), data, []int{a, b}, inPlace)
	})
}

func TestErrors(t *testing.T) {
	block, _ := aes.NewCipher(make([]byte, 16))
	if _, err := NewDecrypter(block, make([]byte, 15)); err == nil {
		t.Fatal("15-byte IV accepted")
	}
	if _, err := NewEncrypter(block, make([]byte, 17)); err == nil {
		t.Fatal("17-byte IV accepted")
	}
	d, _ := des.NewCipher(make([]byte, 8))
	if _, err := NewEncrypter(d, make([]byte, 8)); !errors.Is(err, ErrBlockSize) {
		t.Fatalf("DES: err %v, want ErrBlockSize", err)
	}
}

func TestShortOutputPanics(t *testing.T) {
	_, dec := newPair(t, make([]byte, 16), make([]byte, 16))
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for a short dst")
		}
	}()
	dec.XORKeyStream(make([]byte, 3), make([]byte, 4))
}

func BenchmarkCFB(b *testing.B) {
	key, iv := make([]byte, 32), make([]byte, 16)
	block, _ := aes.NewCipher(key)
	for _, size := range []int{64, 1 << 10, 16 << 10} {
		buf := make([]byte, size)
		for _, c := range []struct {
			name string
			new  func() cipher.Stream
		}{
			{"stdlib-encrypt", func() cipher.Stream { return cipher.NewCFBEncrypter(block, iv) }}, //nolint:staticcheck // the baseline
			{"stdlib-decrypt", func() cipher.Stream { return cipher.NewCFBDecrypter(block, iv) }}, //nolint:staticcheck // the baseline
			{"encrypt", func() cipher.Stream { s, _ := NewEncrypter(block, iv); return s }},
			{"decrypt", func() cipher.Stream { s, _ := NewDecrypter(block, iv); return s }},
		} {
			name := fmt.Sprintf("%s/%dKiB", c.name, size>>10)
			if size < 1<<10 {
				name = fmt.Sprintf("%s/%dB", c.name, size) // a small read: the per-call cost shows
			}
			b.Run(name, func(b *testing.B) {
				s := c.new()
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					s.XORKeyStream(buf, buf)
				}
			})
		}
	}
}
