//go:build linux

package proxy

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// shortQuiet makes relays park after d of silence for the rest of the test.
func shortQuiet(t *testing.T, d time.Duration) {
	old := quietAfter
	quietAfter = d
	t.Cleanup(func() { quietAfter = old })
}

type startedRelay struct {
	app, target *net.TCPConn
	relay       *ActiveRelay
	done        chan error
}

// startRelay relays between two loopback connections without a goroutine of the test's
// own waiting on it, unlike relayed.
func startRelay(t *testing.T, timeouts Timeouts) startedRelay {
	app, client := tcpPair(t)
	upstream, target := tcpPair(t)
	done := make(chan error, 1)
	r := StartRelay(client, upstream, timeouts, func(_ RelayStats, err error) { done <- err })
	t.Cleanup(func() {
		app.Close()
		target.Close()
	})
	return startedRelay{app, target, r, done}
}

// pingBoth moves one byte each way.
func (s startedRelay) pingBoth(t *testing.T) {
	t.Helper()
	var b [1]byte
	for _, p := range [][2]*net.TCPConn{{s.app, s.target}, {s.target, s.app}} {
		if _, err := p[0].Write([]byte{7}); err != nil {
			t.Fatal(err)
		}
		p[1].SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadFull(p[1], b[:]); err != nil {
			t.Fatal(err)
		}
	}
}

func parkedCount() int {
	parking.Lock()
	defer parking.Unlock()
	return len(parking.waiting)
}

// waitFor polls cond for up to 5 s.
func waitFor(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}

// TestQuietRelaysPark: relays whose both directions have gone quiet hold no goroutine
// (one goroutine serves all parked directions), and wake intact: bytes sent afterwards
// arrive, hashed, both ways, and half-closes still pass.
func TestQuietRelaysPark(t *testing.T) {
	shortQuiet(t, 50*time.Millisecond)
	const n = 40
	base := runtime.NumGoroutine()
	relays := make([]startedRelay, n)
	for i := range relays {
		relays[i] = startRelay(t, Timeouts{})
		relays[i].pingBoth(t)
	}
	if !waitFor(func() bool { return parkedCount() == 2*n }) {
		t.Fatalf("%d of %d directions parked", parkedCount(), 2*n)
	}
	// The parking loop, and nothing per relay.
	if got := runtime.NumGoroutine() - base; got > 1 {
		t.Errorf("%d quiet relays hold %d goroutines, want at most 1", n, got)
	}

	rng := rand.New(rand.NewPCG(5, 6))
	var wg sync.WaitGroup
	for _, r := range relays {
		up, down := make([]byte, 64<<10+rng.IntN(1000)), make([]byte, 64<<10+rng.IntN(1000))
		for i := range up {
			up[i] = byte(rng.Uint32())
		}
		for i := range down {
			down[i] = byte(rng.Uint32())
		}
		wg.Go(func() { sendAndClose(t, r.app, up) })
		wg.Go(func() { sendAndClose(t, r.target, down) })
		wg.Go(func() { expect(t, r.target, up) })
		wg.Go(func() { expect(t, r.app, down) })
	}
	wg.Wait()
	for i, r := range relays {
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("relay %d: %v", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("relay %d did not finish after both sides closed", i)
		}
	}
	if !waitFor(func() bool { return runtime.NumGoroutine() <= base }) {
		t.Errorf("%d goroutines left, want %d", runtime.NumGoroutine(), base)
	}
}

func sendAndClose(t *testing.T, c *net.TCPConn, b []byte) {
	if _, err := c.Write(b); err != nil {
		t.Error(err)
	}
	c.CloseWrite()
}

func expect(t *testing.T, c *net.TCPConn, want []byte) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Error(err)
		return
	}
	if sha256.Sum256(got) != sha256.Sum256(want) {
		t.Errorf("%d of %d bytes arrived, hashes differ", len(got), len(want))
	}
}

// TestParkedRelayEnds: a relay ends as it would have awake, whichever way the end comes
// while both directions are parked.
func TestParkedRelayEnds(t *testing.T) {
	shortQuiet(t, 20*time.Millisecond)
	parked := func(t *testing.T, idle time.Duration) startedRelay {
		r := startRelay(t, Timeouts{Idle: idle})
		r.pingBoth(t)
		if !waitFor(func() bool { return parkedCount() == 2 }) {
			t.Fatalf("%d directions parked, want 2", parkedCount())
		}
		return r
	}
	finished := func(t *testing.T, r startedRelay) error {
		select {
		case err := <-r.done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("relay did not finish")
			return nil
		}
	}
	t.Run("Close", func(t *testing.T) {
		r := parked(t, 0)
		r.relay.Close()
		finished(t, r)
		r.app.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := r.app.Read(make([]byte, 1)); err != io.EOF {
			t.Errorf("app read after Close: %d, %v; want EOF", n, err)
		}
		if got := parkedCount(); got != 0 {
			t.Errorf("%d directions still parked", got)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		r := parked(t, 200*time.Millisecond)
		if err := finished(t, r); !errors.Is(err, ErrIdle) {
			t.Errorf("relay: %v, want ErrIdle", err)
		}
	})
	t.Run("half-close", func(t *testing.T) {
		r := parked(t, 0)
		r.app.CloseWrite()
		r.target.SetReadDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(r.target); err != nil || len(b) != 0 {
			t.Fatalf("target read %q, %v; want EOF", b, err)
		}
		// The other direction parks again, and still answers.
		if !waitFor(func() bool { return parkedCount() == 1 }) {
			t.Fatalf("%d directions parked, want 1", parkedCount())
		}
		r.target.Write([]byte("late answer"))
		r.target.CloseWrite()
		r.app.SetReadDeadline(time.Now().Add(5 * time.Second))
		if b, err := io.ReadAll(r.app); err != nil || !bytes.Equal(b, []byte("late answer")) {
			t.Fatalf("app read %q, %v", b, err)
		}
		if err := finished(t, r); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("reset", func(t *testing.T) {
		r := parked(t, 0)
		r.target.SetLinger(0)
		r.target.Close()
		r.app.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := r.app.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("app read: %v, want ECONNRESET", err)
		}
		if err := finished(t, r); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("relay: %v, want ECONNRESET", err)
		}
	})
}

// TestParkingChurn: many relays whose directions park and wake over and over, quiet
// spells longer and shorter than quietAfter mixed, keep every byte in order both ways,
// then all end. Run with -race, it also checks parking against waking and closing.
func TestParkingChurn(t *testing.T) {
	shortQuiet(t, 10*time.Millisecond)
	const relays, rounds = 30, 15
	base := runtime.NumGoroutine()
	parking.Lock()
	parksBefore := parking.lastID
	parking.Unlock()
	var wg sync.WaitGroup
	for i := range relays {
		r := startRelay(t, Timeouts{})
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			for round := range rounds {
				for _, p := range [][2]*net.TCPConn{{r.app, r.target}, {r.target, r.app}} {
					msg := make([]byte, 1+rng.IntN(40000))
					for j := range msg {
						msg[j] = byte(rng.Uint32())
					}
					go p[0].Write(msg)
					got := make([]byte, len(msg))
					p[1].SetReadDeadline(time.Now().Add(10 * time.Second))
					if _, err := io.ReadFull(p[1], got); err != nil || !bytes.Equal(got, msg) {
						t.Errorf("relay %d round %d: %d bytes, %v", i, round, len(msg), err)
						return
					}
				}
				time.Sleep(time.Duration(rng.IntN(25)) * time.Millisecond)
			}
			r.app.Close()
			r.target.Close()
			select {
			case <-r.done:
			case <-time.After(5 * time.Second):
				t.Errorf("relay %d did not finish", i)
			}
		})
	}
	wg.Wait()
	parking.Lock()
	parks := parking.lastID - parksBefore
	parking.Unlock()
	// Most quiet spells outlast quietAfter; each parks both directions.
	if parks < relays*rounds/2 {
		t.Errorf("directions parked %d times in %d rounds of %d relays; the test did not exercise parking", parks, rounds, relays)
	}
	t.Logf("%d parks", parks)
	if !waitFor(func() bool { return runtime.NumGoroutine() <= base && parkedCount() == 0 }) {
		t.Errorf("%d goroutines (want %d) and %d parked directions left", runtime.NumGoroutine(), base, parkedCount())
	}
}
