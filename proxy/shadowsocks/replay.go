package shadowsocks

import (
	"crypto/sha256"
	"sync"
	"time"
)

// DefaultReplayCapacity is how many salts (or IVs) a stream or AEAD replay filter
// remembers by default: at least this many, at most twice as many. At 32 bytes a salt
// plus map overhead that is a few megabytes per filter.
const DefaultReplayCapacity = 1 << 16

// ReplayFilter remembers the salts (stream methods: IVs) that servers of one method and
// key have seen, so that a request one of them accepted, all of them refuse. Only
// servers of that method and key can use it: under any other, a replayed salt fails to
// authenticate anyway.
type ReplayFilter struct {
	key   ReplayKey
	salts *saltSet
}

// NewReplayFilter returns a filter for servers of c's method and key. For AEAD (2017) and
// stream methods it remembers at least capacity salts and at most twice as many; zero
// means DefaultReplayCapacity. For SIP022 methods it remembers every salt for 60 seconds,
// as their spec requires, whatever the capacity.
func NewReplayFilter(c *Cipher, capacity int) *ReplayFilter {
	f := &ReplayFilter{key: c.ReplayKey()}
	switch {
	case c.family == family2022:
		f.salts = newTimedSaltSet(saltTTL)
	case capacity > 0:
		f.salts = newCountedSaltSet(capacity)
	default:
		f.salts = newCountedSaltSet(DefaultReplayCapacity)
	}
	return f
}

// ReplayKey is what servers must have in common to share a ReplayFilter: the method and
// the key. It is comparable, to key a map of filters by.
type ReplayKey struct {
	method string
	key    [sha256.Size]byte // a digest, so that printing a ReplayKey does not print the key
}

// ReplayKey returns the ReplayKey of c's method and key.
func (c *Cipher) ReplayKey() ReplayKey {
	return ReplayKey{method: c.name, key: sha256.Sum256(c.key)}
}

// saltTTL is how long SIP022 requires incoming salts to be remembered (section 3.1.4),
// and timestampWindow the clock difference beyond which a header counts as a replay.
const (
	saltTTL         = 60 * time.Second
	timestampWindow = 30 * time.Second
)

// saltSet remembers salts in two generations: lookups consult both, inserts go to the
// current one, and when the current one is full (or old) it becomes the previous one and
// the old previous one is dropped. Memory stays bounded without a sweep, and there are
// no false positives (SIP022 forbids Bloom filters).
type saltSet struct {
	mu       sync.Mutex
	cur      map[string]struct{}
	prev     map[string]struct{}
	capacity int           // rotate when cur holds this many; 0 means no limit
	ttl      time.Duration // rotate when cur is this old; 0 means no age limit
	born     time.Time     // when cur was created
}

// newCountedSaltSet remembers at least the last capacity salts, for the AEAD salt and
// stream IV filters, which have no timestamps to bound them.
func newCountedSaltSet(capacity int) *saltSet {
	return &saltSet{cur: map[string]struct{}{}, capacity: capacity}
}

// newTimedSaltSet remembers every salt for at least ttl, for SIP022, whose timestamps
// make older salts harmless.
func newTimedSaltSet(ttl time.Duration) *saltSet {
	return &saltSet{cur: map[string]struct{}{}, ttl: ttl}
}

// add records salt and reports whether it was new. now matters only to timed sets.
func (s *saltSet) add(salt []byte, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ttl > 0 {
		if s.born.IsZero() {
			s.born = now
		}
		// A salt added at t is dropped at the second rotation after t; the first comes
		// no earlier than t, and the second at least ttl after the first.
		if now.Sub(s.born) >= s.ttl {
			s.rotate(now)
		}
	}
	if _, ok := s.cur[string(salt)]; ok {
		return false
	}
	if _, ok := s.prev[string(salt)]; ok {
		return false
	}
	if s.capacity > 0 && len(s.cur) >= s.capacity {
		s.rotate(now)
	}
	s.cur[string(salt)] = struct{}{}
	return true
}

func (s *saltSet) rotate(now time.Time) {
	s.prev = s.cur
	s.cur = make(map[string]struct{}, len(s.prev))
	s.born = now
}
