// Package bufpool pools the relay and record buffers of the data plane. One size class
// serves every protocol: the largest record any of them sends (a Shadowsocks AEAD chunk,
// 2+16+0x3FFF+16 bytes) fits, and a connection holds at most one per direction, and that
// only while bytes move through it.
package bufpool

import (
	"sync"
	"sync/atomic"
)

// Size is the length of every pooled buffer.
const Size = 20 << 10

var (
	pool        = sync.Pool{New: func() any { b := make([]byte, Size); return &b }}
	outstanding atomic.Int64
)

// Get returns a buffer of len Size.
func Get() *[]byte {
	outstanding.Add(1)
	return pool.Get().(*[]byte)
}

// Put returns b to the pool. b must have come from Get.
func Put(b *[]byte) {
	outstanding.Add(-1)
	if cap(*b) < Size {
		return
	}
	*b = (*b)[:Size]
	pool.Put(b)
}

// Outstanding is how many buffers are taken and not yet put back: what the connections
// hold. Tests use it to prove that idle connections hold none.
func Outstanding() int64 { return outstanding.Load() }
