//go:build load

package load

import (
	"errors"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
)

// TestKillMiddleHop: hops run as processes; the client runs here so its goroutines and
// descriptors can be counted. In a 64 MiB download, AliSG (the second hop) is killed
// with SIGKILL after 16 MiB: the app's read ends within 5 s, the client returns to its
// goroutine and descriptor baseline, and once AliSG is back a new connection works.
func TestKillMiddleHop(t *testing.T) {
	const total, killAt = 64 << 20, 16 << 20
	bin := buildProxychain(t)
	target := sourceServer(t)
	procs, addrs := processChain(t, bin, seedHops())
	socksAddr := startInstance(t, clientConfig(seedHops(), addrs, 1), proxy.ServerOptions{}).Addr("socks-in").String()

	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)
	c, err := socksConnect(socksAddr, target)
	if err != nil {
		t.Fatal(err)
	}
	pr := &patternReader{conn: c}
	done := make(chan struct{})
	go func() { defer close(done); pr.runUpTo(total) }()
	for pr.bytes.Load() < killAt {
		select {
		case <-done:
			t.Fatalf("download ended before the kill: %v", pr.err.Load())
		case <-time.After(5 * time.Millisecond):
		}
	}
	procs[1].kill()
	killed := time.Now()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		c.Close()
		<-done
		t.Fatalf("the app's read did not end within 5 s of the kill (at %d bytes)", pr.bytes.Load())
	}
	ended := time.Since(killed)
	err, _ = pr.err.Load().(error)
	c.Close()
	g := waitGoroutines(baseG)
	fdDeadline := time.Now().Add(5 * time.Second)
	for openFDs(t) > baseFD && time.Now().Before(fdDeadline) {
		time.Sleep(10 * time.Millisecond)
	}
	fds := openFDs(t)
	figure(t, "kill AliSG after %d MiB of a 64 MiB download: the app saw %v after %v (%d MiB received); goroutines %d -> %d, fds %d -> %d",
		killAt>>20, err, ended.Round(time.Millisecond), pr.bytes.Load()>>20, baseG, g, baseFD, fds)
	if err == nil {
		t.Error("the download completed: the kill did not cut it")
	}
	if g > baseG || fds > baseFD {
		t.Errorf("left behind: %d goroutines, %d fds", g-baseG, fds-baseFD)
	}

	procs[1].start()
	back := time.Now()
	var lastErr error
	for time.Since(back) < 5*time.Second {
		if lastErr = downloadSome(socksAddr, target, 1<<20); lastErr == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	figure(t, "after AliSG came back, a new 1 MiB download succeeded %v later", time.Since(back).Round(time.Millisecond))
	if lastErr != nil {
		t.Fatalf("no connection within 5 s of the hop's return: %v", lastErr)
	}
}

// runUpTo reads and checks the pattern until limit bytes or an error.
func (p *patternReader) runUpTo(limit int64) {
	buf := make([]byte, 32<<10)
	for p.off.Load() < limit {
		n, err := p.conn.Read(buf)
		off := p.off.Load()
		for i, b := range buf[:n] {
			if b != byte((off+int64(i))%251) {
				p.err.Store(errors.New("corrupt byte"))
				return
			}
		}
		p.off.Add(int64(n))
		p.bytes.Add(int64(n))
		if err != nil {
			p.err.Store(err)
			return
		}
	}
}

func downloadSome(socksAddr, target string, n int64) error {
	c, err := socksConnect(socksAddr, target)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	pr := &patternReader{conn: c}
	pr.runUpTo(n)
	if err, _ := pr.err.Load().(error); err != nil {
		return err
	}
	return nil
}

// loadConns is how many idle connections TestScaleIdle opens; PROXYCHAIN_LOAD_CONNS
// overrides it. The client process holds two descriptors per connection, so the default
// stays under a 20,000 descriptor hard limit (this machine's, and a common one).
func loadConns(t testing.TB) int {
	if v := os.Getenv("PROXYCHAIN_LOAD_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	return 9900
}

// raiseNoFile lifts this process's soft descriptor limit to its hard limit.
func raiseNoFile(t testing.TB) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	return lim.Max
}

// ttfb is the median, over n fresh connections, of the time from dialing the client's
// SOCKS port to the first byte of the target's answer.
func ttfb(t testing.TB, socksAddr, target string, n int) time.Duration {
	var ds []time.Duration
	for range n {
		start := time.Now()
		c, err := socksConnect(socksAddr, target)
		if err != nil {
			t.Fatal(err)
		}
		if err := echoOnce(c); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, time.Since(start))
		c.Close()
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// TestScaleIdle: N idle connections through the seed's 4-hop chain, every party a
// process of its own (client and hops: `proxychain run`; the target: this binary).
// Reports RSS per connection for the client and for AliSG, and the time to first byte
// of a fresh connection before and with the load.
func TestScaleIdle(t *testing.T) {
	n := loadConns(t)
	limit := raiseNoFile(t)
	if uint64(n)+100 > limit {
		t.Fatalf("%d connections need more than the %d descriptor limit", n, limit)
	}
	bin := buildProxychain(t)
	target := startTargetProcess(t)
	procs, addrs := processChain(t, bin, seedHops())
	socksPort := freePort(t)
	socksAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(socksPort))
	client := &hopProcess{t: t, bin: bin, config: writeJSON(t, clientConfig(seedHops(), addrs, socksPort)),
		addr: socksAddr, metrics: net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))}
	client.start()
	t.Cleanup(client.kill)

	unloaded := ttfb(t, socksAddr, target, 50)
	time.Sleep(500 * time.Millisecond)
	clientBase, hopBase := rssKiB(t, client.cmd.Process.Pid), rssKiB(t, procs[1].cmd.Process.Pid)

	conns := make([]net.Conn, n)
	var next atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || firstErr.Load() != nil {
					return
				}
				c, err := socksConnect(socksAddr, target)
				if err == nil {
					err = echoOnce(c)
				}
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if err, _ := firstErr.Load().(error); err != nil {
		t.Fatalf("opening connection %d: %v", next.Load(), err)
	}
	opened := time.Since(start)
	time.Sleep(2 * time.Second) // settle: every hop blocked in its reads
	clientRSS, hopRSS := rssKiB(t, client.cmd.Process.Pid), rssKiB(t, procs[1].cmd.Process.Pid)
	goroutines := client.gauge("go_goroutines")
	loaded := ttfb(t, socksAddr, target, 50)
	// Every idle connection still works.
	for _, i := range []int{0, n / 2, n - 1} {
		if err := echoOnce(conns[i]); err != nil {
			t.Errorf("idle connection %d: %v", i, err)
		}
	}
	figure(t, "%d idle connections through the seed's 4-hop chain (opened in %v): client RSS %d -> %d KiB, %.1f KiB per connection; AliSG RSS %d -> %d KiB, %.1f KiB per connection",
		n, opened.Round(time.Millisecond), clientBase, clientRSS, float64(clientRSS-clientBase)/float64(n), hopBase, hopRSS, float64(hopRSS-hopBase)/float64(n))
	figure(t, "time to first byte (median of 50 fresh connections): %v unloaded, %v with %d idle connections (%.2fx)",
		unloaded, loaded, n, float64(loaded)/float64(unloaded))
	figure(t, "client goroutines with %d idle connections: %.0f", n, goroutines)
	// The aim, and what makes it possible: a quiet relay parks without a goroutine.
	if perConn := float64(clientRSS-clientBase) / float64(n); perConn > 16 {
		t.Errorf("client: %.1f KiB per idle connection, aim at most 16", perConn)
	}
	if goroutines > 100 {
		t.Errorf("client: %.0f goroutines with %d idle connections; quiet relays should hold none", goroutines, n)
	}
}
