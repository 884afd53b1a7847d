// Command demo runs proxychain's main job on one machine, as a user would.
//
// By default (`make demo`) it is the operator flow: a local control plane (etcd and
// kube-apiserver from bin/k8s, started with controller-runtime's envtest), the CRD
// applied with kubectl, the manager running out of cluster, the seed's four hops as
// `proxychain run` servers on 127.0.0.11-14, the seed's 4-hop chain applied as a
// ProxyChain with its Secrets, the rendered ConfigMap and Secret laid out as the kubelet
// mounts them, the sidecar run from that directory, and a page fetched through it from
// a local target.
//
// With -standalone (`make demo-local`) there is no Kubernetes: a client `proxychain run`
// loads the seed's own client config (addresses moved to loopback) plus a SOCKS inbound.
//
// Either way it prints the path, the bytes and their hash, checks that the target saw
// the last hop rather than the client, and tears everything down.
package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/proxychain/proxychain/test/harness"
)

// payloadSize is what the target serves: big enough that a broken layer shows up in the
// hash, small enough to be quick.
const payloadSize = 4 << 20

// deadline bounds the whole demo, so a stuck step fails instead of hanging.
const deadline = 3 * time.Minute

func main() {
	standalone := flag.Bool("standalone", false, "run the data plane alone: no control plane, no operator")
	keep := flag.Bool("keep", false, "keep the work directory (configs and logs) instead of removing it")
	flag.Parse()
	if err := run(*standalone, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(standalone, keep bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()

	root, err := harness.RepoRoot()
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "proxychain-demo-")
	if err != nil {
		return err
	}
	if keep {
		defer fmt.Printf("    work directory kept: %s\n", work)
	} else {
		defer os.RemoveAll(work)
	}
	d := &demo{ctx: ctx, root: root, work: work, bin: filepath.Join(root, "bin", "proxychain"), began: time.Now()}
	defer d.stopAll()
	if _, err := os.Stat(d.bin); err != nil {
		return fmt.Errorf("%s is missing: run make build", d.bin)
	}
	if standalone {
		err = d.standalone()
	} else {
		err = d.operator()
	}
	if err == nil {
		d.step("tearing down")
		d.stopAll()
		d.step("done")
		return nil
	}
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
	}
	return fmt.Errorf("%w\n    logs: %s (rerun with -keep to keep them)", err, work)
}

// demo holds what every step shares: where things are and what to stop at the end.
type demo struct {
	ctx   context.Context
	root  string // the repository
	work  string // configs and logs, removed at the end
	bin   string // bin/proxychain
	began time.Time

	stops []func() // run in reverse order by stopAll
}

// step prints a progress line with the time since the start.
func (d *demo) step(format string, args ...any) {
	fmt.Printf("==> [%5.1fs] %s\n", time.Since(d.began).Seconds(), fmt.Sprintf(format, args...))
}

func (d *demo) onStop(f func()) { d.stops = append(d.stops, f) }

func (d *demo) stopAll() {
	for i := len(d.stops) - 1; i >= 0; i-- {
		d.stops[i]()
	}
	d.stops = nil
}

// start runs a long-lived process with its output in work/<name>.log, and stops it with
// SIGTERM at the end.
func (d *demo) start(name string, env []string, path string, args ...string) error {
	logf, err := os.Create(filepath.Join(d.work, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	d.onStop(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	return nil
}

// hop is one server of the seed's chain.
type hop struct {
	tag, protocol string
	inbound       map[string]any // settings of the hop's server inbound
}

// The seed's hops, with the seed's credentials. The seed's clients use alterId 64, so the
// VMess servers accept legacy headers, which they refuse by default.
var hops = []hop{
	{"AliHK", "shadowsocks", map[string]any{"method": "aes-256-cfb", "password": "password"}},
	{"AliSG", "shadowsocks", map[string]any{"method": "aes-256-cfb", "password": "password"}},
	{"DOSG", "vmess", map[string]any{"clients": []any{map[string]any{"id": "b27c24ab-2b5a-433e-902c-33f1168a7902", "alterId": 64}}, "disableInsecureEncryption": false}},
	{"DOUS", "vmess", map[string]any{"clients": []any{map[string]any{"id": "b12614c5-5ca4-4eba-a215-c61d642116ce", "alterId": 64}}, "disableInsecureEncryption": false}},
}

// exitTag is the hop the target must see connections from.
const exitTag = "DOUS"

// startHops runs one `proxychain run` server per hop, each on its own loopback address
// (127.0.0.11-14) and sending from it, so the target can tell which hop reached it.
func (d *demo) startHops() (map[string]*net.TCPAddr, error) {
	addrs := map[string]*net.TCPAddr{}
	for i, h := range hops {
		ip := net.IPv4(127, 0, 0, byte(11+i))
		port, err := freePort(ip.String())
		if err != nil {
			return nil, fmt.Errorf("hop %s: %w (is 127.0.0.0/8 routed to lo?)", h.tag, err)
		}
		addr := &net.TCPAddr{IP: ip, Port: port}
		addrs[h.tag] = addr
		cfg := map[string]any{
			"log":       map[string]any{"loglevel": "warning"},
			"inbounds":  []any{map[string]any{"tag": h.tag, "protocol": h.protocol, "listen": ip.String(), "port": port, "settings": h.inbound}},
			"outbounds": []any{map[string]any{"protocol": "freedom", "sendThrough": ip.String()}},
		}
		path := filepath.Join(d.work, "hop-"+h.tag+".json")
		if err := writeJSON(path, cfg); err != nil {
			return nil, err
		}
		d.step("starting hop %-5s (%s server) on %s", h.tag, h.protocol, addr)
		if err := d.start("hop-"+h.tag, nil, d.bin, "run", "-c", path, "-metrics-addr", ""); err != nil {
			return nil, err
		}
	}
	for _, h := range hops {
		if err := waitListening(d.ctx, addrs[h.tag].String()); err != nil {
			return nil, fmt.Errorf("hop %s: %w (log: %s)", h.tag, err, filepath.Join(d.work, "hop-"+h.tag+".log"))
		}
	}
	return addrs, nil
}

// target is a local web server that remembers where each request came from.
type target struct {
	url     string
	payload []byte
	mu      sync.Mutex
	remotes []string
}

func (d *demo) startTarget() (*target, error) {
	t := &target{payload: make([]byte, payloadSize)}
	rand.Read(t.payload)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t.mu.Lock()
			t.remotes = append(t.remotes, r.RemoteAddr)
			t.mu.Unlock()
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(t.payload)
		}),
	}
	go srv.Serve(ln)
	d.onStop(func() { srv.Close() })
	t.url = "http://" + ln.Addr().String() + "/payload"
	d.step("target web server on %s, serving %d random bytes", ln.Addr(), payloadSize)
	return t, nil
}

// check compares what came back with what the target served, and the address the target
// saw with the exit hop's. It prints the result the way the demo reports it.
func (t *target) check(path string, body []byte, elapsed time.Duration, exit *net.TCPAddr) error {
	got := sha256.Sum256(body)
	want := sha256.Sum256(t.payload)
	fmt.Printf("\n    path:    %s\n", path)
	fmt.Printf("    bytes:   %d in %v\n", len(body), elapsed.Round(time.Millisecond))
	fmt.Printf("    sha256:  %s\n", hex.EncodeToString(got[:]))
	if got != want {
		return fmt.Errorf("payload hash mismatch: the target served sha256 %s", hex.EncodeToString(want[:]))
	}
	fmt.Println("             the same bytes the target served")
	t.mu.Lock()
	remotes := append([]string(nil), t.remotes...)
	t.mu.Unlock()
	if len(remotes) == 0 {
		return errors.New("the target saw no request")
	}
	for _, r := range remotes {
		host, _, _ := net.SplitHostPort(r)
		if !net.ParseIP(host).Equal(exit.IP) {
			return fmt.Errorf("the target saw a connection from %s, not from %s (%s)", r, exitTag, exit.IP)
		}
	}
	fmt.Printf("    seen by the target from %s: %s, the last hop, not the client\n\n", exit.IP, exitTag)
	return nil
}

// freePort asks the kernel for a port on ip that is free right now.
func freePort(ip string) (int, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// portFree reports an error when something already listens on addr.
func portFree(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is taken (%w): the sidecar's ports are fixed; stop whatever listens there", addr, err)
	}
	return ln.Close()
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

// waitListening polls addr until it accepts a connection or 15 seconds pass.
func waitListening(ctx context.Context, addr string) error {
	return poll(ctx, 15*time.Second, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return fmt.Errorf("%s is not listening: %w", addr, err)
		}
		return c.Close()
	})
}

// waitHTTP polls url until it answers 200 or timeout passes.
func waitHTTP(ctx context.Context, url string, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	return poll(ctx, timeout, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		return nil
	})
}

// poll runs check until it returns nil, then returns nil; or until timeout or ctx ends,
// then returns check's last error.
func poll(ctx context.Context, timeout time.Duration, check func() error) error {
	end := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(end) || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}
