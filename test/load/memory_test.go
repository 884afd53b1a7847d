package load

import (
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/test/harness"
)

// idleCost is what n idle connections cost this process, per connection.
type idleCost struct {
	heap, stack, goroutines float64
}

func (c idleCost) sub(o idleCost) idleCost {
	return idleCost{c.heap - o.heap, c.stack - o.stack, c.goroutines - o.goroutines}
}

type memSnapshot struct {
	heap, stack uint64
	goroutines  int
}

func snapshot() memSnapshot {
	// Twice, so sync.Pool's victim cache is emptied too: only buffers in use remain.
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSnapshot{ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine()}
}

// measureIdle opens n connections with open, moves one byte each way on each so every
// layer has done its handshake, and measures what they cost while they sit idle.
func measureIdle(t *testing.T, n int, open func() (net.Conn, error)) idleCost {
	t.Helper()
	before := snapshot()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := open()
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if err := echoOnce(c); err != nil {
			t.Fatal(err)
		}
	}
	// Let every relay direction go quiet and park (proxy.StartRelay: within a second):
	// then the goroutine count holds still. On a loaded machine that can take longer.
	time.Sleep(time.Second)
	for last, still, deadline := -1, 0, time.Now().Add(6*time.Second); still < 5 && time.Now().Before(deadline); {
		if g := runtime.NumGoroutine(); g == last {
			still++
		} else {
			last, still = g, 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	after := snapshot()
	per := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(n) }
	return idleCost{
		heap:       per(after.heap, before.heap),
		stack:      per(after.stack, before.stack),
		goroutines: float64(after.goroutines-before.goroutines) / float64(n),
	}
}

// waitGoroutines waits until at most n goroutines run, for up to 5 s.
func waitGoroutines(n int) int {
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	return runtime.NumGoroutine()
}

// TestIdleMemoryPerConnection measures, in process, what an idle relayed connection
// costs in heap, goroutine stacks and goroutines, for a single relay and for the whole
// 4-hop chain (client and four hops in one process). The direct connection to the same
// target is measured first and subtracted, so only the data plane's share remains.
//
// The bounds asserted are per relay: under 12 KiB of heap, so no protocol layer or relay
// direction holds a 20 KiB pooled buffer while it waits; under 16 KiB in all, nothing near
// V2Ray's 512 KiB; and no goroutine, because a quiet relay parks.
func TestIdleMemoryPerConnection(t *testing.T) {
	const n = 300
	target := harness.ServeTCP(t, pingPong)
	base := runtime.NumGoroutine()
	direct := measureIdle(t, n, func() (net.Conn, error) { return net.Dial("tcp", target) })
	waitGoroutines(base)

	relayAddr := startInstance(t, map[string]any{
		"inbounds":  []any{map[string]any{"tag": "socks-in", "protocol": "socks", "listen": "127.0.0.1", "port": 1}},
		"outbounds": []any{map[string]any{"protocol": "freedom"}},
	}, proxy.ServerOptions{}).Addr("socks-in").String()
	cases := []struct {
		name  string
		addr  string
		relay int // relays (proxy.Server connections) per connection
	}{
		{"socks -> freedom (1 relay)", relayAddr, 1},
		{"seed 4-hop chain (client + 4 hops: 5 relays)", startChain(t, seedHops(), proxy.ServerOptions{}), 5},
		{"modern 4-hop chain (client + 4 hops: 5 relays)", startChain(t, modernHops(), proxy.ServerOptions{}), 5},
	}
	base = runtime.NumGoroutine()
	for _, c := range cases {
		cost := measureIdle(t, n, func() (net.Conn, error) { return socksConnect(c.addr, target) }).sub(direct)
		waitGoroutines(base)
		perRelay := (cost.heap + cost.stack) / float64(c.relay)
		heapPerRelay := cost.heap / float64(c.relay)
		figure(t, "%s: %.1f KiB heap + %.1f KiB stack = %.1f KiB, %.1f goroutines per idle connection; %.1f KiB per relay (n=%d)",
			c.name, cost.heap/1024, cost.stack/1024, (cost.heap+cost.stack)/1024, cost.goroutines, perRelay/1024, n)
		// Measured: 7.5 KiB for a bare relay, 7-8 KiB per relay of a chain, nearly all of
		// it heap. Before quiet relays parked, 14 and 18-19 KiB (two goroutine stacks per
		// relay); before protocol layers let go of their read buffers while idle
		// (WaitReadable), 31-39 KiB of heap per relay of a chain; before the relay did,
		// 116 KiB in all.
		if heapPerRelay > 12<<10 {
			t.Errorf("%s: %.1f KiB of heap per relay: a layer holds a buffer while idle", c.name, heapPerRelay/1024)
		}
		if perRelay > 16<<10 {
			t.Errorf("%s: %.1f KiB per relay", c.name, perRelay/1024)
		}
		// A quiet relay parks without a goroutine, through every protocol layer.
		if cost.goroutines > 0.05 {
			t.Errorf("%s: %.2f goroutines per idle connection, want none", c.name, cost.goroutines)
		}
	}
}
