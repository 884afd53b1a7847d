package vmess

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"hash"
	"hash/crc32"
	"slices"
	"strings"
)

// KDF labels of VMess AEAD.
const (
	kdfRoot             = "VMess AEAD KDF"
	kdfAuthIDKey        = "AES Auth ID Encryption"
	kdfHeaderLenKey     = "VMess Header AEAD Key_Length"
	kdfHeaderLenNonce   = "VMess Header AEAD Nonce_Length"
	kdfHeaderKey        = "VMess Header AEAD Key"
	kdfHeaderNonce      = "VMess Header AEAD Nonce"
	kdfRespHeaderLenKey = "AEAD Resp Header Len Key"
	kdfRespHeaderLenIV  = "AEAD Resp Header Len IV"
	kdfRespHeaderKey    = "AEAD Resp Header Key"
	kdfRespHeaderIV     = "AEAD Resp Header IV"
	kdfAuthenticatedLen = "auth_len"
	authIDWindow        = 120 // seconds either side of now
)

// kdf is VMess's nested HMAC: HMAC-SHA256 keyed with the root label is the hash function
// of an HMAC keyed with path[0], which is the hash of an HMAC keyed with path[1], and so on;
// the outermost one is applied to key.
func kdf(key []byte, path ...string) [32]byte {
	return kdfBase.derive(key, path...)
}

// A kdfChain is the nested HMAC of kdf for a fixed start of the path, ready to derive
// keys under that start and any further path.
//
// Built literally, each level's HMAC wraps two fresh copies of the level below, whose
// pads are hashed again for every copy: hundreds of allocations per derivation. But the
// nesting unrolls. An HMAC writes its message into its inner hash only, so with L levels
// the message reaches one SHA-256 (the innermost of the inner ones), and every digest
// then goes into exactly one other SHA-256: a derivation is 2^L SHA-256s run in a row,
// leaf i finishing leaf i-1's digest (leaf 0 the key), each having first absorbed the pad
// blocks (key XOR ipad or opad, one block) of the HMACs that it is the first SHA-256 of.
// Writing bit k of i as b_k: leaf i absorbs level 0's pad (ipad if b_0 is 0, else
// opad), then level 1's pad chosen by b_1 if b_0 is 0, then level 2's by b_2 if b_0 and
// b_1 are 0, and so on: the levels up to i's lowest set bit.
//
// So the SHA-256 states after the pads of the chain's fixed levels are computed once,
// one for each value of i's low bits, and a derivation restores them, absorbs the pads
// of the path's further levels, and runs the chain.
type kdfChain struct {
	path   []string // after the root label
	states [][]byte // marshaled SHA-256 state after the fixed levels' pads, by i mod len
}

// kdfBase has no fixed path; the others serve the derivations of every connection.
var (
	kdfBase               = newKDFChain()
	chainHeaderLenKey     = newKDFChain(kdfHeaderLenKey)
	chainHeaderLenNonce   = newKDFChain(kdfHeaderLenNonce)
	chainHeaderKey        = newKDFChain(kdfHeaderKey)
	chainHeaderNonce      = newKDFChain(kdfHeaderNonce)
	chainRespHeaderLenKey = newKDFChain(kdfRespHeaderLenKey)
	chainRespHeaderLenIV  = newKDFChain(kdfRespHeaderLenIV)
	chainRespHeaderKey    = newKDFChain(kdfRespHeaderKey)
	chainRespHeaderIV     = newKDFChain(kdfRespHeaderIV)
	chainAuthLen          = newKDFChain(kdfAuthenticatedLen)
)

func newKDFChain(path ...string) *kdfChain {
	levels := 1 + len(path)
	c := &kdfChain{path: path, states: make([][]byte, 1<<levels)}
	var s kdfScratch
	h := sha256.New()
	for i := range c.states {
		h.Reset()
		for level := 0; level < levels; level++ {
			if !s.absorbPad(h, hmacKey(level, path, nil), level, i) {
				break
			}
		}
		c.states[i], _ = h.(encoding.BinaryMarshaler).MarshalBinary()
	}
	return c
}

// hmacKey is the key of the HMAC at level (0: the root label; above, fixed and then more
// give the path) as the HMAC uses it: a key longer than a block is replaced by its hash,
// which is the levels below. VMess's are all shorter; the rule keeps kdf an HMAC chain
// for any path.
func hmacKey(level int, fixed, more []string) string {
	if level == 0 {
		return kdfRoot
	}
	var key string
	if level-1 < len(fixed) {
		key = fixed[level-1]
	} else {
		key = more[level-1-len(fixed)]
	}
	if len(key) <= sha256.BlockSize {
		return key
	}
	// Copies, so that path elements do not escape through here: every caller's would be
	// allocated.
	below := slices.Clone(fixed)
	for _, m := range more {
		below = append(below, strings.Clone(m))
	}
	d := newKDFChain(below[:level-1]...).derive([]byte(key))
	return string(d[:])
}

// kdfScratch is a derivation's working memory, in one allocation: whatever is written to
// a hash.Hash escapes.
type kdfScratch struct {
	pad    [sha256.BlockSize]byte
	digest [sha256.Size]byte
}

// absorbPad writes to h, leaf i's SHA-256, the pad of the HMAC at level keyed with key,
// and reports whether i absorbs the pad of the next level too.
func (s *kdfScratch) absorbPad(h hash.Hash, key string, level, i int) bool {
	outer := i>>level&1 == 1
	pad := byte(0x36)
	if outer {
		pad = 0x5c
	}
	n := copy(s.pad[:], key)
	clear(s.pad[n:])
	for j := range s.pad {
		s.pad[j] ^= pad
	}
	h.Write(s.pad[:])
	return !outer
}

// derive is kdf(key, c's path, then path).
func (c *kdfChain) derive(key []byte, path ...string) [32]byte {
	s := new(kdfScratch)
	h := sha256.New()
	fixed := len(c.states) - 1 // the low bits of i that pick a precomputed state
	levels := 1 + len(c.path) + len(path)
	for i := range 1 << levels {
		h.(encoding.BinaryUnmarshaler).UnmarshalBinary(c.states[i&fixed])
		if i&fixed == 0 {
			for level := 1 + len(c.path); level < levels; level++ {
				if !s.absorbPad(h, hmacKey(level, c.path, path), level, i) {
					break
				}
			}
		}
		if i == 0 {
			h.Write(key)
		} else {
			h.Write(s.digest[:])
		}
		h.Sum(s.digest[:0])
	}
	return s.digest
}

// derive16 is derive cut to an AES-128 key or IV.
func (c *kdfChain) derive16(key []byte, path ...string) [16]byte {
	k := c.derive(key, path...)
	return [16]byte(k[:16])
}

// derive12 is derive cut to a GCM nonce.
func (c *kdfChain) derive12(key []byte, path ...string) []byte {
	k := c.derive(key, path...)
	return k[:12]
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("vmess: " + err.Error()) // unreachable: every key here is 16 bytes
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("vmess: " + err.Error())
	}
	return aead
}

// authIDCipher returns the AES block that encrypts a user's AEAD auth IDs.
func authIDCipher(cmdKey [16]byte) cipher.Block {
	k := kdfBase.derive16(cmdKey[:], kdfAuthIDKey)
	block, _ := aes.NewCipher(k[:])
	return block
}

// sealAuthID builds [u64 timestamp][4 random][CRC32 of the 12 bytes] and encrypts it as
// one AES block.
func sealAuthID(block cipher.Block, unix int64, random [4]byte) [16]byte {
	var plain, out [16]byte
	binary.BigEndian.PutUint64(plain[:8], uint64(unix))
	copy(plain[8:12], random[:])
	binary.BigEndian.PutUint32(plain[12:], crc32.ChecksumIEEE(plain[:12]))
	block.Encrypt(out[:], plain[:])
	return out
}

// openAuthID decrypts an auth ID into plain (scratch space, so that trying thousands of
// users allocates nothing) and reports its timestamp if the checksum holds.
func openAuthID(block cipher.Block, authID *[16]byte, plain *[16]byte) (int64, bool) {
	block.Decrypt(plain[:], authID[:])
	if crc32.ChecksumIEEE(plain[:12]) != binary.BigEndian.Uint32(plain[12:]) {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(plain[:8])), true
}

// headerAEADs returns the AEADs and nonces sealing the request header's length and body.
func headerAEADs(cmdKey [16]byte, authID [16]byte, nonce [8]byte) (lenAEAD cipher.AEAD, lenNonce []byte, hdrAEAD cipher.AEAD, hdrNonce []byte) {
	a, n := string(authID[:]), string(nonce[:])
	lk := chainHeaderLenKey.derive16(cmdKey[:], a, n)
	hk := chainHeaderKey.derive16(cmdKey[:], a, n)
	return newGCM(lk[:]), chainHeaderLenNonce.derive12(cmdKey[:], a, n),
		newGCM(hk[:]), chainHeaderNonce.derive12(cmdKey[:], a, n)
}

// sealAEADRequest appends authID || sealed length || nonce || sealed header to dst.
func sealAEADRequest(dst []byte, cmdKey, authID [16]byte, nonce [8]byte, header []byte) []byte {
	lenAEAD, lenNonce, hdrAEAD, hdrNonce := headerAEADs(cmdKey, authID, nonce)
	dst = append(dst, authID[:]...)
	dst = lenAEAD.Seal(dst, lenNonce, binary.BigEndian.AppendUint16(nil, uint16(len(header))), authID[:])
	dst = append(dst, nonce[:]...)
	return hdrAEAD.Seal(dst, hdrNonce, header, authID[:])
}

// responseKeys derives the response body key and IV from the request's: the first 16
// bytes of SHA-256 under the AEAD header, MD5 under the legacy one.
func responseKeys(aeadHeader bool, key, iv [16]byte) (rkey, riv [16]byte) {
	if aeadHeader {
		k, v := sha256.Sum256(key[:]), sha256.Sum256(iv[:])
		return [16]byte(k[:16]), [16]byte(v[:16])
	}
	return md5.Sum(key[:]), md5.Sum(iv[:])
}

// responseLenAEAD returns the AEAD and nonce sealing the AEAD response header's length.
func responseLenAEAD(rkey, riv [16]byte) (cipher.AEAD, []byte) {
	k := chainRespHeaderLenKey.derive16(rkey[:])
	return newGCM(k[:]), chainRespHeaderLenIV.derive12(riv[:])
}

// responseHeaderAEAD returns the AEAD and nonce sealing the AEAD response header.
func responseHeaderAEAD(rkey, riv [16]byte) (cipher.AEAD, []byte) {
	k := chainRespHeaderKey.derive16(rkey[:])
	return newGCM(k[:]), chainRespHeaderIV.derive12(riv[:])
}

// legacyTimeIV is the IV of the legacy request header: MD5 of the timestamp four times.
func legacyTimeIV(ts int64) [16]byte {
	var b [32]byte
	for i := 0; i < 4; i++ {
		binary.BigEndian.PutUint64(b[i*8:], uint64(ts))
	}
	return md5.Sum(b[:])
}

// legacyAuth is the legacy request's first 16 bytes: HMAC-MD5(id, timestamp).
func legacyAuth(id [16]byte, ts int64) [16]byte {
	m := hmac.New(md5.New, id[:])
	binary.Write(m, binary.BigEndian, uint64(ts))
	var out [16]byte
	m.Sum(out[:0])
	return out
}

// chachaKey stretches a 16-byte body key to ChaCha20-Poly1305's 32: MD5(k) || MD5(MD5(k)).
func chachaKey(k [16]byte) []byte {
	a := md5.Sum(k[:])
	b := md5.Sum(a[:])
	return append(a[:], b[:]...)
}
