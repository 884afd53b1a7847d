package netns_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/proxychain/proxychain/test/netns"

	"github.com/proxychain/proxychain/test/harness"
)

// The hops' addresses on the host. Each hop also sends from its own address, so the
// target can tell which hop was last. hop1 listens on the veth's host end, where the pod
// reaches it; the others are reached only by hops, on loopback.
var (
	hop1Source = netip.MustParseAddr("127.0.0.11")
	hop2Addr   = netip.MustParseAddr("127.0.0.12")
	hop3Addr   = netip.MustParseAddr("127.0.0.13")
)

const (
	sidecarMetrics = "127.0.0.1:15090"
	method         = "chacha20-ietf-poly1305"
)

// buildProxychain compiles the real binary into a directory every UID can read.
func buildProxychain(t *testing.T) string {
	t.Helper()
	dir := sharedTempDir(t, "proxychain-bin")
	bin := filepath.Join(dir, "proxychain")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.CommandContext(ctx, gobin, "build", "-o", bin, "../../cmd/proxychain").CombinedOutput()
	if err != nil {
		t.Fatalf("building proxychain: %v\n%s", err, out)
	}
	return bin
}

// sharedTempDir is a temporary directory the sidecar's and app's UIDs can read;
// t.TempDir's parents are private to root.
func sharedTempDir(t *testing.T, pattern string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// volume imitates kubelet's ConfigMap and Secret volumes: files in a timestamped
// directory, ..data pointing at it, each name a symlink through ..data; an update renames
// a new ..data over the old.
type volume struct {
	dir string
	gen int
}

func newVolume(t *testing.T, files map[string]string) *volume {
	t.Helper()
	v := &volume{dir: sharedTempDir(t, "volume")}
	v.update(t, files)
	return v
}

func (v *volume) update(t *testing.T, files map[string]string) {
	t.Helper()
	v.gen++
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", v.gen, v.gen)
	must(t, os.Mkdir(filepath.Join(v.dir, ts), 0o755))
	for name, content := range files {
		must(t, os.WriteFile(filepath.Join(v.dir, ts, name), []byte(content), 0o644))
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	must(t, os.Symlink(ts, tmp))
	must(t, os.Rename(tmp, filepath.Join(v.dir, "..data")))
	for name := range files {
		if _, err := os.Lstat(filepath.Join(v.dir, name)); err != nil {
			must(t, os.Symlink(filepath.Join("..data", name), filepath.Join(v.dir, name)))
		}
	}
}

func (v *volume) path(name string) string { return filepath.Join(v.dir, name) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// process is a proxychain (or helper) process whose output is kept for failure reports.
type process struct {
	name   string
	cmd    *exec.Cmd
	output harness.SyncBuffer
	done   chan struct{}
}

func start(t *testing.T, name string, cmd *exec.Cmd) *process {
	t.Helper()
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &p.output, &p.output
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("%s output:\n%s", name, p.output.String())
		}
	})
	return p
}

// signal sends sig and waits for the process to end. `ip netns exec` and setpriv exec
// the command, so the process signalled is proxychain itself.
func (p *process) signal(sig syscall.Signal) {
	p.cmd.Process.Signal(sig) // an error only says it has already exited
	select {
	case <-p.done:
	case <-time.After(waitFor):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// hop runs `proxychain run` on the host as one Shadowsocks hop.
type hop struct {
	listen  netip.AddrPort
	metrics string
	proc    *process
}

func startHop(t *testing.T, bin string, listen, source netip.Addr, password string) *hop {
	t.Helper()
	h := &hop{
		listen:  netip.AddrPortFrom(listen, uint16(freePort(t, listen))),
		metrics: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(freePort(t, netip.MustParseAddr("127.0.0.1")))).String(),
	}
	dir := sharedTempDir(t, "hop")
	cfg := fmt.Sprintf(`{
	  "inbounds": [{"tag": "hop", "protocol": "shadowsocks", "listen": %q, "port": %d,
	                "settings": {"method": %q, "password": %q}}],
	  "outbounds": [{"tag": "out", "protocol": "freedom", "sendThrough": %q}]
	}`, listen, h.listen.Port(), method, password, source)
	path := filepath.Join(dir, "hop.json")
	must(t, os.WriteFile(path, []byte(cfg), 0o644))
	h.proc = start(t, "hop "+h.listen.String(), exec.Command(bin, "run", "-c", path,
		"-metrics-addr", h.metrics, "-reload-interval", "0", "-log-level", "warning", "-drain", "1s"))
	waitHTTP(t, "http://"+h.metrics+"/readyz", httpGet)
	return h
}

// accepted is how many connections the hop's inbound has accepted.
func (h *hop) accepted(t *testing.T) int {
	t.Helper()
	body, err := httpGet("http://" + h.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	return sampleInt(t, body, `proxychain_inbound_connections_total{inbound="hop"}`)
}

func sampleInt(t *testing.T, exposition, key string) int {
	t.Helper()
	for _, line := range strings.Split(exposition, "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			return n
		}
	}
	return 0 // a series appears on first use
}

func httpGet(url string) (string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(body), err
}

// waitHTTP polls url with get until it answers 200.
func waitHTTP(t *testing.T, url string, get func(string) (string, error)) string {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		body, err := get(url)
		if err == nil {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t *testing.T, addr netip.Addr) int {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// chainTarget is the destination on the host: it hashes what each connection sends,
// answers with the hash, and records the address each connection came from and the one
// it was made to.
type chainTarget struct {
	port    int
	mu      sync.Mutex
	sources map[netip.Addr]int
	dests   map[netip.Addr]int
	total   atomic.Int64
}

// newChainTarget listens on each of addrs with one port.
func newChainTarget(t *testing.T, addrs ...netip.Addr) *chainTarget {
	t.Helper()
	tg := &chainTarget{sources: map[netip.Addr]int{}, dests: map[netip.Addr]int{}}
	var wg sync.WaitGroup
	var lns []net.Listener
	for _, a := range addrs {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(a, uint16(tg.port)).String())
		if err != nil {
			t.Fatal(err)
		}
		tg.port = ln.Addr().(*net.TCPAddr).Port
		lns = append(lns, ln)
		wg.Go(func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				tg.total.Add(1)
				src := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
				dst := c.LocalAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
				tg.mu.Lock()
				tg.sources[src]++
				tg.dests[dst]++
				tg.mu.Unlock()
				wg.Go(func() {
					defer c.Close()
					c.SetDeadline(time.Now().Add(2 * time.Minute))
					h := sha256.New()
					io.Copy(h, c)
					c.Write([]byte(hex.EncodeToString(h.Sum(nil))))
				})
			}
		})
	}
	t.Cleanup(func() {
		for _, ln := range lns {
			ln.Close()
		}
		wg.Wait()
	})
	return tg
}

func (tg *chainTarget) from(a netip.Addr) int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.sources[a]
}

func (tg *chainTarget) to(a netip.Addr) int {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return tg.dests[a]
}

// waitFrom waits until at least n connections came from a.
func (tg *chainTarget) waitFrom(t *testing.T, a netip.Addr, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for tg.from(a) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the target has %d connections from %s, want %d", tg.from(a), a, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sidecarConfig: redirect inbounds on both loopbacks with sniffing, and a chain of two
// Shadowsocks hops, entry then exit; the exit is the default outbound.
func sidecarConfig(entry, exit netip.AddrPort, secrets *volume, exitPassFile string) string {
	return fmt.Sprintf(`{
	  "log": {"loglevel": "info"},
	  "inbounds": [
	    {"tag": "capture", "protocol": "redirect", "listen": "127.0.0.1", "port": %[1]d,
	     "sniffing": {"enabled": true, "destOverride": ["http", "tls"]}},
	    {"tag": "capture6", "protocol": "redirect", "listen": "::1", "port": %[1]d,
	     "sniffing": {"enabled": true, "destOverride": ["http", "tls"]}}
	  ],
	  "outbounds": [
	    {"tag": "exit", "protocol": "shadowsocks", "proxySettings": {"tag": "entry"},
	     "settings": {"servers": [{"address": %[2]q, "port": %[3]d, "method": %[6]q, "passwordFile": %[4]q}]}},
	    {"tag": "entry", "protocol": "shadowsocks",
	     "settings": {"servers": [{"address": %[7]q, "port": %[8]d, "method": %[6]q, "passwordFile": %[5]q}]}}
	  ]
	}`, redirectPort, exit.Addr(), exit.Port(), secrets.path(exitPassFile), secrets.path("entry-pass"), method,
		entry.Addr(), entry.Port())
}

// streamsApp is `capturecheck streams` run as the app: connections held open across
// whatever the test does, then finished and checked end to end.
type streamsApp struct {
	n      int
	stdin  io.WriteCloser
	lines  chan string
	exited chan struct{}
	err    error
}

// openStreams starts the app and returns once its n connections are open and half of
// each payload is sent.
func openStreams(t *testing.T, ns *netns.NS, helper, to string, n int) *streamsApp {
	t.Helper()
	cmd := ns.Command(context.Background(), appUID, helper, "streams", "-to", to, "-n", strconv.Itoa(n), "-size", "200000")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// The helper prints at most one line per stream and two more, so this never fills.
	a := &streamsApp{n: n, stdin: stdin, lines: make(chan string, n+2), exited: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			a.lines <- sc.Text()
		}
		close(a.lines)
		a.err = cmd.Wait()
		close(a.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		stdin.Close()
		<-a.exited
	})
	if l := a.next(t); l != fmt.Sprintf("open %d", n) {
		t.Fatalf("app: %q", l)
	}
	return a
}

func (a *streamsApp) next(t *testing.T) string {
	t.Helper()
	select {
	case l, ok := <-a.lines:
		if !ok {
			t.Fatal("the app exited early")
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("the app said nothing")
	}
	return ""
}

// finish lets the app send the rest and checks that every stream's hash came back.
func (a *streamsApp) finish(t *testing.T) {
	t.Helper()
	if _, err := io.WriteString(a.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	var report []string
	for l := range a.lines {
		report = append(report, l)
	}
	<-a.exited
	if a.err != nil || len(report) != 1 || report[0] != fmt.Sprintf("ok %d", a.n) {
		t.Fatalf("app: %v\n%s", a.err, strings.Join(report, "\n"))
	}
}

// ruleLines returns the -A lines of a table as iptables-save prints them inside ns.
func ruleLines(t *testing.T, ns *netns.NS, table string) []string {
	t.Helper()
	out, err := netns.Run(t, ns, 0, "iptables-save", "-t", table)
	if err != nil {
		t.Fatalf("iptables-save: %v\n%s", err, out)
	}
	var rules []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "-A ") {
			rules = append(rules, l)
		}
	}
	return rules
}

// TestSidecarEndToEnd runs the real binary as a pod would: `proxychain init` installs
// the capture, `proxychain run` is the sidecar under its own UID, and an app under
// another UID talks to a target on the host through a chain of two Shadowsocks hops,
// themselves `proxychain run` on the host.
func TestSidecarEndToEnd(t *testing.T) {
	netns.RequireRoot(t, "iptables-restore", "ip6tables-restore", "iptables-save", "ip6tables-save")
	bin := buildProxychain(t)
	helper := buildHelper(t)
	ns := netns.New(t, "sidecar")
	// In the pod "localhost" names the host end of the veth; on the host, where the exit
	// hop runs, it is 127.0.0.1. So where the name was resolved shows in where the
	// connection lands.
	ns.WriteEtc(t, "hosts", ns.HostIP.String()+" localhost\n")
	ns.WriteEtc(t, "resolv.conf", "nameserver "+ns.HostIP.String()+"\n")

	// The target listens on both: on the host's 127.0.0.1 a destination sniffed as
	// "localhost" lands when the exit hop resolves it, on the veth's host end when
	// anything in the pod does.
	tg := newChainTarget(t, ns.HostIP, netip.MustParseAddr("127.0.0.1"))
	targetAddr := netip.AddrPortFrom(ns.HostIP, uint16(tg.port)).String()
	hop1 := startHop(t, bin, ns.HostIP, hop1Source, "hop-one")
	hop2 := startHop(t, bin, hop2Addr, hop2Addr, "hop-two")
	hop3 := startHop(t, bin, hop3Addr, hop3Addr, "hop-three")
	hops := []*hop{hop1, hop2, hop3}
	accepted := func() []int {
		n := make([]int, len(hops))
		for i, h := range hops {
			n[i] = h.accepted(t)
		}
		return n
	}

	secrets := newVolume(t, map[string]string{"entry-pass": "hop-one\n", "exit-pass": "hop-two\n"})
	conf := newVolume(t, map[string]string{"config.json": sidecarConfig(hop1.listen, hop2.listen, secrets, "exit-pass")})

	// The init container, twice: the second run must leave the same rules.
	initArgs := []string{bin, "init", "-redirect-port", strconv.Itoa(redirectPort), "-sidecar-uid", strconv.Itoa(sidecarUID),
		"-dns", ns.HostIP.String(), "-exclude-ports", "15999"}
	out, err := netns.Run(t, ns, 0, initArgs...)
	if err != nil || !strings.Contains(out, "installed capture rules") {
		t.Fatalf("proxychain init: %v\n%s", err, out)
	}
	natRules, filterRules := ruleLines(t, ns, "nat"), ruleLines(t, ns, "filter")
	if out, err := netns.Run(t, ns, 0, initArgs...); err != nil {
		t.Fatalf("proxychain init, second run: %v\n%s", err, out)
	}
	if again := ruleLines(t, ns, "nat"); strings.Join(again, "\n") != strings.Join(natRules, "\n") {
		t.Fatalf("a second init changed the nat rules:\nbefore\n%s\nafter\n%s", strings.Join(natRules, "\n"), strings.Join(again, "\n"))
	}
	if again := ruleLines(t, ns, "filter"); strings.Join(again, "\n") != strings.Join(filterRules, "\n") {
		t.Fatalf("a second init changed the filter rules")
	}
	if out, err := netns.Run(t, ns, 0, bin, "init", "-exclude-cidrs", "10.0.0.0/40"); err == nil ||
		!strings.Contains(out, "-exclude-cidrs") {
		t.Fatalf("init with a bad CIDR: %v %s", err, out)
	}

	sidecar := start(t, "sidecar", ns.Command(context.Background(), sidecarUID, bin, "run",
		"-c", conf.path("config.json"), "-metrics-addr", sidecarMetrics, "-reload-interval", "200ms", "-drain", "5s"))
	inPod := func(url string) (string, error) {
		out, err := netns.Run(t, ns, appUID, helper, "get", "-url", url)
		if err != nil {
			return out, fmt.Errorf("%v: %s", err, out)
		}
		return out, nil
	}
	waitHTTP(t, "http://"+sidecarMetrics+"/readyz", inPod)
	sidecarMetric := func(key string) int {
		body, err := inPod("http://" + sidecarMetrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		return sampleInt(t, body, key)
	}

	t.Run("the chain carries the app's bytes", func(t *testing.T) {
		before := accepted()
		sendThrough(t, ns, helper, targetAddr)
		tg.waitFrom(t, hop2Addr, 1)
		if got := accepted(); got[0] != before[0]+1 || got[1] != before[1]+1 || got[2] != before[2] {
			t.Fatalf("hops accepted %v connections, before %v; want one more on hop1 and hop2", got, before)
		}
		if n := tg.from(ns.HostIP) + tg.from(hop1Source); n != 0 {
			t.Fatalf("the target got %d connections not from the last hop", n)
		}
		if up := sidecarMetric(`proxychain_outbound_bytes_total{outbound="exit",direction="up"}`); up < 300000 {
			t.Errorf("the sidecar counted %d bytes up through exit, want at least 300000", up)
		}
	})

	t.Run("a sniffed host name goes to the exit unresolved", func(t *testing.T) {
		// Without the pod's own answer for the name this could not tell the pod from the exit.
		out, err := netns.Run(t, ns, appUID, "getent", "hosts", "localhost")
		if f := strings.Fields(out); err != nil || len(f) == 0 || f[0] != ns.HostIP.String() {
			t.Fatalf("in the pod localhost is %q (%v), want %s", out, err, ns.HostIP)
		}
		loopback := netip.MustParseAddr("127.0.0.1")
		before, fromHop2 := tg.total.Load(), tg.from(hop2Addr)
		toLoopback, toVeth := tg.to(loopback), tg.to(ns.HostIP)
		sendThrough(t, ns, helper, targetAddr, "-host", "localhost")
		// The app dialed the veth address; the connection arriving on the target's
		// 127.0.0.1 listener means the exit hop was given the name and resolved it. Had the
		// sidecar resolved it, it would arrive on the veth address.
		tg.waitFrom(t, hop2Addr, fromHop2+1)
		if tg.total.Load() != before+1 || tg.to(loopback) != toLoopback+1 {
			t.Fatalf("the target got %d connections: %d to %s, where the exit resolves the name, and %d to %s, where the pod does; want 1, to the first",
				tg.total.Load()-before, tg.to(loopback)-toLoopback, loopback, tg.to(ns.HostIP)-toVeth, ns.HostIP)
		}
	})

	t.Run("udp other than dns is dropped", func(t *testing.T) {
		udpPort, udpArrived := udpSink(t, netip.AddrPortFrom(ns.HostIP, 0))
		_, dnsArrived := udpSink(t, netip.AddrPortFrom(ns.HostIP, 53))
		netns.Run(t, ns, appUID, helper, "udp", "-to", netip.AddrPortFrom(ns.HostIP, uint16(udpPort)).String())
		if udpArrived() {
			t.Fatal("the app's UDP reached the host")
		}
		if out, err := netns.Run(t, ns, appUID, helper, "udp", "-to", netip.AddrPortFrom(ns.HostIP, 53).String()); err != nil || !dnsArrived() {
			t.Fatalf("control: the app's DNS did not arrive: %v %s", err, out)
		}
		// -dns names an IPv4 resolver only, as an injected pod's can: IPv6 gets no DNS.
		_, dns6Arrived := udpSink(t, netip.AddrPortFrom(ns.HostIP6, 53))
		netns.Run(t, ns, appUID, helper, "udp", "-to", netip.AddrPortFrom(ns.HostIP6, 53).String())
		if dns6Arrived() {
			t.Fatal("the app's DNS over IPv6 reached the host, with only an IPv4 resolver given")
		}
	})

	t.Run("a reload under 100 open streams resets none", func(t *testing.T) {
		const n = 100
		fromHop2 := tg.from(hop2Addr)
		app := openStreams(t, ns, helper, targetAddr, n)
		// Every stream is through to the target on the old chain before the change.
		tg.waitFrom(t, hop2Addr, fromHop2+n)

		secrets.update(t, map[string]string{"entry-pass": "hop-one\n", "exit-pass": "hop-two\n", "exit3-pass": "hop-three\n"})
		conf.update(t, map[string]string{"config.json": sidecarConfig(hop1.listen, hop3.listen, secrets, "exit3-pass")})
		deadline := time.Now().Add(waitFor)
		for sidecarMetric("proxychain_config_reloads_total") != 1 {
			if time.Now().After(deadline) {
				t.Fatal("the sidecar did not reload")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if f := sidecarMetric("proxychain_config_reload_failures_total"); f != 0 {
			t.Fatalf("%d reload failures", f)
		}

		sendThrough(t, ns, helper, targetAddr)
		tg.waitFrom(t, hop3Addr, 1)
		if got := tg.from(hop2Addr); got != fromHop2+n {
			t.Fatalf("the new connection went through hop2 (%d connections from it, want %d)", got, fromHop2+n)
		}

		app.finish(t)
	})

	t.Run("SIGTERM drains open streams and refuses new ones", func(t *testing.T) {
		app := openStreams(t, ns, helper, targetAddr, 5)
		tg.waitFrom(t, hop3Addr, 6)
		sidecar.cmd.Process.Signal(syscall.SIGTERM)
		// Not ready while draining; the readiness port stays up until the drain ends.
		deadline := time.Now().Add(waitFor)
		for {
			_, err := inPod("http://" + sidecarMetrics + "/readyz")
			if err != nil && strings.Contains(err.Error(), "503") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz while draining: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if out, err := netns.Run(t, ns, appUID, helper, "send", "-to", targetAddr, "-size", "10"); err == nil ||
			!strings.Contains(out, "connection refused") {
			t.Fatalf("a new connection while draining: %v %s; want connection refused", err, out)
		}
		app.finish(t)
		select {
		case <-sidecar.done:
		case <-time.After(waitFor):
			t.Fatal("the sidecar did not exit once its connections ended")
		}
		if !strings.Contains(sidecar.output.String(), "shutting down") {
			t.Error("the sidecar did not log its shutdown")
		}

		// A fresh sidecar for what follows, on the config as it is now.
		sidecar = start(t, "sidecar (restarted)", ns.Command(context.Background(), sidecarUID, bin, "run",
			"-c", conf.path("config.json"), "-metrics-addr", sidecarMetrics, "-reload-interval", "200ms", "-drain", "5s"))
		waitHTTP(t, "http://"+sidecarMetrics+"/readyz", inPod)
		sendThrough(t, ns, helper, targetAddr)
	})

	t.Run("with the sidecar killed nothing leaves", func(t *testing.T) {
		sidecar.signal(syscall.SIGKILL)
		before, beforeTarget := accepted(), tg.total.Load()
		out, err := netns.Run(t, ns, appUID, helper, "send", "-to", targetAddr, "-size", "1000")
		if err == nil || !strings.Contains(out, "connection refused") {
			t.Fatalf("app send with the sidecar down: %v %s; want connection refused", err, out)
		}
		// The hops' own address is not excluded either: the app cannot reach them.
		out, err = netns.Run(t, ns, appUID, helper, "send", "-to", hop1.listen.String(), "-size", "1000")
		if err == nil {
			t.Fatalf("the app reached hop1 directly: %s", out)
		}
		time.Sleep(quietFor)
		if got := accepted(); fmt.Sprint(got) != fmt.Sprint(before) || tg.total.Load() != beforeTarget {
			t.Fatalf("with the sidecar down, hops accepted %v (before %v), target %d (before %d)", got, before, tg.total.Load(), beforeTarget)
		}
	})
}
