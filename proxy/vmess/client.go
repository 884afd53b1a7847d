package vmess

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"strings"
	"time"

	"golang.org/x/sys/cpu"

	"github.com/proxychain/proxychain/proxy"
)

// Client is a VMess outbound: it dials its server through a parent dialer.
type Client struct {
	tag      string
	server   string
	user     User
	parent   proxy.Dialer
	security byte // on the wire
	options  byte
	cmdKey   [16]byte
	authID   cipher.Block // AEAD header
	alterIDs [][16]byte   // legacy header
	now      func() time.Time
}

var _ proxy.Outbound = (*Client)(nil)

// parseSecurity maps a config name to the wire security and the request options V2Ray
// sends with it: chunk stream always, masking for every chunked security, and global
// padding with the AEAD ones. "zero" is security none with no chunk stream at all.
func parseSecurity(name string) (security, options byte, err error) {
	switch strings.ToLower(name) {
	case "", "auto":
		if hasAESHardware() {
			return secAES128GCM, optChunkStream | optChunkMasking | optGlobalPadding, nil
		}
		return secChacha20Poly1305, optChunkStream | optChunkMasking | optGlobalPadding, nil
	case "aes-128-gcm":
		return secAES128GCM, optChunkStream | optChunkMasking | optGlobalPadding, nil
	case "chacha20-poly1305":
		return secChacha20Poly1305, optChunkStream | optChunkMasking | optGlobalPadding, nil
	case "none":
		return secNone, optChunkStream | optChunkMasking, nil
	case "zero":
		return secNone, 0, nil
	}
	return 0, 0, fmt.Errorf("vmess: unknown security %q (want aes-128-gcm, chacha20-poly1305, none, zero or auto)", name)
}

func hasAESHardware() bool {
	return cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ || cpu.ARM64.HasAES || cpu.S390X.HasAES
}

// NewClient returns an outbound that reaches server (host:port) through parent. The user's
// AlterID picks the header: legacy (MD5) when > 0, AEAD when 0.
func NewClient(tag, server string, user User, security string, parent proxy.Dialer) (*Client, error) {
	if err := user.validate(); err != nil {
		return nil, err
	}
	if _, _, err := net.SplitHostPort(server); err != nil {
		return nil, fmt.Errorf("vmess: outbound %q: bad server address %q: %w", tag, server, err)
	}
	if parent == nil {
		return nil, fmt.Errorf("vmess: outbound %q: no parent dialer", tag)
	}
	sec, opts, err := parseSecurity(security)
	if err != nil {
		return nil, err
	}
	c := &Client{
		tag: tag, server: server, user: user, parent: parent,
		security: sec, options: opts,
		cmdKey: cmdKey(user.ID),
		now:    time.Now,
	}
	if user.AlterID > 0 {
		c.alterIDs = alterIDs(user.ID, user.AlterID)
	} else {
		c.authID = authIDCipher(c.cmdKey)
	}
	return c, nil
}

// Tag names the outbound.
func (c *Client) Tag() string { return c.tag }

func (c *Client) hop() proxy.Hop { return proxy.Hop{Protocol: "vmess", Tag: c.tag, Server: c.server} }

// DialContext dials the server through the parent and sends the request header for
// address. The returned conn reads the response header before the first body byte.
func (c *Client) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if err := proxy.CheckNetwork(network); err != nil {
		return nil, err
	}
	h, wire, err := c.newRequest(address)
	if err != nil {
		return nil, err
	}
	aeadHeader := c.alterIDs == nil
	raw, err := c.parent.DialContext(ctx, "tcp", c.server)
	if err != nil {
		return nil, c.hop().WrapDial(err)
	}
	if d, ok := ctx.Deadline(); ok {
		raw.SetWriteDeadline(d)
	}
	if _, err := raw.Write(wire); err != nil {
		raw.Close()
		return nil, c.hop().Wrap(fmt.Errorf("send request: %w", err))
	}
	raw.SetWriteDeadline(time.Time{})

	spec := bodySpec{security: h.security, options: h.options, key: h.bodyKey, iv: h.bodyIV}
	rkey, riv := responseKeys(aeadHeader, h.bodyKey, h.bodyIV)
	vc := &conn{Conn: raw, r: newChunkReader(raw)}
	vc.w = chunkWriter{w: raw, f: spec.framer(h.bodyKey, h.bodyIV)}
	resp := &responseReader{r: vc.r, aead: aeadHeader, key: rkey, iv: riv, auth: h.respAuth}
	// The response header is read on the first read, after DialContext has returned, so
	// its errors are named here: a refusal reads the same at every VMess hop of a chain.
	vc.head = func() error {
		if err := resp.read(); err != nil {
			return c.hop().Wrap(err)
		}
		vc.r.startBody(spec.framer(rkey, riv))
		return nil
	}
	return vc, nil
}

// newRequest builds a request header for address and its bytes on the wire.
func (c *Client) newRequest(address string) (*requestHeader, []byte, error) {
	var addrBuf [1 + 2 + 1 + 255]byte
	addr, err := appendAddress(addrBuf[:0], address)
	if err != nil {
		return nil, nil, err
	}
	h := new(requestHeader)
	var random [16 + 16 + 1 + 1 + 15]byte
	rand.Read(random[:])
	h.bodyIV = [16]byte(random[0:16])
	h.bodyKey = [16]byte(random[16:32])
	h.respAuth = random[32]
	padding := random[34 : 34+int(random[33]%16)]
	h.options, h.security, h.command = c.options, c.security, cmdTCP
	var plain [maxHeaderLen]byte
	header := appendRequestHeader(plain[:0], h, addr, padding)
	if c.alterIDs == nil {
		return h, c.sealAEAD(header), nil
	}
	return h, c.sealLegacy(header), nil
}

func (c *Client) sealAEAD(header []byte) []byte {
	var random [4 + 8]byte
	rand.Read(random[:])
	authID := sealAuthID(c.authID, c.now().Unix(), [4]byte(random[:4]))
	return sealAEADRequest(make([]byte, 0, 16+18+8+len(header)+16), c.cmdKey, authID, [8]byte(random[4:]), header)
}

// sealLegacy authenticates with a random alter ID at a timestamp up to 30 s either side of
// now, as V2Ray does, and encrypts the header with AES-128-CFB under the primary ID's key.
func (c *Client) sealLegacy(header []byte) []byte {
	jitter, _ := rand.Int(rand.Reader, big.NewInt(61))
	pick, _ := rand.Int(rand.Reader, big.NewInt(int64(len(c.alterIDs))))
	return sealLegacyRequest(c.cmdKey, c.alterIDs[pick.Int64()], c.now().Unix()+jitter.Int64()-30, header)
}

func sealLegacyRequest(cmdKey, alterID [16]byte, ts int64, header []byte) []byte {
	auth := legacyAuth(alterID, ts)
	out := append(make([]byte, 0, 16+len(header)), auth[:]...)
	out = append(out, header...)
	block, _ := aes.NewCipher(cmdKey[:])
	iv := legacyTimeIV(ts)
	// CFB is what the legacy header is; the protocol offers no integrity beyond FNV-1a.
	cipher.NewCFBEncrypter(block, iv[:]).XORKeyStream(out[16:], out[16:])
	return out
}

// responseReader decodes the response header in steps, so a read that times out halfway
// can be retried.
type responseReader struct {
	r       *chunkReader
	aead    bool
	key, iv [16]byte
	auth    byte

	step   int   // 0: start; 1: AEAD length read or legacy fixed part read
	length int   // AEAD header length, or legacy command length
	err    error // final: the header failed to authenticate
}

const maxResponseHeader = 4 + 255

func (rr *responseReader) read() error {
	if rr.err != nil {
		return rr.err
	}
	err := rr.step1()
	if err == nil {
		err = rr.step2()
	}
	if errors.Is(err, ErrResponse) {
		rr.err = err
	}
	return err
}

func (rr *responseReader) step1() error {
	if rr.step > 0 {
		return nil
	}
	if rr.aead {
		b, err := rr.r.take(2 + tagSize)
		if err != nil {
			return rr.eof(err)
		}
		lenAEAD, lenNonce := responseLenAEAD(rr.key, rr.iv)
		var l [2]byte
		if _, err := lenAEAD.Open(l[:0], lenNonce, b, nil); err != nil {
			return fmt.Errorf("%w: length: %w", ErrResponse, err)
		}
		rr.length = int(binary.BigEndian.Uint16(l[:]))
		if rr.length < 4 || rr.length > maxResponseHeader {
			return fmt.Errorf("%w: length %d", ErrResponse, rr.length)
		}
	} else {
		b, err := rr.r.take(4)
		if err != nil {
			return rr.eof(err)
		}
		block, _ := aes.NewCipher(rr.key[:])
		var h [4]byte
		cipher.NewCFBDecrypter(block, rr.iv[:]).XORKeyStream(h[:], b)
		if err := rr.checkFixed(h[:]); err != nil {
			return err
		}
		rr.length = int(h[3])
	}
	rr.step = 1
	return nil
}

func (rr *responseReader) step2() error {
	if rr.aead {
		b, err := rr.r.take(rr.length + tagSize)
		if err != nil {
			return rr.eof(err)
		}
		hdrAEAD, hdrNonce := responseHeaderAEAD(rr.key, rr.iv)
		var plain [maxResponseHeader]byte
		h, err := hdrAEAD.Open(plain[:0], hdrNonce, b, nil)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrResponse, err)
		}
		if err := rr.checkFixed(h); err != nil {
			return err
		}
		if 4+int(h[3]) != len(h) {
			return fmt.Errorf("%w: command length %d in a %d-byte header", ErrResponse, h[3], len(h))
		}
		return nil
	}
	// The legacy header's command (a dynamic port switch) is skipped, undecrypted: the
	// body does not continue its CFB stream.
	if _, err := rr.r.take(rr.length); err != nil {
		return rr.eof(err)
	}
	return nil
}

func (rr *responseReader) checkFixed(h []byte) error {
	if h[0] != rr.auth {
		return fmt.Errorf("%w: response auth %#x, want %#x", ErrResponse, h[0], rr.auth)
	}
	return nil
}

// eof makes a close before the header is complete an error: the server refused us, or
// the upstream dial failed and the server closed.
func (rr *responseReader) eof(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("%w: connection closed before the response header", ErrResponse)
	}
	return err
}
