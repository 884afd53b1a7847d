//go:build load

package load

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/proxychain/proxychain/test/harness"
)

// buildProxychain builds cmd/proxychain from this checkout into a temporary directory.
func buildProxychain(t testing.TB) string {
	t.Helper()
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "proxychain")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/proxychain")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build proxychain: %v\n%s", err, out)
	}
	return bin
}

// hopProcess is a `proxychain run` serving one hop; it can be killed and started again
// on the same port.
type hopProcess struct {
	t      testing.TB
	bin    string
	config string
	addr   string
	// metrics is where the process serves /metrics, or "" for nowhere.
	metrics string
	cmd     *exec.Cmd
	done    chan struct{}
}

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func writeJSON(t testing.TB, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// startProcess runs `proxychain run -c config` and waits until addr accepts.
func startProcess(t testing.TB, bin string, cfg map[string]any, addr string) *hopProcess {
	t.Helper()
	p := &hopProcess{t: t, bin: bin, config: writeJSON(t, cfg), addr: addr}
	p.start()
	t.Cleanup(p.kill)
	return p
}

func (p *hopProcess) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.bin, "run", "-c", p.config, "-metrics-addr", p.metrics, "-reload-interval", "0", "-log-level", "error")
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(p.cmd, p.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", p.addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s did not listen on %s: %v", p.config, p.addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill sends SIGKILL and waits for the process to go.
func (p *hopProcess) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// rssKiB reads VmRSS of pid from /proc.
func rssKiB(t testing.TB, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Fatalf("no VmRSS for %d", pid)
	return 0
}

func openFDs(t testing.TB) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// processChain starts each hop as a process and returns them with their addresses.
func processChain(t testing.TB, bin string, hops []hop) ([]*hopProcess, []string) {
	t.Helper()
	var procs []*hopProcess
	var addrs []string
	for _, h := range hops {
		port := freePort(t)
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		procs = append(procs, startProcess(t, bin, hopConfig(h, "127.0.0.1", port), addr))
		addrs = append(addrs, addr)
	}
	return procs, addrs
}

// gauge scrapes the process's /metrics and returns the value of the unlabelled gauge name.
func (p *hopProcess) gauge(name string) float64 {
	p.t.Helper()
	c, err := net.DialTimeout("tcp", p.metrics, 5*time.Second)
	if err != nil {
		p.t.Fatalf("metrics: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /metrics HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", p.metrics)
	body, err := io.ReadAll(c)
	if err != nil {
		p.t.Fatalf("metrics: %v", err)
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				p.t.Fatalf("metrics: %s: %v", name, err)
			}
			return f
		}
	}
	p.t.Fatalf("metrics: no %s in\n%s", name, body)
	return 0
}
