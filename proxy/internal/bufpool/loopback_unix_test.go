//go:build unix

package bufpool

import (
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/proxychain/proxychain/test/harness"
)

// BenchmarkLoopbackWrite is why LargeSize exists: the kernel's time per byte moved over
// loopback TCP, for writes (and reads) of each buffer size. On the 2-core machine of
// docs/benchmarks.md: 0.73–0.86 sys-ns/B at 16 KiB, 0.36–0.39 at 66 KiB.
func BenchmarkLoopbackWrite(b *testing.B) {
	for _, size := range []int{16 << 10, Size, LargeSize} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			done := make(chan struct{})
			addr := harness.ServeTCP(b, func(c net.Conn) {
				defer close(done)
				buf := make([]byte, size)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			})
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			sys0 := systemTime()
			b.ResetTimer()
			for b.Loop() {
				if _, err := c.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			c.Close()
			<-done
			b.StopTimer()
			b.ReportMetric(float64(systemTime()-sys0)/float64(b.N)/float64(size), "sys-ns/B")
		})
	}
}

// systemTime is the process's kernel CPU time so far.
func systemTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Stime.Nano())
}
