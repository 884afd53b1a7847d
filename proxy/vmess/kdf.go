package vmess

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"hash/crc32"
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

func kdf16(key []byte, path ...string) [16]byte {
	k := kdf(key, path...)
	return [16]byte(k[:16])
}

func kdf12(key []byte, path ...string) []byte {
	k := kdf(key, path...)
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
	k := kdf16(cmdKey[:], kdfAuthIDKey)
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
	lk := kdf16(cmdKey[:], kdfHeaderLenKey, a, n)
	hk := kdf16(cmdKey[:], kdfHeaderKey, a, n)
	return newGCM(lk[:]), kdf12(cmdKey[:], kdfHeaderLenNonce, a, n),
		newGCM(hk[:]), kdf12(cmdKey[:], kdfHeaderNonce, a, n)
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

// responseAEADs returns the AEADs and nonces sealing the AEAD response header.
func responseAEADs(rkey, riv [16]byte) (lenAEAD cipher.AEAD, lenNonce []byte, hdrAEAD cipher.AEAD, hdrNonce []byte) {
	lk := kdf16(rkey[:], kdfRespHeaderLenKey)
	hk := kdf16(rkey[:], kdfRespHeaderKey)
	return newGCM(lk[:]), kdf12(riv[:], kdfRespHeaderLenIV), newGCM(hk[:]), kdf12(riv[:], kdfRespHeaderIV)
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
