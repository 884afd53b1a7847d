// Package vmess implements V2Ray's VMess protocol over TCP, as spoken by v2ray 4.x: the
// AEAD request header (alterId 0) and the legacy MD5 header (alterId > 0), with body
// security aes-128-gcm, chacha20-poly1305, none and zero.
//
// # Request (client to server)
//
// AEAD header, for alterId 0:
//
//	[auth ID: 16][sealed length: 2+16][nonce: 8][sealed command section: n+16][body...]
//
//	auth ID  = AES-128-ECB(KDF16(cmdKey, "AES Auth ID Encryption"),
//	                       [unix time: 8][random: 4][CRC32 of the 12 bytes: 4])
//	length   = AES-128-GCM, key KDF16(cmdKey, "VMess Header AEAD Key_Length", authID, nonce),
//	           nonce KDF(cmdKey, "VMess Header AEAD Nonce_Length", authID, nonce)[:12],
//	           additional data the auth ID
//	command  = the same with "VMess Header AEAD Key" and "VMess Header AEAD Nonce"
//	KDF(k, p1, p2, ...) = HMAC(H_n, k), where H_0 = HMAC-SHA256 keyed with "VMess AEAD KDF"
//	           and H_i is HMAC over H_(i-1) keyed with p_i
//	cmdKey   = MD5(user ID || "c48619fe-8f02-49e0-b9e9-edf763e17e21")
//
// The server accepts an auth ID whose time is within 120 s of its clock, once: auth IDs
// are remembered until their time leaves the window.
//
// Legacy header, for alterId > 0:
//
//	[HMAC-MD5(alter ID, unix time): 16][command section, AES-128-CFB][body...]
//
// The client picks one of the user's alter IDs (derived from the user ID by an MD5
// chain) and a time up to 30 s either side of now; the CFB key is cmdKey and the IV is
// MD5 of the 8-byte time four times. The server precomputes the hashes of every alter ID
// for each second within 120 s of its clock. The header has no integrity beyond its
// FNV-1a checksum, so it is refused unless ServerOptions.AllowLegacy is set.
//
// Command section (both headers), then FNV-1a-32 of everything before it:
//
//	[ver=1][body IV: 16][body key: 16][resp auth: 1][options: 1][padding len:4 | security:4]
//	[reserved: 1][command=1 tcp][port: 2][addr type: 1][address][padding][FNV1a: 4]
//
//	addr type 1: IPv4 (4 bytes)  2: domain (length byte, name)  3: IPv6 (16 bytes)
//	security  3: aes-128-gcm  4: chacha20-poly1305  5: none ("zero" is 5 without chunk stream)
//	options   0x01 chunk stream  0x04 chunk masking  0x08 global padding
//	          0x10 authenticated length (decoded; our client does not send it)
//
// Every body key and IV pair is remembered for the whole window, so a replayed session is
// refused under either header. A domain name that socksaddr.CheckDomain refuses (one the
// router or the next hop would read as another host) makes a bad header.
//
// # Response (server to client)
//
//	response key, IV = SHA-256(body key)[:16], SHA-256(body IV)[:16]   (AEAD header)
//	                 = MD5(body key), MD5(body IV)                     (legacy header)
//
//	AEAD:   [sealed length: 2+16][sealed header: 4+16][body...]
//	        keys KDF16(response key, "AEAD Resp Header Len Key" / "AEAD Resp Header Key"),
//	        nonces KDF(response IV, "AEAD Resp Header Len IV" / "AEAD Resp Header IV")[:12]
//	legacy: [header: 4, AES-128-CFB under the response key and IV][body...]
//
//	header = [resp auth][options=0][command=0][command length=0]
//
// The server sends its response header together with the first body bytes it writes (or
// with the end chunk, if the upstream sends nothing), as V2Ray does.
//
// # Body (each direction; the response uses the response key and IV)
//
//	[size: 2][payload sealed with tag: n+16][padding: 0..63] ... [end chunk]
//
//	size    = len(sealed payload) + len(padding), XORed with the next two bytes of
//	          SHAKE128(IV) under chunk masking; under authenticated length it is instead
//	          sealed (2+16 bytes) with a key derived from the request body key
//	padding = (next two SHAKE128 bytes) mod 64, drawn before the size mask, under global
//	          padding; sent as random bytes
//	nonce   = [chunk counter: 2, big endian, from 0][IV bytes 2..11]
//	key     = body key (aes-128-gcm), or MD5(key) || MD5(MD5(key)) (chacha20-poly1305)
//
// Security none sends [size][payload] chunks (masked, never padded); zero sends the bytes
// as they are. The end of a stream is a chunk with no payload; CloseWrite sends it, then
// half-closes the connection beneath. A connection that closes between chunks also ends
// the stream, as in V2Ray.
//
// The chunk counter is 16 bits. V2Ray lets it wrap and reuse nonces; our reader accepts
// that from a peer, but our writer refuses to (ErrNonceExhausted), which limits one stream
// to 65535 chunks each way. A write is at least one chunk, so that is about 1 GiB for a
// saturated stream in our 16 KiB chunks, but only 65535 writes for an interactive one
// (an SSH session's keystrokes, say), after which the connection ends.
package vmess
