package shadowsocks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/md5"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/proxychain/proxychain/proxy/internal/blake3"
	"github.com/proxychain/proxychain/proxy/internal/cfb"
)

// ErrCipher is wrapped by NewCipher's error for a method it does not know.
var ErrCipher = errors.New("shadowsocks: unsupported cipher")

// family is the protocol edition a method belongs to; it decides the wire format.
type family int

const (
	familyNone   family = iota // no encryption: the address, then the payload
	familyStream               // [IV][stream-encrypted bytes]
	familyAEAD                 // Shadowsocks AEAD (2017): [salt][chunks]
	family2022                 // SIP022: [salt][header chunks][chunks]
)

// method describes one cipher. For AEAD methods saltLen is the salt length; for stream
// methods it is the IV length.
type method struct {
	family  family
	keyLen  int
	saltLen int
	newAEAD func(key []byte) (cipher.AEAD, error)
	// newBlock expands the key of a stream method built on a block cipher, once per
	// Cipher; newStream then keys one direction of one connection from it and the IV.
	newBlock  func(key []byte) (cipher.Block, error)
	newStream func(c *Cipher, iv []byte, decrypt bool) (cipher.Stream, error)
}

// methods is the registry, keyed by canonical name. Aliases are resolved by canonical.
var methods = map[string]method{
	"none": {family: familyNone},

	"aes-128-cfb":   {family: familyStream, keyLen: 16, saltLen: aes.BlockSize, newBlock: aes.NewCipher, newStream: newCFB},
	"aes-192-cfb":   {family: familyStream, keyLen: 24, saltLen: aes.BlockSize, newBlock: aes.NewCipher, newStream: newCFB},
	"aes-256-cfb":   {family: familyStream, keyLen: 32, saltLen: aes.BlockSize, newBlock: aes.NewCipher, newStream: newCFB},
	"aes-128-ctr":   {family: familyStream, keyLen: 16, saltLen: aes.BlockSize, newBlock: aes.NewCipher, newStream: newCTR},
	"aes-192-ctr":   {family: familyStream, keyLen: 24, saltLen: aes.BlockSize, newBlock: aes.NewCipher, newStream: newCTR},
	"aes-256-ctr":   {family: familyStream, keyLen: 32, saltLen: aes.BlockSize, newBlock: aes.NewCipher, newStream: newCTR},
	"chacha20-ietf": {family: familyStream, keyLen: chacha20.KeySize, saltLen: chacha20.NonceSize, newStream: newChaCha20},

	"aes-128-gcm":            {family: familyAEAD, keyLen: 16, saltLen: 16, newAEAD: newGCM},
	"aes-192-gcm":            {family: familyAEAD, keyLen: 24, saltLen: 24, newAEAD: newGCM},
	"aes-256-gcm":            {family: familyAEAD, keyLen: 32, saltLen: 32, newAEAD: newGCM},
	"chacha20-ietf-poly1305": {family: familyAEAD, keyLen: 32, saltLen: 32, newAEAD: chacha20poly1305.New},

	"2022-blake3-aes-128-gcm":       {family: family2022, keyLen: 16, saltLen: 16, newAEAD: newGCM},
	"2022-blake3-aes-256-gcm":       {family: family2022, keyLen: 32, saltLen: 32, newAEAD: newGCM},
	"2022-blake3-chacha20-poly1305": {family: family2022, keyLen: 32, saltLen: 32, newAEAD: chacha20poly1305.New},
}

// canonical maps the spellings found in V2Ray, Xray and shadowsocks-libev configs to one
// name per method.
func canonical(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	switch name {
	case "plain":
		return "none"
	case "chacha20-poly1305", "aead_chacha20_poly1305":
		return "chacha20-ietf-poly1305"
	case "aead_aes_128_gcm":
		return "aes-128-gcm"
	case "aead_aes_256_gcm":
		return "aes-256-gcm"
	}
	return name
}

// Methods returns the canonical method names, sorted.
func Methods() []string {
	names := make([]string, 0, len(methods))
	for name := range methods {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Cipher is a method with its master key. It is immutable and safe for concurrent use;
// every connection derives its own session state from it.
type Cipher struct {
	name string
	method
	key []byte
	// block is the expanded key of a block-cipher stream method. The key is the same
	// for every connection and crypto/aes's Block is safe for concurrent use, so all
	// connections share one rather than each direction of each keeping its own 512 bytes.
	block cipher.Block
}

// NewCipher returns the cipher for a method name as written in V2Ray or shadowsocks-libev
// configs. Stream and AEAD methods derive the key from password with EVP_BytesToKey (MD5);
// SIP022 methods take password as the base64 pre-shared key itself; "none" ignores it.
func NewCipher(methodName, password string) (*Cipher, error) {
	name := canonical(methodName)
	m, ok := methods[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrCipher, methodName)
	}
	c := &Cipher{name: name, method: m}
	switch m.family {
	case familyNone:
	case family2022:
		if strings.Contains(password, ":") {
			return nil, fmt.Errorf("shadowsocks: %s: multi-user identity headers (iPSK:uPSK) are not supported", name)
		}
		key, err := base64.StdEncoding.DecodeString(password)
		if err != nil {
			return nil, fmt.Errorf("shadowsocks: %s: key is not base64: %w", name, err)
		}
		if len(key) != m.keyLen {
			return nil, fmt.Errorf("shadowsocks: %s: key is %d bytes, want %d (generate one with: openssl rand -base64 %d)",
				name, len(key), m.keyLen, m.keyLen)
		}
		c.key = key
	default:
		if password == "" {
			return nil, fmt.Errorf("shadowsocks: %s: empty password", name)
		}
		c.key = evpBytesToKey(password, m.keyLen)
		if m.newBlock != nil {
			block, err := m.newBlock(c.key)
			if err != nil {
				return nil, fmt.Errorf("shadowsocks: %s: %w", name, err)
			}
			c.block = block
		}
	}
	return c, nil
}

// Method returns the canonical method name.
func (c *Cipher) Method() string { return c.name }

// Insecure reports whether the method leaves traffic unauthenticated: stream ciphers are
// open to the redirect attack and to replay past the IV filter, and "none" encrypts nothing.
func (c *Cipher) Insecure() bool {
	return c.family == familyNone || c.family == familyStream
}

// evpBytesToKey is OpenSSL's EVP_BytesToKey with MD5, one iteration and no salt:
// D_1 = MD5(password), D_i = MD5(D_{i-1} || password), key = D_1 || D_2 || ...
func evpBytesToKey(password string, keyLen int) []byte {
	var key, prev []byte
	h := md5.New()
	for len(key) < keyLen {
		h.Reset()
		h.Write(prev)
		h.Write([]byte(password))
		prev = h.Sum(prev[:0])
		key = append(key, prev...)
	}
	return key[:keyLen]
}

// sessionAEAD derives the AEAD for one direction of one connection from its salt.
func (c *Cipher) sessionAEAD(salt []byte) (cipher.AEAD, error) {
	var subkey []byte
	switch c.family {
	case familyAEAD:
		k, err := hkdf.Key(sha1.New, c.key, salt, "ss-subkey", c.keyLen)
		if err != nil {
			return nil, fmt.Errorf("shadowsocks: subkey: %w", err)
		}
		subkey = k
	case family2022:
		material := make([]byte, 0, len(c.key)+len(salt))
		material = append(append(material, c.key...), salt...)
		subkey = make([]byte, c.keyLen)
		blake3.DeriveKey(subkey, "shadowsocks 2022 session subkey", material)
	default:
		return nil, fmt.Errorf("shadowsocks: %s is not an AEAD method", c.name)
	}
	return c.newAEAD(subkey)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// stream returns the keystream of one direction of one connection, starting at iv.
func (c *Cipher) stream(iv []byte, decrypt bool) (cipher.Stream, error) {
	return c.newStream(c, iv, decrypt)
}

func newCFB(c *Cipher, iv []byte, decrypt bool) (cipher.Stream, error) {
	// CFB is unauthenticated, which is why these methods report Insecure; they stay for
	// old peers. Ours gives crypto/cipher's bytes at a fraction of its cost per block.
	if decrypt {
		return cfb.NewDecrypter(c.block, iv)
	}
	return cfb.NewEncrypter(c.block, iv)
}

func newCTR(c *Cipher, iv []byte, _ bool) (cipher.Stream, error) {
	return cipher.NewCTR(c.block, iv), nil
}

func newChaCha20(c *Cipher, iv []byte, _ bool) (cipher.Stream, error) {
	return chacha20.NewUnauthenticatedCipher(c.key, iv)
}
