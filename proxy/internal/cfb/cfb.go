// Package cfb is cipher feedback mode with a 128-bit segment (CFB128, NIST SP 800-38A
// section 6.3), the mode of Shadowsocks' aes-*-cfb methods, producing the same bytes as
// crypto/cipher's NewCFBEncrypter and NewCFBDecrypter at less cost per block.
//
// crypto/cipher's CFB makes three calls per 16-byte block (Encrypt, XORBytes and a copy)
// whatever the mode. Here decryption, whose keystream block i is E(ciphertext block i-1)
// and so known in advance, encrypts a run of blocks in one tight loop and XORs the run
// with one vectorised call; encryption, which must wait for each ciphertext block, XORs in
// two 64-bit words and feeds the block cipher its output in place.
package cfb

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

const blockSize = 16

// batchBlocks is how many keystream blocks a decrypter computes before XORing them in:
// enough for XORBytes's vector loop to pay, small enough to stay in L1 per connection.
const batchBlocks = 32

// ErrBlockSize is returned for a block cipher whose block is not 16 bytes.
var ErrBlockSize = errors.New("cfb: block size is not 16 bytes")

// state is what both directions keep between calls.
type state struct {
	b    cipher.Block
	next [blockSize]byte // the ciphertext block that keys the next keystream block
	out  [blockSize]byte // keystream of a block begun by an earlier call
	used int             // bytes of out already used; blockSize when no block is begun
}

func newState(b cipher.Block, iv []byte) (state, error) {
	if b.BlockSize() != blockSize {
		return state{}, ErrBlockSize
	}
	if len(iv) != blockSize {
		return state{}, fmt.Errorf("cfb: IV is %d bytes, want %d", len(iv), blockSize)
	}
	return state{b: b, next: [blockSize]byte(iv), used: blockSize}, nil
}

// NewEncrypter returns a CFB128 encrypting stream over b, a cipher with 16-byte blocks.
func NewEncrypter(b cipher.Block, iv []byte) (cipher.Stream, error) {
	s, err := newState(b, iv)
	if err != nil {
		return nil, err
	}
	return &encrypter{s}, nil
}

// NewDecrypter returns a CFB128 decrypting stream over b, a cipher with 16-byte blocks.
func NewDecrypter(b cipher.Block, iv []byte) (cipher.Stream, error) {
	s, err := newState(b, iv)
	if err != nil {
		return nil, err
	}
	return &decrypter{state: s}, nil
}

type encrypter struct{ state }

// XORKeyStream encrypts src into dst, which must be at least as long and overlap src
// exactly or not at all, as cipher.Stream requires.
func (e *encrypter) XORKeyStream(dst, src []byte) {
	if len(dst) < len(src) {
		panic("cfb: output smaller than input")
	}
	dst = dst[:len(src)]
	if e.used < blockSize {
		n := subtle.XORBytes(dst, src, e.out[e.used:])
		copy(e.next[e.used:], dst[:n])
		e.used += n
		dst, src = dst[n:], src[n:]
	}
	le := binary.LittleEndian
	for len(src) >= blockSize {
		// next becomes the keystream, then the ciphertext that keys the block after.
		e.b.Encrypt(e.next[:], e.next[:])
		s, d := src[:blockSize], dst[:blockSize]
		lo := le.Uint64(s[:8]) ^ le.Uint64(e.next[:8])
		hi := le.Uint64(s[8:]) ^ le.Uint64(e.next[8:])
		le.PutUint64(d[:8], lo)
		le.PutUint64(d[8:], hi)
		le.PutUint64(e.next[:8], lo)
		le.PutUint64(e.next[8:], hi)
		dst, src = dst[blockSize:], src[blockSize:]
	}
	if len(src) > 0 {
		e.b.Encrypt(e.out[:], e.next[:])
		e.used = subtle.XORBytes(dst, src, e.out[:])
		copy(e.next[:], dst)
	}
}

type decrypter struct{ state }

// keystreamPool holds the decrypters' batch scratch, taken for the length of a call: a
// local array would escape through the interface call b.Encrypt and be allocated on
// every call, and a field would cost every idle connection 512 bytes. Get and Put cost
// about one block's decryption.
var keystreamPool = sync.Pool{New: func() any { return new([batchBlocks * blockSize]byte) }}

// XORKeyStream decrypts src into dst, which must be at least as long and overlap src
// exactly or not at all, as cipher.Stream requires.
func (d *decrypter) XORKeyStream(dst, src []byte) {
	if len(dst) < len(src) {
		panic("cfb: output smaller than input")
	}
	dst = dst[:len(src)]
	if d.used < blockSize {
		// The ciphertext is saved before dst, which may be src, is written.
		n := copy(d.next[d.used:], src)
		subtle.XORBytes(dst[:n], src[:n], d.out[d.used:])
		d.used += n
		dst, src = dst[n:], src[n:]
	}
	if len(src) >= blockSize {
		n := d.blocks(dst, src)
		dst, src = dst[n:], src[n:]
	}
	if len(src) > 0 {
		d.b.Encrypt(d.out[:], d.next[:])
		d.used = copy(d.next[:], src)
		subtle.XORBytes(dst, src, d.out[:])
	}
}

// blocks decrypts the whole blocks of src into dst, a batch at a time, and reports
// their length.
func (d *decrypter) blocks(dst, src []byte) int {
	scratch := keystreamPool.Get().(*[batchBlocks * blockSize]byte)
	done := 0
	for len(src)-done >= blockSize {
		k := min((len(src)-done)/blockSize, batchBlocks) * blockSize
		ks, in := scratch[:k], src[done:done+k]
		// Every input is read before dst is written, so src may be dst.
		d.b.Encrypt(ks, d.next[:])
		for i := blockSize; i < k; i += blockSize {
			d.b.Encrypt(ks[i:], in[i-blockSize:i])
		}
		copy(d.next[:], in[k-blockSize:])
		subtle.XORBytes(dst[done:done+k], in, ks)
		done += k
	}
	keystreamPool.Put(scratch)
	return done
}
