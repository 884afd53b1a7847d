package harness

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// Process is a peer started by StartProcess. It is killed when the test ends.
type Process struct {
	cmd    *exec.Cmd
	output SyncBuffer
	done   chan struct{}
	err    error // set before done is closed
}

// StartProcess starts bin with args. Its combined output is collected and logged if the
// test fails; the process is killed, and waited for, when the test ends.
func StartProcess(t testing.TB, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{cmd: exec.Command(bin, args...), done: make(chan struct{})}
	p.cmd.Stdout = &p.output
	p.cmd.Stderr = &p.output
	p.cmd.WaitDelay = 5 * time.Second // a grandchild holding the output pipe must not hang cleanup
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("harness: start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
			// It exited on its own before the test ended; say so, a peer dying early is
			// the usual reason a test through it fails.
			if t.Failed() {
				t.Logf("harness: %s exited early: %v", p, p.err)
			}
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("harness: output of %s:\n%s", p, p.Output())
		}
	})
	return p
}

// String names the process by its command line, for logs.
func (p *Process) String() string { return p.cmd.String() }

// Output returns what the process has written to stdout and stderr so far.
func (p *Process) Output() string { return p.output.String() }

// Exited reports whether the process has ended, and with what error (nil for exit status 0).
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// SyncBuffer is a bytes.Buffer that a process, a logger and a test may share.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// StartV2Ray runs v2ray (4.x, which takes its config as -config) with config, marshalled
// as by WriteConfig (a json.RawMessage passes through), until the test ends, and waits
// until 127.0.0.1:port accepts. The test is skipped or fails as RequirePeer says when
// v2ray is missing.
func StartV2Ray(t testing.TB, config any, port int) *Process {
	t.Helper()
	bin := RequirePeer(t, "v2ray")
	p := StartProcess(t, bin, "-config", WriteConfig(t, config))
	WaitListening(t, LoopbackAddr(port))
	return p
}

// listenTimeout bounds WaitListening: peers start in well under a second.
const listenTimeout = 10 * time.Second

// WaitListening polls until addr accepts TCP connections, and fails the test if it does
// not within 10 seconds. Call it from the test's goroutine.
func WaitListening(t testing.TB, addr string) {
	t.Helper()
	waitListening(t, addr, listenTimeout)
}

func waitListening(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness: nothing listening on %s after %v: %v", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FreePort returns a loopback TCP port that was free a moment ago. Another process may
// take it before the caller binds it; on a test machine that is rare enough.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// WriteConfig writes v, marshalled as indented JSON, to a new file in the test's
// temporary directory and returns its path.
func WriteConfig(t testing.TB, v any) string {
	t.Helper()
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatalf("harness: marshal config: %v", err)
	}
	f, err := os.CreateTemp(t.TempDir(), "config-*.json")
	if err != nil {
		t.Fatalf("harness: write config: %v", err)
	}
	_, err = f.Write(append(data, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("harness: write config: %v", err)
	}
	t.Logf("harness: config %s:\n%s", filepath.Base(f.Name()), data)
	return f.Name()
}

// LoopbackAddr returns "127.0.0.1:port", for peers' listen and server flags.
func LoopbackAddr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }
