package vmess

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/proxychain/proxychain/proxy"
)

// ServerOptions configures a Server.
type ServerOptions struct {
	// AllowLegacy accepts legacy (MD5) headers from users with AlterID > 0. Off by
	// default: a legacy header has no integrity and probes can identify it.
	AllowLegacy bool
	Logger      *slog.Logger
	// Now is the clock; nil means time.Now. Tests inject one.
	Now func() time.Time
	// Replay is where the server records the requests it accepts; servers given the same
	// filter refuse a request any of them accepted. Nil gives the server its own.
	Replay *ReplayFilter
}

// ReplayFilter remembers the auth IDs and the body keys and IVs of accepted requests for
// as long as the time window could accept them again. Servers may share one whatever
// their users: each request's auth ID (sealed with its user's key) and body key are its
// own, so only a replay repeats them. The zero value is ready to use.
type ReplayFilter struct {
	mu       sync.Mutex
	seenIDs  expiringSet[[16]byte] // AEAD auth IDs
	sessions expiringSet[[32]byte] // body key || IV
}

// Server is a VMess inbound.
type Server struct {
	users   []User
	cmdKeys [][16]byte
	authIDs []cipher.Block // per user, AEAD header
	legacy  *legacyIndex   // nil unless AllowLegacy
	now     func() time.Time
	log     *slog.Logger
	replay  *ReplayFilter
}

var _ proxy.Inbound = (*Server)(nil)

// maxLegacyEntries bounds the legacy lookup table: every (user, id, second) in the window
// is one entry of roughly 40 bytes.
const maxLegacyEntries = 1 << 22

// NewServer returns an inbound accepting users. IDs must be unique.
func NewServer(users []User, opts ServerOptions) (*Server, error) {
	if len(users) == 0 {
		return nil, fmt.Errorf("vmess: inbound needs at least one user")
	}
	s := &Server{
		users:  append([]User(nil), users...),
		now:    opts.Now,
		log:    opts.Logger,
		replay: opts.Replay,
	}
	if s.replay == nil {
		s.replay = new(ReplayFilter)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	seen := make(map[[16]byte]bool, len(users))
	for _, u := range s.users {
		if err := u.validate(); err != nil {
			return nil, err
		}
		if seen[u.ID] {
			return nil, fmt.Errorf("vmess: duplicate user id %s", formatUUID(u.ID))
		}
		seen[u.ID] = true
		k := cmdKey(u.ID)
		s.cmdKeys = append(s.cmdKeys, k)
		s.authIDs = append(s.authIDs, authIDCipher(k))
	}
	if opts.AllowLegacy {
		idx, err := newLegacyIndex(s.users, s.now().Unix())
		if err != nil {
			return nil, err
		}
		s.legacy = idx
		s.log.Warn("vmess: legacy (alterId > 0) headers accepted; they lack integrity and probes can identify them")
	}
	return s, nil
}

// Insecure reports whether the server accepts legacy headers.
func (s *Server) Insecure() bool { return s.legacy != nil }

// Handshake decodes the request header. The response header goes out with the first
// bytes written to the returned Conn (or at its CloseWrite), so a client learns nothing
// until the upstream answers. A request that fails authentication, is replayed or is
// malformed gets no reply: the connection is read and discarded until the peer closes or
// the deadline set by proxy.Server fires, so the close says nothing about what was read.
func (s *Server) Handshake(ctx context.Context, c net.Conn) (*proxy.Request, error) {
	r := newChunkReader(c)
	sess, err := s.decode(r)
	if err != nil {
		r.release()
		drain(ctx, c)
		return nil, err
	}
	s.log.Debug("vmess: request", "user", s.users[sess.user].Email, "destination", sess.h.dest, "legacy", !sess.aead)
	return &proxy.Request{Destination: sess.h.dest, Conn: s.accept(c, r, sess)}, nil
}

func drain(ctx context.Context, c net.Conn) {
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	io.Copy(io.Discard, c)
}

func readErr(err error) error { return fmt.Errorf("vmess: read request header: %w", err) }

type session struct {
	user int
	aead bool
	h    requestHeader
}

// decode reads and checks a request header from r.
func (s *Server) decode(r *chunkReader) (session, error) {
	var sess session
	b, err := r.take(16)
	if err != nil {
		return sess, readErr(err)
	}
	auth := [16]byte(b)
	now := s.now()
	var plain []byte
	var hdr [maxHeaderLen]byte
	var authTime int64
	if user, ts, ok, err := s.matchAuthID(&auth, now.Unix()); err != nil {
		return sess, err
	} else if ok {
		authTime = ts
		sess.user, sess.aead = user, true
		plain, err = s.openAEAD(r, user, auth, hdr[:0])
		if err != nil {
			return sess, err
		}
	} else if s.legacy != nil {
		user, ts, ok := s.legacy.lookup(auth, now.Unix())
		if !ok {
			return sess, ErrAuth
		}
		sess.user = user
		plain, err = readLegacyHeader(r, s.cmdKeys[user], ts, hdr[:0])
		if err != nil {
			return sess, err
		}
	} else {
		return sess, ErrAuth
	}
	sess.h, err = parseRequestHeader(plain)
	if err != nil {
		return sess, err
	}
	spec := bodySpec{security: sess.h.security, options: sess.h.options, key: sess.h.bodyKey, iv: sess.h.bodyIV}
	if err := spec.check(); err != nil {
		return sess, err
	}
	// Only a request that authenticated in full is remembered, so garbage sent after a
	// captured auth ID cannot use it up.
	var sid [32]byte
	copy(sid[:16], sess.h.bodyKey[:])
	copy(sid[16:], sess.h.bodyIV[:])
	f := s.replay
	f.mu.Lock()
	defer f.mu.Unlock()
	// After ts+window the time check refuses an auth ID anyway.
	if sess.aead && !f.seenIDs.add(auth, now.Unix(), authTime+authIDWindow+1) {
		return sess, fmt.Errorf("%w: auth id seen before", ErrReplay)
	}
	if !f.sessions.add(sid, now.Unix(), now.Unix()+2*authIDWindow+1) {
		return sess, fmt.Errorf("%w: session key and iv seen before", ErrReplay)
	}
	return sess, nil
}

// matchAuthID finds the user whose auth-ID key decrypts auth to a valid block. Each user
// costs one AES block decryption and a CRC32 of 12 bytes.
func (s *Server) matchAuthID(auth *[16]byte, now int64) (user int, ts int64, ok bool, err error) {
	plain := new([16]byte)
	for i, block := range s.authIDs {
		ts, ok := openAuthID(block, auth, plain)
		if !ok {
			continue
		}
		if ts < now-authIDWindow || ts > now+authIDWindow {
			// Most likely this user's stale request, but keep looking: a 32-bit
			// checksum passes by chance once in 2^32 tries.
			err = fmt.Errorf("%w: auth id time %d, now %d", ErrExpired, ts, now)
			continue
		}
		return i, ts, true, nil
	}
	return 0, 0, false, err
}

// openAEAD reads the rest of an AEAD request: sealed length, nonce, sealed header.
func (s *Server) openAEAD(r *chunkReader, user int, authID [16]byte, dst []byte) ([]byte, error) {
	b, err := r.take(2 + tagSize + 8)
	if err != nil {
		return nil, readErr(err)
	}
	var sealedLen [2 + tagSize]byte
	copy(sealedLen[:], b)
	nonce := [8]byte(b[2+tagSize:])
	lenAEAD, lenNonce, hdrAEAD, hdrNonce := headerAEADs(s.cmdKeys[user], authID, nonce)
	var l [2]byte
	if _, err := lenAEAD.Open(l[:0], lenNonce, sealedLen[:], authID[:]); err != nil {
		return nil, fmt.Errorf("%w: sealed length: %w", ErrHeader, err)
	}
	n := int(binary.BigEndian.Uint16(l[:]))
	if n > maxHeaderLen {
		return nil, fmt.Errorf("%w: header length %d", ErrHeader, n)
	}
	b, err = r.take(n + tagSize)
	if err != nil {
		return nil, readErr(err)
	}
	plain, err := hdrAEAD.Open(dst, hdrNonce, b, authID[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrHeader, err)
	}
	return plain, nil
}

// readLegacyHeader decrypts the legacy command section field by field: its length is
// only known once the address type and padding length are.
func readLegacyHeader(r *chunkReader, key [16]byte, ts int64, dst []byte) ([]byte, error) {
	block, _ := aes.NewCipher(key[:])
	iv := legacyTimeIV(ts)
	// CFB is what the legacy header is; only AllowLegacy gets here.
	stream := cipher.NewCFBDecrypter(block, iv[:])
	next := func(n int) error {
		b, err := r.take(n)
		if err != nil {
			return readErr(err)
		}
		dst = append(dst, b...)
		stream.XORKeyStream(dst[len(dst)-n:], dst[len(dst)-n:])
		return nil
	}
	if err := next(headerFixedLen); err != nil {
		return nil, err
	}
	var rest int
	switch dst[headerFixedLen-1] {
	case addrIPv4:
		rest = 4
	case addrIPv6:
		rest = 16
	case addrDomain:
		if err := next(1); err != nil {
			return nil, err
		}
		rest = int(dst[headerFixedLen])
	default:
		return nil, fmt.Errorf("%w: address type %d", ErrHeader, dst[headerFixedLen-1])
	}
	rest += int(dst[35]>>4) + 4
	if err := next(rest); err != nil {
		return nil, err
	}
	return dst, nil
}

// accept builds the server side of the stream and seals the response header that goes
// out with its first write.
func (s *Server) accept(c net.Conn, r *chunkReader, sess session) net.Conn {
	h := &sess.h
	spec := bodySpec{security: h.security, options: h.options, key: h.bodyKey, iv: h.bodyIV}
	rkey, riv := responseKeys(sess.aead, h.bodyKey, h.bodyIV)
	r.startBody(spec.framer(h.bodyKey, h.bodyIV))
	prefix := sealResponseHeader(sess.aead, rkey, riv, h.respAuth)
	return &conn{Conn: c, r: r, w: chunkWriter{w: c, f: spec.framer(rkey, riv), prefix: prefix}}
}

// sealResponseHeader seals [response auth][options][command][command length] with no
// options and no command.
func sealResponseHeader(aeadHeader bool, rkey, riv [16]byte, respAuth byte) []byte {
	plain := []byte{respAuth, 0, 0, 0}
	if aeadHeader {
		lenAEAD, lenNonce := responseLenAEAD(rkey, riv)
		hdrAEAD, hdrNonce := responseHeaderAEAD(rkey, riv)
		out := lenAEAD.Seal(nil, lenNonce, binary.BigEndian.AppendUint16(nil, uint16(len(plain))), nil)
		return hdrAEAD.Seal(out, hdrNonce, plain, nil)
	}
	block, _ := aes.NewCipher(rkey[:])
	cipher.NewCFBEncrypter(block, riv[:]).XORKeyStream(plain, plain)
	return plain
}

// expiringSet remembers keys until their expiry (unix seconds).
type expiringSet[K comparable] struct {
	seen      map[K]int64
	lastSweep int64
}

// add records key and reports whether it was new. Expired keys are swept at most once a
// second, so the map holds only what the window can still accept.
func (f *expiringSet[K]) add(key K, now, expiry int64) bool {
	if f.seen == nil {
		f.seen = make(map[K]int64)
	}
	if now != f.lastSweep {
		f.lastSweep = now
		for k, exp := range f.seen {
			if exp < now {
				delete(f.seen, k)
			}
		}
	}
	if exp, ok := f.seen[key]; ok && exp >= now {
		return false
	}
	f.seen[key] = expiry
	return true
}

// legacyIndex maps a legacy auth hash to its user and timestamp. It holds every
// HMAC-MD5(id, t) for each user's alter IDs and each second t within authIDWindow of now,
// one map per second keyed by the hash's first 8 bytes, and moves its window along as the
// clock advances: each new second costs one HMAC per ID and replaces the map of a second
// that left the window. (One map for the whole window would churn with deletions.)
type legacyIndex struct {
	mu    sync.Mutex
	ids   []legacyID
	slots []legacySlot // second t lives in slots[t mod len]
	lo    int64        // first second covered; lo+len(slots)-1 is the last
	empty bool
}

type legacyID struct {
	user int
	id   [16]byte
	mac  hash.Hash
}

type legacySlot struct {
	t      int64
	byHash map[uint64]uint32 // hash prefix -> index into ids
}

func newLegacyIndex(users []User, now int64) (*legacyIndex, error) {
	x := &legacyIndex{slots: make([]legacySlot, 2*authIDWindow+1), empty: true}
	for i, u := range users {
		// V2Ray clients with alter IDs authenticate with one of those, never the primary.
		for _, id := range alterIDs(u.ID, u.AlterID) {
			x.ids = append(x.ids, legacyID{user: i, id: id, mac: hmac.New(md5.New, id[:])})
		}
	}
	if n := len(x.ids) * len(x.slots); n > maxLegacyEntries {
		return nil, fmt.Errorf("vmess: legacy lookup for %d alter ids over %d seconds needs %d entries, over the limit %d; lower alterId or disable legacy",
			len(x.ids), len(x.slots), n, maxLegacyEntries)
	}
	for i := range x.slots {
		x.slots[i].byHash = make(map[uint64]uint32, len(x.ids))
	}
	x.advance(now)
	return x, nil
}

func (x *legacyIndex) lookup(auth [16]byte, now int64) (user int, ts int64, ok bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.advance(now)
	key := binary.BigEndian.Uint64(auth[:8])
	for i := range x.slots {
		slot := &x.slots[i]
		idx, ok := slot.byHash[key]
		// The maps key on 8 bytes; confirm all 16.
		if ok && legacyAuth(x.ids[idx].id, slot.t) == auth {
			return x.ids[idx].user, slot.t, true
		}
	}
	return 0, 0, false
}

// advance moves the covered window to [now-window, now+window].
func (x *legacyIndex) advance(now int64) {
	lo := now - authIDWindow
	if lo == x.lo && !x.empty {
		return
	}
	n := int64(len(x.slots))
	var ts [8]byte
	var sum [16]byte
	for t := lo; t < lo+n; t++ {
		slot := &x.slots[((t%n)+n)%n]
		if !x.empty && slot.t == t {
			continue
		}
		slot.t = t
		clear(slot.byHash)
		binary.BigEndian.PutUint64(ts[:], uint64(t))
		for i := range x.ids {
			m := x.ids[i].mac
			m.Reset()
			m.Write(ts[:])
			slot.byHash[binary.BigEndian.Uint64(m.Sum(sum[:0]))] = uint32(i)
		}
	}
	x.lo, x.empty = lo, false
}
