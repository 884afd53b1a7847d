package netns_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxychain/proxychain/test/netns"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	sidecarUID   = 1337
	appUID       = 1001
	redirectPort = 15001
	waitFor      = 10 * time.Second // bound on every wait for an event that should happen
	quietFor     = time.Second      // how long "nothing arrived" is watched for
)

// buildHelper compiles cmd/capturecheck into a directory every UID can read.
func buildHelper(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "capturecheck")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "capturecheck")
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, gobin, "build", "-o", bin, "./cmd/capturecheck").CombinedOutput()
	if err != nil {
		t.Fatalf("building capturecheck: %v\n%s", err, out)
	}
	return bin
}

// target is a TCP server on the host end of the veth: it hashes what it receives, answers
// with the hash, and counts connections.
type target struct {
	ln    net.Listener
	conns atomic.Int64
	sums  chan string
}

func newTarget(t *testing.T, addr netip.Addr) *target {
	t.Helper()
	return newTargetAt(t, netip.AddrPortFrom(addr, 0))
}

// newTargetAt is a target on a given port; port 0 picks a free one.
func newTargetAt(t *testing.T, addr netip.AddrPort) *target {
	t.Helper()
	ln, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	tg := &target{ln: ln, sums: make(chan string, 16)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tg.conns.Add(1)
			c.SetDeadline(time.Now().Add(waitFor))
			h := sha256.New()
			io.Copy(h, c)
			sum := hex.EncodeToString(h.Sum(nil))
			c.Write([]byte(sum))
			c.Close()
			tg.sums <- sum
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return tg
}

func (tg *target) port() int { return tg.ln.Addr().(*net.TCPAddr).Port }

func (tg *target) addr() string { return tg.ln.Addr().(*net.TCPAddr).AddrPort().String() }

func (tg *target) received(t *testing.T) string {
	t.Helper()
	select {
	case s := <-tg.sums:
		return s
	case <-time.After(waitFor):
		t.Fatal("the target received no connection")
		return ""
	}
}

// udpSink listens on the host end and reports whether a datagram arrives.
func udpSink(t *testing.T, addr netip.AddrPort) (port int, arrived func() bool) {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.LocalAddr().(*net.UDPAddr).Port, func() bool {
		c.SetReadDeadline(time.Now().Add(quietFor))
		n, _, err := c.ReadFromUDP(make([]byte, 64))
		return err == nil && n > 0
	}
}

// udpServerPort is where the pod's own UDP server listens; nothing listens one port up.
const udpServerPort = 15353

// udpEcho sends a datagram from host to `capturecheck udpecho` in the pod and reports
// whether the answer came back, and whether the datagram the server then starts to host
// arrived.
func udpEcho(t *testing.T, ns *netns.NS, bin string, host, pod netip.Addr) (answered, started bool) {
	t.Helper()
	sinkPort, arrived := udpSink(t, netip.AddrPortFrom(host, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 3*waitFor)
	defer cancel()
	cmd := ns.Command(ctx, appUID, bin, "udpecho", "-listen", ":"+strconv.Itoa(udpServerPort), "-then-port", strconv.Itoa(sinkPort))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); line != "ready\n" {
		cmd.Wait()
		t.Fatalf("udpecho said %q (%v), want ready", line, err)
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(host, 0)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	server := netip.AddrPortFrom(pod, udpServerPort)
	if _, err := c.WriteToUDPAddrPort([]byte("capturecheck request"), server); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(waitFor))
	buf := make([]byte, 1500)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	answered = err == nil && from.Addr().Unmap() == pod && from.Port() == udpServerPort &&
		string(buf[:n]) == "echo capturecheck request"
	rest, _ := io.ReadAll(out)
	cmd.Wait()
	t.Logf("udpecho in the pod at %s: %s", server, strings.TrimSpace(string(rest)))
	return answered, arrived()
}

// refusedBy sends a datagram from host to a closed UDP port of the pod and reports
// whether the pod's ICMP port unreachable came back.
func refusedBy(t *testing.T, host, pod netip.Addr) bool {
	t.Helper()
	c, err := net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(host, 0)),
		net.UDPAddrFromAddrPort(netip.AddrPortFrom(pod, udpServerPort+1)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("capturecheck closed port")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(quietFor))
	_, err = c.Read(make([]byte, 64))
	return errors.Is(err, syscall.ECONNREFUSED)
}

// pingFromHost sends one ICMP echo from the host to to and reports whether it was answered.
func pingFromHost(t *testing.T, bin string, to netip.Addr) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "ping", "-to", to.String()).CombinedOutput()
	t.Logf("ping %s from the host: %v %s", to, err, strings.TrimSpace(string(out)))
	return err == nil
}

// sidecar runs `capturecheck serve` in the namespace as the sidecar's UID and exposes
// its report lines.
type sidecar struct {
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{}
}

func startSidecar(t *testing.T, ns *netns.NS, bin, listen string) *sidecar {
	t.Helper()
	cmd := ns.Command(context.Background(), sidecarUID, bin, "serve", "-listen", listen, "-sniff", "http,tls")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &sidecar{cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("sidecar log:\n%s", stderr.String())
		}
	})
	if line := s.next(t); line != "ready" {
		t.Fatalf("sidecar said %q, want ready", line)
	}
	return s
}

func (s *sidecar) next(t *testing.T) string {
	t.Helper()
	select {
	case l := <-s.lines:
		return l
	case <-time.After(waitFor):
		t.Fatal("the sidecar reported nothing")
		return ""
	}
}

// kill ends the sidecar at once, as a crash would; `ip netns exec` passes the signal on
// by exec'ing, so the process killed is the server itself.
func (s *sidecar) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL) // an error only says it has already exited
	<-s.done
}

// sendThrough runs `capturecheck send` as the app and checks the end-to-end hashes.
func sendThrough(t *testing.T, ns *netns.NS, bin, to string, extra ...string) {
	t.Helper()
	out, err := netns.Run(t, ns, appUID, append([]string{bin, "send", "-to", to, "-size", "300000"}, extra...)...)
	if err != nil {
		t.Fatalf("app send to %s: %v\n%s", to, err, out)
	}
	fields := strings.Fields(out)
	if len(fields) != 4 || fields[0] != "sent" || fields[2] != "reply" {
		t.Fatalf("app send printed %q", out)
	}
	if fields[1] != fields[3] {
		t.Fatalf("target answered hash %s, app sent %s", fields[3], fields[1])
	}
}

func TestCapture(t *testing.T) {
	netns.RequireRoot(t, "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
	bin := buildHelper(t)
	ns := netns.New(t, "pod")
	ns.WriteEtc(t, "hosts", "127.0.0.1 localhost\n::1 localhost\n"+ns.HostIP.String()+" target.proxychain.test\n")
	// Anything that still tried DNS would reach only our own host end.
	ns.WriteEtc(t, "resolv.conf", "nameserver "+ns.HostIP.String()+"\n")

	tg4 := newTarget(t, ns.HostIP)
	tg6 := newTarget(t, ns.HostIP6)
	udpPort, udpArrived := udpSink(t, netip.AddrPortFrom(ns.HostIP, 0))
	udp6Port, udp6Arrived := udpSink(t, netip.AddrPortFrom(ns.HostIP6, 0))
	_, dnsArrived := udpSink(t, netip.AddrPortFrom(ns.HostIP, 53))
	_, dns6Arrived := udpSink(t, netip.AddrPortFrom(ns.HostIP6, 53))
	// Port 53 on the resolvers given to -dns, and on a host that is none of them.
	notResolver := ns.AddHostIP6(t)
	_, notResolverUDPArrived := udpSink(t, netip.AddrPortFrom(notResolver, 53))
	dnsTCP4 := newTargetAt(t, netip.AddrPortFrom(ns.HostIP, 53))
	dnsTCP6 := newTargetAt(t, netip.AddrPortFrom(ns.HostIP6, 53))
	notResolverTCP := newTargetAt(t, netip.AddrPortFrom(notResolver, 53))
	udpTo := netip.AddrPortFrom(ns.HostIP, uint16(udpPort)).String()
	udp6To := netip.AddrPortFrom(ns.HostIP6, uint16(udp6Port)).String()
	tcpTo := netip.AddrPortFrom(ns.HostIP, uint16(tg4.port())).String()
	tcp6To := netip.AddrPortFrom(ns.HostIP6, uint16(tg6.port())).String()

	// Controls before capture: the probes work, so their failing later is the rules' doing.
	if out, err := netns.Run(t, ns, appUID, bin, "udp", "-to", udpTo); err != nil || !udpArrived() {
		t.Fatalf("control: app UDP did not arrive before capture: %v %s", err, out)
	}
	if out, err := netns.Run(t, ns, 0, bin, "ping", "-to", ns.HostIP.String()); err != nil {
		t.Fatalf("control: ping failed before capture: %v %s", err, out)
	}
	if out, err := netns.Run(t, ns, appUID, bin, "udp", "-to", netip.AddrPortFrom(notResolver, 53).String()); err != nil || !notResolverUDPArrived() {
		t.Fatalf("control: app DNS to %s did not arrive before capture: %v %s", notResolver, err, out)
	}
	sendThrough(t, ns, bin, notResolverTCP.addr())
	notResolverTCP.received(t)
	for _, fam := range [][2]netip.Addr{{ns.HostIP, ns.PodIP}, {ns.HostIP6, ns.PodIP6}} {
		if answered, started := udpEcho(t, ns, bin, fam[0], fam[1]); !answered || !started {
			t.Fatalf("control: before capture, the pod's UDP server at %s answered %v, its own datagram arrived %v", fam[1], answered, started)
		}
		if !refusedBy(t, fam[0], fam[1]) {
			t.Fatalf("control: before capture, no port unreachable from %s", fam[1])
		}
	}
	if !pingFromHost(t, bin, ns.PodIP) {
		t.Fatal("control: the pod did not answer ping before capture")
	}

	if out, err := netns.Run(t, ns, 0, bin, "apply", "-port", strconv.Itoa(redirectPort),
		"-uid", strconv.Itoa(sidecarUID), "-dns", ns.HostIP.String()+","+ns.HostIP6.String()); err != nil {
		t.Fatalf("apply: %v\n%s", err, out)
	}
	// The sidecar either listens on each loopback address or on one dual-stack socket,
	// where IPv4 connections arrive v4-mapped and are asked about at the IPv4 level.
	port := strconv.Itoa(redirectPort)
	for _, listen := range []string{"127.0.0.1:" + port + ",[::1]:" + port, "[::]:" + port} {
		t.Run("listen "+listen, func(t *testing.T) {
			sc := startSidecar(t, ns, bin, listen)

			t.Run("tcp ipv4 is redirected", func(t *testing.T) {
				sendThrough(t, ns, bin, tcpTo)
				if got := sc.next(t); got != "dest "+tcpTo {
					t.Fatalf("sidecar saw %q, want dest %s", got, tcpTo)
				}
				tg4.received(t)
			})
			t.Run("tcp ipv6 is redirected", func(t *testing.T) {
				sendThrough(t, ns, bin, tcp6To)
				if got := sc.next(t); got != "dest "+tcp6To {
					t.Fatalf("sidecar saw %q, want dest %s", got, tcp6To)
				}
				tg6.received(t)
			})
			t.Run("http host is sniffed", func(t *testing.T) {
				sendThrough(t, ns, bin, tcpTo, "-host", "target.proxychain.test")
				want := "dest target.proxychain.test:" + strconv.Itoa(tg4.port())
				if got := sc.next(t); got != want {
					t.Fatalf("sidecar saw %q, want %q", got, want)
				}
				tg4.received(t)
			})
			t.Run("tcp dns goes direct to the resolvers only", func(t *testing.T) {
				for _, r := range []*target{dnsTCP4, dnsTCP6} {
					sendThrough(t, ns, bin, r.addr())
					r.received(t)
				}
				// The sidecar reports connections in order: had either of those been
				// redirected, its line would come before this one.
				sendThrough(t, ns, bin, notResolverTCP.addr())
				if got := sc.next(t); got != "dest "+notResolverTCP.addr() {
					t.Fatalf("sidecar saw %q, want dest %s", got, notResolverTCP.addr())
				}
				notResolverTCP.received(t)
			})
			t.Run("direct connection to the sidecar is refused", func(t *testing.T) {
				before := tg4.conns.Load()
				netns.Run(t, ns, appUID, bin, "send", "-to", "127.0.0.1:"+strconv.Itoa(redirectPort), "-size", "10")
				if got := sc.next(t); !strings.HasPrefix(got, "refused ") {
					t.Fatalf("sidecar saw %q, want a refusal", got)
				}
				if n := tg4.conns.Load(); n != before {
					t.Fatalf("the target got %d connections from a looping request", n-before)
				}
			})
			t.Run("sidecar down fails closed", func(t *testing.T) {
				sc.kill()
				before4, before6, beforeDNS := tg4.conns.Load(), tg6.conns.Load(), notResolverTCP.conns.Load()
				for _, to := range []string{tcpTo, tcp6To, notResolverTCP.addr()} {
					out, err := netns.Run(t, ns, appUID, bin, "send", "-to", to, "-size", "1000")
					if err == nil || !strings.Contains(out, "connection refused") {
						t.Fatalf("app send to %s with the sidecar down: %v %s; want connection refused", to, err, out)
					}
				}
				time.Sleep(quietFor)
				if tg4.conns.Load() != before4 || tg6.conns.Load() != before6 || notResolverTCP.conns.Load() != beforeDNS {
					t.Fatal("the target got a connection while the sidecar was down")
				}
				// DNS does not depend on the sidecar.
				sendThrough(t, ns, bin, dnsTCP4.addr())
				dnsTCP4.received(t)
			})
		})
	}
	t.Run("udp is dropped", func(t *testing.T) {
		out, err := netns.Run(t, ns, appUID, bin, "udp", "-to", udpTo)
		if udpArrived() {
			t.Fatalf("app UDP reached the host (%v %s)", err, out)
		}
		t.Logf("app UDP: %v %s", err, strings.TrimSpace(out))
		out, err = netns.Run(t, ns, appUID, bin, "udp", "-to", udp6To)
		if udp6Arrived() {
			t.Fatalf("app UDP over IPv6 reached the host (%v %s)", err, out)
		}
		out, err = netns.Run(t, ns, 0, bin, "udp", "-to", udpTo)
		if udpArrived() {
			t.Fatalf("root's UDP reached the host (%v %s)", err, out)
		}
		out, err = netns.Run(t, ns, appUID, bin, "udp", "-to", netip.AddrPortFrom(notResolver, 53).String())
		if notResolverUDPArrived() {
			t.Fatalf("app DNS to %s, not a resolver, reached the host (%v %s)", notResolver, err, out)
		}
	})
	t.Run("sidecar and dns udp pass", func(t *testing.T) {
		if out, err := netns.Run(t, ns, sidecarUID, bin, "udp", "-to", udpTo); err != nil || !udpArrived() {
			t.Fatalf("sidecar UDP did not arrive: %v %s", err, out)
		}
		dnsTo := netip.AddrPortFrom(ns.HostIP, 53).String()
		if out, err := netns.Run(t, ns, appUID, bin, "udp", "-to", dnsTo); err != nil || !dnsArrived() {
			t.Fatalf("app DNS did not arrive: %v %s", err, out)
		}
		dns6To := netip.AddrPortFrom(ns.HostIP6, 53).String()
		if out, err := netns.Run(t, ns, appUID, bin, "udp", "-to", dns6To); err != nil || !dns6Arrived() {
			t.Fatalf("app DNS over IPv6 did not arrive: %v %s", err, out)
		}
	})
	t.Run("icmp is dropped", func(t *testing.T) {
		if out, err := netns.Run(t, ns, 0, bin, "ping", "-to", ns.HostIP.String()); err == nil {
			t.Fatalf("ping got through: %s", out)
		}
	})
	// A pod may serve UDP and answer ping; what it starts itself is still dropped.
	t.Run("replies to flows from outside pass", func(t *testing.T) {
		for _, fam := range [][2]netip.Addr{{ns.HostIP, ns.PodIP}, {ns.HostIP6, ns.PodIP6}} {
			answered, started := udpEcho(t, ns, bin, fam[0], fam[1])
			if !answered {
				t.Errorf("the pod's UDP server at %s did not answer", fam[1])
			}
			if started {
				t.Errorf("a datagram the pod's UDP server at %s started reached the host", fam[1])
			}
			if !refusedBy(t, fam[0], fam[1]) {
				t.Errorf("no port unreachable from %s", fam[1])
			}
		}
		if !pingFromHost(t, bin, ns.PodIP) {
			t.Error("the pod did not answer ping")
		}
	})
}
