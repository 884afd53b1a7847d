// Package bufpool pools the relay and record buffers of the data plane. A connection
// holds at most one per direction for its relay and for each protocol layer, and those
// only while bytes move through them.
//
// Buffers come in three sizes. A direction reads into a Size buffer; once a read fills it,
// more input is evidently waiting, and the direction moves to a LargeSize one until a
// read drains its source. Fewer, larger reads and writes are what a saturated stream
// needs: on loopback a read or write costs the kernel mostly per call, not per byte (66
// KiB writes take about half the kernel time per byte of 16 KiB ones; see
// BenchmarkLoopbackWrite), while interactive traffic and idle connections never hold
// more than Size. A protocol reader whose source is another protocol layer, not a
// socket, moves to a LayeredSize one instead.
package bufpool

import (
	"sync"
	"sync/atomic"
	"time"
)

const (
	// Size is the buffer a direction starts with. The largest record any protocol here
	// sends (a Shadowsocks AEAD chunk, 2+16+0x3FFF+16 bytes) fits.
	Size = 20 << 10
	// LargeSize is the buffer of a saturated direction. The largest chunk a peer may
	// send (a 16-bit length of payload with its framing, in VMess and SIP022) fits.
	LargeSize = 66 << 10
	// LayeredSize is the large buffer of a reader that reads through another protocol
	// layer (VMess through Shadowsocks, say). One read of the layer beneath hands up
	// what one LargeSize read of its own brought, and this reader must take all of it
	// behind the unfinished chunk at its front: what it left would come up by itself on
	// the next read and go on as a write of its own, two writes per read where one
	// does. The room beyond LargeSize holds an unfinished 16 KiB chunk with its
	// framing, and 88 KiB is a whole number of the runtime's 8 KiB pages, so none of
	// the allocation lies unused.
	LayeredSize = 88 << 10
)

var (
	pool        = sync.Pool{New: func() any { b := make([]byte, Size); return &b }}
	largePool   = sync.Pool{New: func() any { b := make([]byte, LargeSize); return &b }}
	layeredPool = sync.Pool{New: func() any { b := make([]byte, LayeredSize); return &b }}
	outstanding atomic.Int64
)

// Get returns a buffer of len Size.
func Get() *[]byte {
	outstanding.Add(1)
	return pool.Get().(*[]byte)
}

// GetLarge returns a buffer of len LargeSize.
func GetLarge() *[]byte {
	outstanding.Add(1)
	return largePool.Get().(*[]byte)
}

// GetLayered returns a buffer of len LayeredSize.
func GetLayered() *[]byte {
	outstanding.Add(1)
	return layeredPool.Get().(*[]byte)
}

// Put returns b to its pool. b must have come from Get, GetLarge or GetLayered.
func Put(b *[]byte) {
	outstanding.Add(-1)
	switch c := cap(*b); {
	case c >= LayeredSize:
		*b = (*b)[:LayeredSize]
		layeredPool.Put(b)
	case c >= LargeSize:
		*b = (*b)[:LargeSize]
		largePool.Put(b)
	case c >= Size:
		*b = (*b)[:Size]
		pool.Put(b)
	}
}

// IsLarge reports whether b is a LargeSize or LayeredSize buffer.
func IsLarge(b *[]byte) bool { return cap(*b) >= LargeSize }

// Grow returns the buffer a direction should read into next, having just filled b: a
// Large one in place of a Size one (b goes back to the pool), else b itself.
func Grow(b *[]byte) *[]byte {
	if IsLarge(b) {
		return b
	}
	Put(b)
	return GetLarge()
}

// Outstanding is how many buffers are taken and not yet put back: what the connections
// hold. Tests use it to prove that idle connections hold none.
func Outstanding() int64 { return outstanding.Load() }

// HeldSince gives connections up to two seconds to put back the buffers they took after
// Outstanding was before (a reader returns one right after its last write), and returns
// how many are still out. Below zero only if older connections gave some back meanwhile.
func HeldSince(before int64) int64 {
	for deadline := time.Now().Add(2 * time.Second); outstanding.Load() > before && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	return outstanding.Load() - before
}
