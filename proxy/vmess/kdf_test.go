package vmess

import (
	"crypto/hmac"
	"crypto/sha256"
	"hash"
	"math/rand/v2"
	"testing"
)

// referenceKDF is kdf as the protocol describes it: HMACs nested literally, each level
// built around fresh copies of the one below.
func referenceKDF(key []byte, path ...string) [32]byte {
	h := func() hash.Hash { return hmac.New(sha256.New, []byte(kdfRoot)) }
	for _, p := range path {
		inner := h
		h = func() hash.Hash { return hmac.New(inner, []byte(p)) }
	}
	m := h()
	m.Write(key)
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// TestKDFMatchesReference checks the unrolled chain against the literal nesting for
// random keys and paths, split at random between the chain's fixed part and the
// derivation's own, with elements longer than a SHA-256 block among them (HMAC hashes
// those first).
func TestKDFMatchesReference(t *testing.T) {
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 0))
	randBytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	for range 300 {
		path := make([]string, rng.IntN(5))
		for i := range path {
			n := rng.IntN(40)
			if rng.IntN(4) == 0 {
				n = sha256.BlockSize - 1 + rng.IntN(40) // around and over a block
			}
			path[i] = string(randBytes(n))
		}
		key := randBytes(rng.IntN(150))
		fixed := rng.IntN(len(path) + 1)
		got := newKDFChain(path[:fixed]...).derive(key, path[fixed:]...)
		if want := referenceKDF(key, path...); got != want {
			t.Fatalf("seed %d: key %x, path %q split at %d:\n got %x\nwant %x", seed, key, path, fixed, got, want)
		}
	}
}

// TestKDFChains checks each prepared chain against the reference on the paths it serves.
func TestKDFChains(t *testing.T) {
	var authID [16]byte
	var nonce [8]byte
	rand.NewChaCha8([32]byte{1}).Read(authID[:])
	key := []byte("0123456789abcdef")
	a, n := string(authID[:]), string(nonce[:])
	for _, c := range []struct {
		chain *kdfChain
		path  []string
	}{
		{kdfBase, []string{kdfAuthIDKey}},
		{chainHeaderLenKey, []string{kdfHeaderLenKey, a, n}},
		{chainHeaderLenNonce, []string{kdfHeaderLenNonce, a, n}},
		{chainHeaderKey, []string{kdfHeaderKey, a, n}},
		{chainHeaderNonce, []string{kdfHeaderNonce, a, n}},
		{chainRespHeaderLenKey, []string{kdfRespHeaderLenKey}},
		{chainRespHeaderLenIV, []string{kdfRespHeaderLenIV}},
		{chainRespHeaderKey, []string{kdfRespHeaderKey}},
		{chainRespHeaderIV, []string{kdfRespHeaderIV}},
		{chainAuthLen, []string{kdfAuthenticatedLen}},
	} {
		more := c.path[len(c.chain.path):]
		if got, want := c.chain.derive(key, more...), referenceKDF(key, c.path...); got != want {
			t.Errorf("chain %q: got %x, want %x", c.path, got, want)
		}
	}
}

// BenchmarkKDF measures the derivations of one AEAD connection's headers (their AEADs
// included), and a derivation whose whole path is given at the call.
func BenchmarkKDF(b *testing.B) {
	var cmdKey, authID, rkey, riv [16]byte
	var nonce [8]byte
	b.Run("request", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			headerAEADs(cmdKey, authID, nonce)
		}
	})
	b.Run("response", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			responseLenAEAD(rkey, riv)
			responseHeaderAEAD(rkey, riv)
		}
	})
	b.Run("unprepared", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			kdf(cmdKey[:], kdfHeaderKey, string(authID[:]), string(nonce[:]))
		}
	})
}
