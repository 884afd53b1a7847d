// Command bench measures proxychain's client against v2ray and Xray through the same
// loopback hops, in one run, and prints the ratios. Run it with `make bench`.
//
// Every client runs as a separate process with the same V2Ray-format config (a SOCKS
// inbound and a chain of outbounds linked by proxySettings), so the figures compare
// implementations, not configurations. Per client it reports:
//
//   - download and upload throughput through the chain (4 streams, 64 MiB each);
//   - client CPU-seconds per GiB moved (utime+stime of the client process);
//   - client RSS idle, and with 200 connections open through the chain;
//   - time to first byte of a fresh connection (median of 30).
//
// The spec's own wire (Shadowsocks aes-256-cfb carrying legacy VMess, alterId 64) is
// spoken by no single peer: v2ray 4.34 has no Shadowsocks stream ciphers and Xray no
// legacy VMess. Its peer client is v2ray joined to ss-tunnel ("v2ray+ss-tunnel"): one
// ss-tunnel per Shadowsocks hop, each dialing through the previous, and v2ray for the
// VMess hops dialing through the last tunnel; its CPU and RSS are those of all its
// processes together.
//
// The machine has few cores and the hops, target and load generator share them with the
// client, so absolute numbers are modest; the ratios between clients are what to read.
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/proxy"

	"github.com/proxychain/proxychain/test/harness"
)

var (
	streams     = flag.Int("streams", 4, "concurrent streams in the throughput tests")
	streamBytes = flag.Int64("stream-mib", 64, "MiB per stream in the throughput tests") // scaled below
	openConns   = flag.Int("open-conns", 200, "connections held open for the RSS-under-load figure")
	only        = flag.String("scenario", "", "run only scenarios whose name contains this")
	rounds      = flag.Int("rounds", 3, "measure every client this many times, taking turns, and report the median of each figure")
	outPath     = flag.String("o", "", "also write the markdown report to this file")
	baseline    = flag.String("baseline", "", "also measure this proxychain binary (say, a build of the tree before a change) as client \"baseline\"; several, comma-separated, as \"baseline\", \"baseline2\" and on")
	attach      = flag.String("attach", "", "while each client moves data, run this shell command with {pid} and {client} replaced, and stop it with SIGINT (e.g. 'perf record -g -p {pid} -o /tmp/{client}.data')")
	attachDown  = flag.Bool("attach-down", false, "stop the -attach command when the download ends, so that it sees the way down alone")
)

func main() {
	flag.Parse()
	root, err := harness.RepoRoot()
	check(err)
	env := &environment{root: root}
	env.work, err = os.MkdirTemp("", "proxychain-bench-")
	check(err)
	defer os.RemoveAll(env.work)
	env.target = startSink()

	var report strings.Builder
	fmt.Fprintf(&report, "Measured %s on %s (%d CPUs), command `make bench`; each figure the median of %d rounds.\n\n",
		time.Now().UTC().Format("2006-01-02"), machine(), cpus(), max(*rounds, 1))
	for _, sc := range scenarios {
		if *only != "" && !strings.Contains(sc.name, *only) {
			continue
		}
		if *baseline != "" && sc.clients[0] == "proxychain" {
			names, _ := baselines()
			sc.clients = slices.Concat(sc.clients[:1], names, sc.clients[1:])
		}
		fmt.Fprintf(os.Stderr, "== %s\n", sc.name)
		results, err := env.run(sc)
		if err != nil {
			fmt.Fprintf(os.Stderr, "   scenario failed: %v\n", err)
			fmt.Fprintf(&report, "### %s\n\nfailed: %v\n\n", sc.name, err)
			continue
		}
		writeTable(&report, sc, results)
	}
	fmt.Print(report.String())
	if *outPath != "" {
		check(os.WriteFile(*outPath, []byte(report.String()), 0o644))
	}
}

// A hop is a server in the chain; every client dials the same hops.
type hop struct {
	tag      string
	impl     string         // "ss-server", "xray", "v2ray" or "proxychain"
	protocol string         // "shadowsocks" or "vmess"
	inbound  map[string]any // the server's inbound settings (V2Ray format)
	outbound map[string]any // the client's outbound settings for this hop, without address and port
}

// A scenario is a chain of hops and the clients that can speak all of it.
type scenario struct {
	name    string
	hops    []hop // from the client outward
	clients []string
}

func ss(tag, impl, method string) hop {
	return hop{
		tag: tag, impl: impl, protocol: "shadowsocks",
		inbound:  map[string]any{"method": method, "password": "bench-password", "network": "tcp"},
		outbound: map[string]any{"method": method, "password": "bench-password"},
	}
}

// vmessHop is a VMess server; alterID 64 selects the legacy header, as the spec's
// configs do, and 0 VMess AEAD.
func vmessHop(tag, impl, id string, alterID int) hop {
	user := map[string]any{"id": id, "alterId": alterID}
	return hop{
		tag: tag, impl: impl, protocol: "vmess",
		inbound:  map[string]any{"clients": []any{user}, "disableInsecureEncryption": false},
		outbound: map[string]any{"users": []any{user}},
	}
}

// The spec's users.
const (
	idDOUS = "b12614c5-5ca4-4eba-a215-c61d642116ce"
	idDOSG = "b27c24ab-2b5a-433e-902c-33f1168a7902"
)

// seedChain is the spec's 4-hop chain, AliHK -> AliSG -> DOSG -> DOUS, with the given
// Shadowsocks method and VMess alterId, served by ss-server and v2ray 4.34.
func seedChain(method string, alterID int) []hop {
	return []hop{
		ss("AliHK", "ss-server", method), ss("AliSG", "ss-server", method),
		vmessHop("DOSG", "v2ray", idDOSG, alterID), vmessHop("DOUS", "v2ray", idDOUS, alterID),
	}
}

// seedBasic is the spec's basic chain: VMess (DOUS) through one Shadowsocks hop.
func seedBasic(method string, alterID int) []hop {
	return []hop{ss("transit", "ss-server", method), vmessHop("DOUS", "v2ray", idDOUS, alterID)}
}

var scenarios = []scenario{
	// The spec's chains as written. Xray has no legacy VMess, v2ray no aes-256-cfb.
	{
		name:    "basic: VMess legacy (alterId 64) in Shadowsocks aes-256-cfb (the seed's wire)",
		hops:    seedBasic("aes-256-cfb", 64),
		clients: []string{"proxychain", "v2ray+ss-tunnel"},
	},
	{
		name:    "4-hop chain: VMess legacy (alterId 64) in Shadowsocks aes-256-cfb (the seed's wire)",
		hops:    seedChain("aes-256-cfb", 64),
		clients: []string{"proxychain", "v2ray+ss-tunnel"},
	},
	// The same shapes with an AEAD Shadowsocks method v2ray 4.34 speaks.
	{
		name:    "basic: VMess legacy (alterId 64) in Shadowsocks aes-256-gcm",
		hops:    seedBasic("aes-256-gcm", 64),
		clients: []string{"proxychain", "v2ray"},
	},
	{
		name:    "4-hop chain: VMess legacy (alterId 64) in Shadowsocks aes-256-gcm",
		hops:    seedChain("aes-256-gcm", 64),
		clients: []string{"proxychain", "v2ray"},
	},
	// VMess AEAD, which all three clients speak.
	{
		name:    "basic: VMess AEAD (alterId 0) in Shadowsocks aes-128-gcm",
		hops:    seedBasic("aes-128-gcm", 0),
		clients: []string{"proxychain", "v2ray", "xray"},
	},
	{
		name:    "4-hop chain: VMess AEAD (alterId 0) in Shadowsocks aes-128-gcm",
		hops:    seedChain("aes-128-gcm", 0),
		clients: []string{"proxychain", "v2ray", "xray"},
	},
	{
		name:    "basic: VMess AEAD (alterId 0) in Shadowsocks 2022-blake3-aes-128-gcm",
		hops:    []hop{ss2022("transit"), vmessHop("DOUS", "xray", idDOUS, 0)},
		clients: []string{"proxychain", "xray"},
	},
	{
		name:    "2 Shadowsocks hops, aes-256-gcm",
		hops:    []hop{ss("hop1", "ss-server", "aes-256-gcm"), ss("hop2", "ss-server", "aes-256-gcm")},
		clients: []string{"proxychain", "v2ray", "xray"},
	},
	{
		name:    "2 Shadowsocks hops, chacha20-ietf-poly1305",
		hops:    []hop{ss("hop1", "ss-server", "chacha20-ietf-poly1305"), ss("hop2", "ss-server", "chacha20-ietf-poly1305")},
		clients: []string{"proxychain", "v2ray", "xray"},
	},
	{
		name:    "2 Shadowsocks hops, 2022-blake3-aes-128-gcm",
		hops:    []hop{ss2022("hop1"), ss2022("hop2")},
		clients: []string{"proxychain", "xray"},
	},
	{
		name:    "1 Shadowsocks hop, aes-256-cfb (the seed's cipher)",
		hops:    []hop{ss("hop1", "ss-server", "aes-256-cfb")},
		clients: []string{"proxychain", "ss-local"},
	},
}

func ss2022(tag string) hop {
	const psk = "pTwvGGaHTz2nXkb6S5Yd2A==" // 16 bytes, base64
	h := ss(tag, "xray", "2022-blake3-aes-128-gcm")
	h.inbound["password"] = psk
	h.outbound["password"] = psk
	return h
}

type result struct {
	client             string
	downMBps, upMBps   float64
	cpuPerGiB          float64
	downCPUPerGiB      float64 // cpuPerGiB of the download alone; logged, not tabled
	upCPUPerGiB        float64
	downCallsPerMiB    float64 // read and write syscalls per MiB moved down (ioCalls); logged
	upCallsPerMiB      float64
	kernelPerGiB       float64 // the part of cpuPerGiB spent in the kernel (stime)
	rssIdle, rssLoaded int64   // KiB
	ttfb               time.Duration
}

type environment struct {
	root, work string
	target     string
}

func (e *environment) run(sc scenario) ([]result, error) {
	var procs []*exec.Cmd
	defer func() { stopAll(procs) }()
	addrs := make([]string, len(sc.hops))
	for i, h := range sc.hops {
		addr, cmd, err := e.startHop(h)
		if err != nil {
			return nil, fmt.Errorf("hop %s (%s): %w", h.tag, h.impl, err)
		}
		procs = append(procs, cmd)
		addrs[i] = addr
	}
	// The clients take turns round by round, so that a change in the machine's load
	// (it is shared) falls on all of them alike; medians then drop the odd round out.
	measured := make([][]result, len(sc.clients))
	for range max(*rounds, 1) {
		for i, client := range sc.clients {
			r, err := e.measure(client, sc, addrs)
			if err != nil {
				// v2ray 4.34 now and then resets a SOCKS connection under this load; one
				// failure is retried so that it does not cost the whole scenario.
				fmt.Fprintf(os.Stderr, "   %-10s failed (%v); measuring again\n", client, err)
				r, err = e.measure(client, sc, addrs)
			}
			if err != nil {
				return nil, fmt.Errorf("client %s: %w", client, err)
			}
			fmt.Fprintf(os.Stderr, "   %-10s down %7.1f MB/s  up %7.1f MB/s  %5.2f CPU-s/GiB (%4.2f kernel; down %4.2f, up %4.2f)  I/O calls per MiB down %.0f, up %.0f  RSS %6d KiB idle, %6d KiB with %d conns  TTFB %v\n",
				r.client, r.downMBps, r.upMBps, r.cpuPerGiB, r.kernelPerGiB, r.downCPUPerGiB, r.upCPUPerGiB, r.downCallsPerMiB, r.upCallsPerMiB, r.rssIdle, r.rssLoaded, *openConns, r.ttfb)
			measured[i] = append(measured[i], r)
		}
	}
	results := make([]result, len(sc.clients))
	for i, rs := range measured {
		results[i] = medianResult(rs)
	}
	return results, nil
}

// medianResult takes the median of each figure on its own.
func medianResult(rs []result) result {
	med := func(f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		slices.Sort(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return result{
		client:       rs[0].client,
		downMBps:     med(func(r result) float64 { return r.downMBps }),
		upMBps:       med(func(r result) float64 { return r.upMBps }),
		cpuPerGiB:    med(func(r result) float64 { return r.cpuPerGiB }),
		kernelPerGiB: med(func(r result) float64 { return r.kernelPerGiB }),
		rssIdle:      int64(med(func(r result) float64 { return float64(r.rssIdle) })),
		rssLoaded:    int64(med(func(r result) float64 { return float64(r.rssLoaded) })),
		ttfb:         time.Duration(med(func(r result) float64 { return float64(r.ttfb) })),
	}
}

func (e *environment) startHop(h hop) (string, *exec.Cmd, error) {
	port := freePort()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	var cmd *exec.Cmd
	if h.impl == "ss-server" {
		cmd = exec.Command("ss-server", "-s", "127.0.0.1", "-p", strconv.Itoa(port),
			"-k", h.inbound["password"].(string), "-m", h.inbound["method"].(string))
	} else {
		cfg := map[string]any{
			"log":       map[string]any{"loglevel": "warning"},
			"inbounds":  []any{map[string]any{"listen": "127.0.0.1", "port": port, "protocol": h.protocol, "settings": h.inbound}},
			"outbounds": []any{map[string]any{"protocol": "freedom"}},
		}
		path, err := e.writeConfig(h.tag+"-"+h.impl, cfg)
		if err != nil {
			return "", nil, err
		}
		cmd = e.command(h.impl, path)
	}
	if err := e.start(cmd, h.tag); err != nil {
		return "", nil, err
	}
	return addr, cmd, waitListening(addr)
}

// clientConfig is the V2Ray-format client config every client implementation loads: a
// SOCKS inbound and the chain, exit-most outbound first (the default outbound).
func clientConfig(sc scenario, addrs []string, socksPort int) map[string]any {
	var outbounds []any
	for i := len(sc.hops) - 1; i >= 0; i-- {
		h := sc.hops[i]
		host, portStr, _ := net.SplitHostPort(addrs[i])
		port, _ := strconv.Atoi(portStr)
		server := map[string]any{"address": host, "port": port}
		for k, v := range h.outbound {
			server[k] = v
		}
		ob := map[string]any{"tag": h.tag, "protocol": h.protocol}
		if h.protocol == "vmess" {
			ob["settings"] = map[string]any{"vnext": []any{server}}
		} else {
			ob["settings"] = map[string]any{"servers": []any{server}}
		}
		if i > 0 {
			ob["proxySettings"] = map[string]any{"tag": sc.hops[i-1].tag}
		}
		outbounds = append(outbounds, ob)
	}
	return map[string]any{
		"log":       map[string]any{"loglevel": "warning"},
		"inbounds":  []any{map[string]any{"listen": "127.0.0.1", "port": socksPort, "protocol": "socks", "settings": map[string]any{"auth": "noauth"}}},
		"outbounds": outbounds,
	}
}

func (e *environment) measure(client string, sc scenario, addrs []string) (result, error) {
	socksPort := freePort()
	socksAddr := "127.0.0.1:" + strconv.Itoa(socksPort)
	procs, err := e.startClient(client, sc, addrs, socksPort)
	defer stopAll(procs)
	if err != nil {
		return result{}, err
	}
	if err := waitListening(socksAddr); err != nil {
		return result{}, err
	}
	var pids []int
	for _, p := range procs {
		pids = append(pids, p.Process.Pid)
	}
	dialer, err := proxy.SOCKS5("tcp", socksAddr, nil, proxy.Direct)
	if err != nil {
		return result{}, err
	}
	dial := func() (net.Conn, error) { return dialer.Dial("tcp", e.target) }

	r := result{client: client}
	// Warm up the chain (first dials, lazy initialisation) before measuring anything.
	if err := transfer(dial, 1, 1<<20, 0); err != nil {
		return r, fmt.Errorf("warm-up: %w", err)
	}
	time.Sleep(500 * time.Millisecond)
	r.rssIdle = rssKiB(pids...)

	if r.ttfb, err = timeToFirstByte(dial, 30); err != nil {
		return r, fmt.Errorf("ttfb: %w", err)
	}

	per := *streamBytes << 20
	total := float64(per) * float64(*streams)
	stopAttach := func() {}
	if *attach != "" {
		stop, err := attachTo(pids[len(pids)-1], client)
		if err != nil {
			return r, err
		}
		stopAttach = sync.OnceFunc(stop)
		defer stopAttach()
	}
	cpu0, kernel0 := cpuSeconds(pids...)
	calls0 := ioCalls(pids...)
	t0 := time.Now()
	if err := transfer(dial, *streams, per, 0); err != nil {
		return r, fmt.Errorf("download: %w", err)
	}
	down := time.Since(t0)
	if *attachDown {
		stopAttach()
	}
	cpuMid, _ := cpuSeconds(pids...)
	callsMid := ioCalls(pids...)
	t1 := time.Now()
	if err := transfer(dial, *streams, 0, per); err != nil {
		return r, fmt.Errorf("upload: %w", err)
	}
	up := time.Since(t1)
	stopAttach() // not through the connections held open below
	cpu, kernel := cpuSeconds(pids...)
	calls := ioCalls(pids...)
	gib := 2 * total / (1 << 30)
	r.downMBps = total / down.Seconds() / 1e6
	r.upMBps = total / up.Seconds() / 1e6
	r.cpuPerGiB = (cpu - cpu0) / gib
	r.downCPUPerGiB, r.upCPUPerGiB = (cpuMid-cpu0)/(gib/2), (cpu-cpuMid)/(gib/2)
	mib := total / (1 << 20)
	r.downCallsPerMiB, r.upCallsPerMiB = float64(callsMid-calls0)/mib, float64(calls-callsMid)/mib
	r.kernelPerGiB = (kernel - kernel0) / gib

	conns, err := holdOpen(dial, *openConns)
	if err != nil {
		return r, fmt.Errorf("open %d connections: %w", *openConns, err)
	}
	time.Sleep(300 * time.Millisecond)
	r.rssLoaded = rssKiB(pids...)
	for _, c := range conns {
		c.Close()
	}
	return r, nil
}

// startClient starts the client's processes, the last of which serves SOCKS5 on
// socksPort. Whatever started is returned, also on error, for stopAll.
func (e *environment) startClient(client string, sc scenario, addrs []string, socksPort int) ([]*exec.Cmd, error) {
	switch client {
	case "ss-local":
		h := sc.hops[0]
		host, port, _ := net.SplitHostPort(addrs[0])
		cmd := exec.Command("ss-local", "-s", host, "-p", port, "-b", "127.0.0.1", "-l", strconv.Itoa(socksPort),
			"-k", h.outbound["password"].(string), "-m", h.outbound["method"].(string))
		if err := e.start(cmd, "client-ss-local"); err != nil {
			return nil, err
		}
		return []*exec.Cmd{cmd}, nil
	case "v2ray+ss-tunnel":
		return e.startJoinedClient(sc, addrs, socksPort)
	}
	path, err := e.writeConfig("client-"+client, clientConfig(sc, addrs, socksPort))
	if err != nil {
		return nil, err
	}
	cmd := e.command(client, path)
	if err := e.start(cmd, "client-"+client); err != nil {
		return nil, err
	}
	return []*exec.Cmd{cmd}, nil
}

// startJoinedClient is the spec's wire from peers: one ss-tunnel per Shadowsocks hop
// (the first dials hop 1; each later one dials through the previous tunnel; each
// forwards to the next hop), then v2ray with the VMess hops, the first of which dials
// its server through the last tunnel. The hops must be Shadowsocks then VMess.
func (e *environment) startJoinedClient(sc scenario, addrs []string, socksPort int) ([]*exec.Cmd, error) {
	var procs []*exec.Cmd
	server := addrs[0]
	i := 0
	for ; i < len(sc.hops) && sc.hops[i].protocol == "shadowsocks"; i++ {
		if i+1 == len(sc.hops) {
			return procs, fmt.Errorf("the last hop %s is Shadowsocks; nothing for v2ray to do", sc.hops[i].tag)
		}
		h := sc.hops[i]
		host, port, _ := net.SplitHostPort(server)
		local := freePort()
		cmd := exec.Command("ss-tunnel", "-s", host, "-p", port, "-b", "127.0.0.1", "-l", strconv.Itoa(local),
			"-L", addrs[i+1], "-k", h.outbound["password"].(string), "-m", h.outbound["method"].(string))
		if err := e.start(cmd, "client-ss-tunnel-"+h.tag); err != nil {
			return procs, err
		}
		procs = append(procs, cmd)
		server = "127.0.0.1:" + strconv.Itoa(local)
		if err := waitListening(server); err != nil {
			return procs, err
		}
	}
	if i == 0 {
		return procs, fmt.Errorf("the first hop %s is not Shadowsocks; use v2ray alone", sc.hops[0].tag)
	}
	// v2ray sees the tunnels as the first VMess hop's server.
	vmess := scenario{name: sc.name, hops: sc.hops[i:]}
	vmessAddrs := append([]string{server}, addrs[i+1:]...)
	for _, h := range vmess.hops {
		if h.protocol != "vmess" {
			return procs, fmt.Errorf("hop %s follows a VMess hop; ss-tunnel cannot serve it", h.tag)
		}
	}
	path, err := e.writeConfig("client-v2ray-joined", clientConfig(vmess, vmessAddrs, socksPort))
	if err != nil {
		return procs, err
	}
	cmd := e.command("v2ray", path)
	if err := e.start(cmd, "client-v2ray-joined"); err != nil {
		return procs, err
	}
	return append(procs, cmd), nil
}

// baselines names the -baseline builds in order: "baseline", then "baseline2" and on.
func baselines() (names, paths []string) {
	if *baseline == "" {
		return nil, nil
	}
	paths = strings.Split(*baseline, ",")
	for i := range paths {
		name := "baseline"
		if i > 0 {
			name += strconv.Itoa(i + 1)
		}
		names = append(names, name)
	}
	return names, paths
}

func (e *environment) command(impl, config string) *exec.Cmd {
	switch impl {
	case "proxychain":
		// Metrics stay on (their counters are part of what the data plane costs); only
		// their HTTP listener is off, so instances do not collide on its port.
		return exec.Command(filepath.Join(e.root, "bin", "proxychain"), "run", "-metrics-addr=", "-reload-interval=0", "-c", config)
	case "xray":
		return exec.Command(filepath.Join(e.root, "bin", "xray"), "run", "-c", config)
	case "v2ray":
		return exec.Command("v2ray", "-config", config)
	}
	names, paths := baselines()
	if i := slices.Index(names, impl); i >= 0 {
		return exec.Command(paths[i], "run", "-metrics-addr=", "-reload-interval=0", "-c", config)
	}
	panic("bench: unknown implementation " + impl)
}

// attachTo starts the -attach command on a client's process and returns what stops it.
func attachTo(pid int, client string) (stop func(), err error) {
	cmdline := strings.NewReplacer("{pid}", strconv.Itoa(pid), "{client}", client).Replace(*attach)
	cmd := exec.Command("sh", "-c", "exec "+cmdline)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("-attach: %w", err)
	}
	time.Sleep(300 * time.Millisecond) // profilers take a moment to attach
	return func() {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
	}, nil
}

func (e *environment) start(cmd *exec.Cmd, name string) error {
	logf, err := os.Create(filepath.Join(e.work, name+".log"))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd.Start()
}

func (e *environment) writeConfig(name string, v any) (string, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(e.work, name+".json")
	return path, os.WriteFile(path, b, 0o600)
}

func stopAll(cmds []*exec.Cmd) {
	for _, c := range cmds {
		c.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			c.Process.Kill()
			<-done
		}
	}
}

// The sink target: a client sends [u64 bytes wanted][u64 bytes it will send][its bytes];
// the sink sends the wanted bytes while it reads and discards the rest, then answers one
// byte after the upload so the client knows every byte arrived.
func startSink() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	block := make([]byte, 32<<10)
	for i := range block {
		block[i] = byte(rand.Uint32())
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveSink(c, block)
		}
	}()
	return ln.Addr().String()
}

func serveSink(c net.Conn, block []byte) {
	defer c.Close()
	var hdr [16]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return
	}
	want := int64(binary.BigEndian.Uint64(hdr[:8]))
	upload := int64(binary.BigEndian.Uint64(hdr[8:]))
	done := make(chan error, 1)
	go func() {
		_, err := io.CopyN(io.Discard, c, upload)
		done <- err
	}()
	for want > 0 {
		n := min(want, int64(len(block)))
		if _, err := c.Write(block[:n]); err != nil {
			return
		}
		want -= n
	}
	if err := <-done; err == nil && upload > 0 {
		c.Write([]byte{1})
	}
}

// transfer runs n concurrent streams, each downloading down bytes and uploading up bytes.
func transfer(dial func() (net.Conn, error), n int, down, up int64) error {
	errs := make(chan error, n)
	for range n {
		go func() { errs <- stream(dial, down, up) }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

func stream(dial func() (net.Conn, error), down, up int64) error {
	c, err := dial()
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Minute))
	var hdr [16]byte
	binary.BigEndian.PutUint64(hdr[:8], uint64(down))
	binary.BigEndian.PutUint64(hdr[8:], uint64(up))
	if _, err := c.Write(hdr[:]); err != nil {
		return err
	}
	if up > 0 {
		buf := make([]byte, 32<<10)
		for left := up; left > 0; {
			n := min(left, int64(len(buf)))
			if _, err := c.Write(buf[:n]); err != nil {
				return err
			}
			left -= n
		}
		down++ // the sink's acknowledgement byte
	}
	n, err := io.CopyN(io.Discard, c, down)
	if err != nil {
		return fmt.Errorf("got %d of %d bytes: %w", n, down, err)
	}
	return nil
}

func timeToFirstByte(dial func() (net.Conn, error), n int) (time.Duration, error) {
	var samples []time.Duration
	for range n {
		t0 := time.Now()
		c, err := dial()
		if err != nil {
			return 0, err
		}
		var hdr [16]byte
		binary.BigEndian.PutUint64(hdr[:8], 1)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Write(hdr[:])
		if err == nil {
			_, err = io.ReadFull(c, hdr[:1])
		}
		c.Close()
		if err != nil {
			return 0, err
		}
		samples = append(samples, time.Since(t0))
	}
	slices.Sort(samples)
	return samples[len(samples)/2], nil
}

func holdOpen(dial func() (net.Conn, error), n int) ([]net.Conn, error) {
	var conns []net.Conn
	for range n {
		c, err := dial()
		if err != nil {
			for _, c := range conns {
				c.Close()
			}
			return nil, err
		}
		var hdr [16]byte
		binary.BigEndian.PutUint64(hdr[:8], 1)
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(hdr[:]); err == nil {
			_, err = io.ReadFull(c, hdr[:1])
		}
		c.SetDeadline(time.Time{})
		conns = append(conns, c)
	}
	return conns, nil
}

// cpuSeconds is the processes' user+system time, from /proc/PID/stat (in USER_HZ, 100
// on Linux).
// cpuSeconds is the processes' CPU time, user and kernel, and the kernel's part of it.
func cpuSeconds(pids ...int) (total, kernel float64) {
	for _, pid := range pids {
		user, sys := cpuSecondsOf(pid)
		total += user + sys
		kernel += sys
	}
	return total, kernel
}

func cpuSecondsOf(pid int) (user, sys float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0
	}
	// The command name may contain spaces; fields resume after its closing parenthesis.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return utime / 100, stime / 100
}

// ioCalls is how many read- and write-family syscalls the processes made (syscr and
// syscw of /proc/PID/io), summed. They explain most of a client's kernel time: on
// loopback a call costs far more than the bytes it copies. send(2) and recv(2) are not
// counted, so ss-local and ss-tunnel, which use them, show none.
func ioCalls(pids ...int) int64 {
	var sum int64
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if name, v, _ := strings.Cut(line, ": "); name == "syscr" || name == "syscw" {
				n, _ := strconv.ParseInt(v, 10, 64)
				sum += n
			}
		}
	}
	return sum
}

// rssKiB is the processes' resident set size, summed.
func rssKiB(pids ...int) int64 {
	var sum int64
	for _, pid := range pids {
		sum += rssKiBOf(pid)
	}
	return sum
}

func rssKiBOf(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	return 0
}

func writeTable(w io.Writer, sc scenario, results []result) {
	fmt.Fprintf(w, "### %s\n\n", sc.name)
	fmt.Fprintf(w, "| client | down MB/s | up MB/s | CPU-s/GiB | of it kernel | RSS idle KiB | RSS %d conns KiB | TTFB |\n", *openConns)
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		fmt.Fprintf(w, "| %s | %.1f | %.1f | %.2f | %.2f | %d | %d | %v |\n", r.client, r.downMBps, r.upMBps,
			r.cpuPerGiB, r.kernelPerGiB, r.rssIdle, r.rssLoaded, r.ttfb.Round(10*time.Microsecond))
	}
	ours := results[0]
	for _, peer := range results[1:] {
		fmt.Fprintf(w, "\nproxychain / %s: down %.2f×, up %.2f×, CPU per GiB %.2f×, RSS idle %.2f×, RSS loaded %.2f×, TTFB %.2f×\n",
			peer.client, ours.downMBps/peer.downMBps, ours.upMBps/peer.upMBps, ours.cpuPerGiB/peer.cpuPerGiB,
			float64(ours.rssIdle)/float64(peer.rssIdle), float64(ours.rssLoaded)/float64(peer.rssLoaded),
			float64(ours.ttfb)/float64(peer.ttfb))
	}
	fmt.Fprintln(w)
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitListening(addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is not listening: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func machine() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return "unknown CPU"
}

func cpus() int {
	b, _ := os.ReadFile("/proc/cpuinfo")
	return strings.Count(string(b), "processor\t:")
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
