package shadowsocks

import (
	"testing"
)

// TestIdleHoldsNoWriteBuffer: once a write is on the wire, the connection gives its
// record buffer back, so thousands of idle connections do not hold 20 KiB each.
func TestIdleHoldsNoWriteBuffer(t *testing.T) {
	forEachMethod(t, func(t *testing.T, ciph *Cipher) {
		raw := newMemConn(nil)
		c, err := NewClient("t", "unused:1", ciph, nil).wrap(raw, addrBytes(t, "example.com:443"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for _, p := range [][]byte{[]byte("first"), pattern(50000, 1)} {
			if _, err := c.Write(p); err != nil {
				t.Fatal(err)
			}
			c.wmu.Lock()
			held := c.wbuf != nil
			c.wmu.Unlock()
			if held {
				t.Fatalf("after writing %d bytes the connection still holds its write buffer", len(p))
			}
		}
	})
}
