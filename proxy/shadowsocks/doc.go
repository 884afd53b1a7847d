// Package shadowsocks implements Shadowsocks over TCP, client (an Outbound that dials
// its server through a parent Dialer) and server (an Inbound), for three editions.
//
// Stream ciphers (aes-{128,192,256}-{cfb,ctr}, chacha20-ietf). The key is
// EVP_BytesToKey(MD5) of the password; each direction starts with a random IV and is
// XORed with the keystream. Unauthenticated: Cipher.Insecure reports true.
//
//	request:  [IV 16 (12 for chacha20-ietf)][E(address || payload ...)]
//	response: [IV][E(payload ...)]
//
// AEAD (2017: aes-{128,192,256}-gcm, chacha20-ietf-poly1305). The master key is
// EVP_BytesToKey(MD5) of the password; each direction draws a salt as long as the key and
// derives its session subkey with HKDF-SHA1(key, salt, "ss-subkey"). The nonce is a 12-byte
// little-endian counter, incremented after every seal or open. A payload chunk holds at
// most 0x3FFF bytes; the client's first chunk starts with the address.
//
//	[salt][len][len tag][payload][payload tag][len][len tag][payload][payload tag]...
//	        2     16     <=0x3FFF    16
//
// SIP022, Shadowsocks 2022 (2022-blake3-aes-{128,256}-gcm, 2022-blake3-chacha20-poly1305).
// The password is the base64 pre-shared key itself (16 or 32 bytes); the session subkey
// is BLAKE3 derive_key("shadowsocks 2022 session subkey", PSK || salt). Chunks are sealed
// as in AEAD 2017, up to 0xFFFF bytes, and two header chunks protect against replay:
//
//	request:  [salt][fixed header + tag][variable header + tag][len + tag][payload + tag]...
//	  fixed:    [type 0][timestamp u64 BE][variable header length u16 BE]
//	  variable: [address][padding length u16 BE][padding][initial payload]
//	response: [salt][fixed header + tag][first payload + tag][len + tag][payload + tag]...
//	  fixed:    [type 1][timestamp u64 BE][request salt][first payload length u16 BE]
//
// Timestamps more than 30 s off are refused, salts are remembered for 60 s (server: the
// request salts; client: the response salts), and the client checks that the response
// names its request salt. A request header sent without payload carries 1..900 bytes
// of padding. Multi-user identity headers (EIH) are not implemented.
//
// "none" (alias "plain") sends the address and the payload in the clear.
//
// Addresses are SOCKS5 addresses (see proxy/socksaddr). All editions send at most 0x3FFF
// payload bytes per chunk, so a record always fits one pooled buffer (proxy/internal/bufpool);
// a SIP022 peer's larger chunks are read into a 64 KiB buffer taken when first needed.
//
// The client sends nothing at dial time: the salt, headers and address go out with the
// first Write, in one record with the first payload, or alone before the first Read if
// the application reads first. Servers refuse bad handshakes silently (see Server) and
// keep replay filters: AEAD salts and stream IVs in a filter bounded by count
// (NewReplayFilter), SIP022 salts for 60 s. Servers of one method and key may share a
// filter (ServerOptions.Replay), so that none accepts what another has.
package shadowsocks
