package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/instance"
	"github.com/proxychain/proxychain/proxy/metrics"

	"github.com/proxychain/proxychain/test/harness"
)

// The benchmarks run our client in-process (a SOCKS inbound and the scenario's chain,
// metrics on, as `proxychain run` builds it) against the same peer hops as the driver,
// so that a CPU or allocation profile shows the client's hot path and nothing of the
// hops:
//
//	go test ./test/bench -run '^$' -bench 'Chain/seed-4hop/down' -benchtime 8x -cpuprofile cpu.out
//	go tool pprof -top cpu.out
//
// The load generator (SOCKS dial, reading and writing the plain side) shares the
// profile; its functions are this file's and stream's.

func BenchmarkChain(b *testing.B) {
	for _, c := range []struct {
		name string
		hops []hop
	}{
		{"seed-basic", seedBasic("aes-256-cfb", 64)},
		{"seed-4hop", seedChain("aes-256-cfb", 64)},
		{"gcm-4hop", seedChain("aes-256-gcm", 64)},
		{"aead-basic", seedBasic("aes-128-gcm", 0)},
		{"aead-4hop", seedChain("aes-128-gcm", 0)},
		{"2022-basic", []hop{ss2022("transit"), vmessHop("DOUS", "xray", idDOUS, 0)}},
	} {
		b.Run(c.name, func(b *testing.B) {
			dial := startInProcessClient(b, scenario{name: c.name, hops: c.hops})
			const perOp = 16 << 20
			b.Run("down", func(b *testing.B) {
				b.SetBytes(perOp)
				b.ReportAllocs()
				for b.Loop() {
					if err := stream(dial, perOp, 0); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("up", func(b *testing.B) {
				b.SetBytes(perOp)
				b.ReportAllocs()
				for b.Loop() {
					if err := stream(dial, 0, perOp); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// startInProcessClient starts sc's hops as processes and our client in this process,
// and returns a dialer to the sink through the client's SOCKS inbound.
func startInProcessClient(b *testing.B, sc scenario) func() (net.Conn, error) {
	b.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		b.Fatal(err)
	}
	env := &environment{root: root, work: b.TempDir()}
	for _, h := range sc.hops {
		if _, err := exec.LookPath(env.command(h.impl, "").Path); err != nil {
			b.Skipf("PEER MISSING: %s (%v); run hack/install-peers.sh", h.impl, err)
		}
	}
	env.target = startSink()
	addrs := make([]string, len(sc.hops))
	for i, h := range sc.hops {
		addr, cmd, err := env.startHop(h)
		if err != nil {
			b.Fatalf("hop %s: %v", h.tag, err)
		}
		b.Cleanup(func() { stopAll([]*exec.Cmd{cmd}) })
		addrs[i] = addr
	}
	socksPort := freePort()
	raw, err := json.Marshal(clientConfig(sc, addrs, socksPort))
	if err != nil {
		b.Fatal(err)
	}
	cfg, _, err := config.Parse(raw)
	if err != nil {
		b.Fatal(err)
	}
	in, err := instance.Build(cfg, instance.Options{
		Logger:  slog.New(slog.DiscardHandler),
		Metrics: metrics.NewProxy("bench"),
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		in.Shutdown(ctx)
	})
	socksAddr := "127.0.0.1:" + strconv.Itoa(socksPort)
	if err := waitListening(socksAddr); err != nil {
		b.Fatal(err)
	}
	dialer, err := proxy.SOCKS5("tcp", socksAddr, nil, proxy.Direct)
	if err != nil {
		b.Fatal(err)
	}
	dial := func() (net.Conn, error) { return dialer.Dial("tcp", env.target) }
	if err := stream(dial, 1<<20, 1<<20); err != nil {
		b.Fatalf("warm-up: %v", err)
	}
	return dial
}

// The driver's helpers must measure what they say.
func TestCPUAndRSSSumOverProcesses(t *testing.T) {
	self := os.Getpid()
	one, two := rssKiB(self), rssKiB(self, self)
	if one <= 0 || two < 2*one-one/4 || two > 2*one+one/4 {
		t.Errorf("rssKiB(self) = %d, rssKiB(self, self) = %d; want about double", one, two)
	}
	// Burn some CPU in the kernel too, so the sums have something to show.
	for range 20000 {
		os.Getpid()
		syscall.Getppid()
	}
	oneTotal, oneKernel := cpuSeconds(self)
	twoTotal, twoKernel := cpuSeconds(self, self)
	if twoTotal < oneTotal || twoKernel < oneKernel {
		t.Errorf("cpuSeconds of two pids (%v, %v) is less than of one (%v, %v)", twoTotal, twoKernel, oneTotal, oneKernel)
	}
	if oneKernel > oneTotal {
		t.Errorf("kernel CPU %v exceeds the total %v", oneKernel, oneTotal)
	}
}

func TestJoinedClientNeedsShadowsocksThenVMess(t *testing.T) {
	e := &environment{work: t.TempDir()}
	for _, c := range []struct {
		hops []hop
		want string
	}{
		{[]hop{vmessHop("DOUS", "v2ray", idDOUS, 0)}, "the first hop DOUS is not Shadowsocks"},
		{[]hop{ss("AliHK", "ss-server", "aes-256-cfb")}, "the last hop AliHK is Shadowsocks"},
	} {
		procs, err := e.startJoinedClient(scenario{hops: c.hops}, []string{"127.0.0.1:1"}, 1)
		stopAll(procs)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("startJoinedClient error = %v, want %q", err, c.want)
		}
	}
}
