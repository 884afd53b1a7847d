// Package blake3 implements the BLAKE3 hash function (hash, keyed_hash and derive_key
// modes, with extendable output) as specified in the BLAKE3 paper. It serves Shadowsocks
// 2022 session subkeys, which hash at most a few dozen bytes, so it is written for
// clarity over speed: one portable compression function, no SIMD, whole input in memory.
package blake3

import (
	"encoding/binary"
	"math/bits"
)

const (
	blockLen = 64
	chunkLen = 1024
)

// Domain separation flags (BLAKE3 paper, table 3).
const (
	flagChunkStart        = 1 << 0
	flagChunkEnd          = 1 << 1
	flagParent            = 1 << 2
	flagRoot              = 1 << 3
	flagKeyedHash         = 1 << 4
	flagDeriveKeyContext  = 1 << 5
	flagDeriveKeyMaterial = 1 << 6
)

// iv is the SHA-256 initial hash value, which BLAKE3 reuses as its key in hash mode.
var iv = [8]uint32{
	0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
	0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
}

// msgSchedule[r] lists which message word feeds each of the 16 G inputs in round r: the
// paper's permutation applied r times.
var msgSchedule = func() (s [7][16]int) {
	perm := [16]int{2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8}
	for i := range s[0] {
		s[0][i] = i
	}
	for r := 1; r < len(s); r++ {
		for i := range s[r] {
			s[r][i] = s[r-1][perm[i]]
		}
	}
	return s
}()

func g(v *[16]uint32, a, b, c, d int, x, y uint32) {
	v[a] += v[b] + x
	v[d] = bits.RotateLeft32(v[d]^v[a], -16)
	v[c] += v[d]
	v[b] = bits.RotateLeft32(v[b]^v[c], -12)
	v[a] += v[b] + y
	v[d] = bits.RotateLeft32(v[d]^v[a], -8)
	v[c] += v[d]
	v[b] = bits.RotateLeft32(v[b]^v[c], -7)
}

// compress returns the full 16-word state after seven rounds; the first eight words are
// the new chaining value, and all sixteen are extended output.
func compress(cv *[8]uint32, m *[16]uint32, counter uint64, blockLen, flags uint32) [16]uint32 {
	v := [16]uint32{
		cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
		iv[0], iv[1], iv[2], iv[3],
		uint32(counter), uint32(counter >> 32), blockLen, flags,
	}
	for r := range msgSchedule {
		s := &msgSchedule[r]
		g(&v, 0, 4, 8, 12, m[s[0]], m[s[1]])
		g(&v, 1, 5, 9, 13, m[s[2]], m[s[3]])
		g(&v, 2, 6, 10, 14, m[s[4]], m[s[5]])
		g(&v, 3, 7, 11, 15, m[s[6]], m[s[7]])
		g(&v, 0, 5, 10, 15, m[s[8]], m[s[9]])
		g(&v, 1, 6, 11, 12, m[s[10]], m[s[11]])
		g(&v, 2, 7, 8, 13, m[s[12]], m[s[13]])
		g(&v, 3, 4, 9, 14, m[s[14]], m[s[15]])
	}
	for i := range 8 {
		v[i] ^= v[i+8]
		v[i+8] ^= cv[i]
	}
	return v
}

// node is the last compression of a chunk or parent, held back so that the caller can
// either take its chaining value or, at the root, squeeze any amount of output from it.
type node struct {
	cv       [8]uint32
	block    [16]uint32
	counter  uint64
	blockLen uint32
	flags    uint32
}

func (n *node) chainingValue() (cv [8]uint32) {
	out := compress(&n.cv, &n.block, n.counter, n.blockLen, n.flags)
	copy(cv[:], out[:8])
	return cv
}

// root fills out with extended output: block i of output comes from compressing the root
// node with counter i.
func (n *node) root(out []byte) {
	var buf [blockLen]byte
	for counter := uint64(0); len(out) > 0; counter++ {
		words := compress(&n.cv, &n.block, counter, n.blockLen, n.flags|flagRoot)
		for i, w := range words {
			binary.LittleEndian.PutUint32(buf[4*i:], w)
		}
		out = out[copy(out, buf[:]):]
	}
}

func loadBlock(b []byte) (m [16]uint32) {
	var buf [blockLen]byte
	copy(buf[:], b) // the final block is zero padded; its length travels separately
	for i := range m {
		m[i] = binary.LittleEndian.Uint32(buf[4*i:])
	}
	return m
}

// chunk compresses all blocks of one chunk (at most 1024 bytes) but the last.
func chunk(key *[8]uint32, input []byte, counter uint64, flags uint32) node {
	cv := *key
	start := uint32(flagChunkStart)
	for len(input) > blockLen {
		m := loadBlock(input[:blockLen])
		out := compress(&cv, &m, counter, blockLen, flags|start)
		copy(cv[:], out[:8])
		input = input[blockLen:]
		start = 0
	}
	return node{
		cv:       cv,
		block:    loadBlock(input),
		counter:  counter,
		blockLen: uint32(len(input)),
		flags:    flags | start | flagChunkEnd,
	}
}

// tree hashes input, whose first chunk has index counter, into its top node. The left
// subtree takes the largest power-of-two number of chunks that leaves at least one byte
// for the right.
func tree(key *[8]uint32, input []byte, counter uint64, flags uint32) node {
	if len(input) <= chunkLen {
		return chunk(key, input, counter, flags)
	}
	chunks := (len(input) + chunkLen - 1) / chunkLen
	leftChunks := 1 << (bits.Len(uint(chunks-1)) - 1)
	left := tree(key, input[:leftChunks*chunkLen], counter, flags)
	right := tree(key, input[leftChunks*chunkLen:], counter+uint64(leftChunks), flags)
	lcv, rcv := left.chainingValue(), right.chainingValue()
	var block [16]uint32
	copy(block[:8], lcv[:])
	copy(block[8:], rcv[:])
	return node{cv: *key, block: block, blockLen: blockLen, flags: flags | flagParent}
}

// Sum fills out with the BLAKE3 hash of input. Any output length is allowed; the first
// 32 bytes are the default-length hash.
func Sum(out, input []byte) {
	n := tree(&iv, input, 0, 0)
	n.root(out)
}

// Sum256 returns the default-length BLAKE3 hash of input.
func Sum256(input []byte) (sum [32]byte) {
	Sum(sum[:], input)
	return sum
}

// KeyedSum fills out with the keyed hash of input under a 32-byte key.
func KeyedSum(out []byte, key *[32]byte, input []byte) {
	k := keyWords(key[:])
	n := tree(&k, input, 0, flagKeyedHash)
	n.root(out)
}

// DeriveKey fills out with key material derived from material in the given context
// (derive_key mode). The context string should be hardcoded, globally unique and
// application specific.
func DeriveKey(out []byte, context string, material []byte) {
	ctx := tree(&iv, []byte(context), 0, flagDeriveKeyContext)
	var ctxKey [32]byte
	ctx.root(ctxKey[:])
	k := keyWords(ctxKey[:])
	n := tree(&k, material, 0, flagDeriveKeyMaterial)
	n.root(out)
}

func keyWords(b []byte) (k [8]uint32) {
	for i := range k {
		k[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return k
}
