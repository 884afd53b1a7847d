package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/socks"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func runMain(t *testing.T, ctx context.Context, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = realMain(ctx, args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestChainPrintsSeedPath(t *testing.T) {
	code, stdout, stderr := runMain(t, context.Background(), "chain", "-c", "../../proxy/config/testdata/seed-chain.json")
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	first := strings.Split(stdout, "\n")[0]
	want := "DOUS: client -> AliHK (shadowsocks 2.2.2.2:1024) -> AliSG (shadowsocks 3.3.3.3:3442) -> DOSG (vmess 4.4.4.4:8462) -> DOUS (vmess 1.1.1.1:8888) -> destination"
	if first != want {
		t.Errorf("first line:\n got %q\nwant %q", first, want)
	}
	if n := strings.Count(stdout, "\n"); n != 4 {
		t.Errorf("printed %d lines, want 4:\n%s", n, stdout)
	}
}

func TestChainWarningsGoToStderr(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(path, []byte(`{"dns": {}, "outbounds": [
	  {"tag": "a", "protocol": "freedom"},
	  {"tag": "b", "protocol": "socks", "settings": {"servers": [{"address": "x", "port": 1}]},
	   "proxySettings": {"tag": "a"}, "streamSettings": {"network": "ws"}}]}`), 0o600)
	code, stdout, stderr := runMain(t, context.Background(), "chain", "-c", path)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	wantErr := "warning: ignoring fields proxychain does not implement: dns\n" +
		"warning: outbounds[1].streamSettings: ignored because the outbound has proxySettings: its parent carries it as plain TCP\n"
	if stderr != wantErr {
		t.Errorf("stderr:\n got %q\nwant %q", stderr, wantErr)
	}
	if !strings.Contains(stdout, "b: client -> a (freedom) -> b (socks x:1) -> destination") {
		t.Errorf("stdout: %q", stdout)
	}
}

func TestErrorsAndUsage(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		args     []string
		code     int
		inStderr string
		inStdout string
	}{
		{nil, 2, "Usage: proxychain <command>", ""},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`, ""},
		{[]string{"help"}, 0, "", "Commands:"},
		{[]string{"help", "run"}, 0, "", "-log-level"},
		{[]string{"run"}, 2, "-c config.json is required", ""},
		{[]string{"chain", "-x"}, 2, "flag provided but not defined: -x", ""},
		{[]string{"chain", "-c", "a.json", "extra"}, 2, `unexpected argument "extra"`, ""},
		{[]string{"chain", "-c", "/nonexistent/c.json"}, 1, "no such file or directory", ""},
		{[]string{"run", "-c", "../../proxy/config/testdata/seed-chain.json", "-log-level", "loud"}, 2, `unknown log level "loud"`, ""},
		{[]string{"run", "-c", "../../proxy/config/testdata/seed-chain.json", "-metrics-addr", "127.0.0.1:99999"}, 1, "-metrics-addr: listen tcp: address 99999: invalid port", ""},
		{[]string{"run", "-c", "../../proxy/config/testdata/seed-chain.json", "-drain", "-1s"}, 2, "may not be negative", ""},
		{[]string{"help", "init"}, 0, "", "-exclude-cidrs"},
		{[]string{"version"}, 0, "", "proxychain dev " + runtime.Version()},
	}
	for _, tt := range tests {
		code, stdout, stderr := runMain(t, ctx, tt.args...)
		if code != tt.code || !strings.Contains(stderr, tt.inStderr) || !strings.Contains(stdout, tt.inStdout) {
			t.Errorf("%q: exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)",
				tt.args, code, tt.code, stdout, tt.inStdout, stderr, tt.inStderr)
		}
	}
}

func TestChainSyntaxErrorNamesLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(path, []byte("{\n  // c\n  \"outbounds\": [\n    {\"protocol\": \"freedom\"} {}\n  ]\n}\n"), 0o600)
	code, _, stderr := runMain(t, context.Background(), "chain", "-c", path)
	if code != 1 || !strings.Contains(stderr, "config: line 4, column 29: invalid character '{' after array element") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// TestRunServesUntilCancelled runs the command with a SOCKS inbound and the direct exit,
// moves hashed bytes through it, then stops it as a signal would.
func TestRunServesUntilCancelled(t *testing.T) {
	echo, stopEcho := startEcho(t)
	defer stopEcho()
	port := freePort(t)
	path := filepath.Join(t.TempDir(), "c.json")
	os.WriteFile(path, []byte(fmt.Sprintf(`{
	  "log": {"loglevel": "debug"},
	  "inbounds": [{"tag": "in", "protocol": "socks", "listen": "127.0.0.1", "port": %d}],
	  "outbounds": [{"protocol": "freedom"}]
	}`, port)), 0o600)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- realMain(ctx, []string{"run", "-c", path, "-log-format", "json", "-drain", "1s", "-metrics-addr", ""}, io.Discard, &stderr)
	}()

	client := socks.NewClient("t", fmt.Sprintf("127.0.0.1:%d", port), "", "", &net.Dialer{})
	var conn net.Conn
	var err error
	for range 100 { // the listener comes up asynchronously
		if conn, err = client.DialContext(context.Background(), "tcp", echo); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		cancel()
		<-done
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte("proxychain"), 10000)
	go func() { conn.Write(payload); proxy.CloseWrite(conn) }()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := io.ReadAll(conn)
	conn.Close()
	if err != nil || sha256.Sum256(got) != sha256.Sum256(payload) {
		t.Errorf("echo through run: %d bytes, err %v", len(got), err)
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after cancel")
	}
	if !strings.Contains(stderr.String(), `"msg":"proxychain running"`) {
		t.Errorf("no JSON log line in stderr:\n%s", stderr.String())
	}
}

func TestNoKubernetesDependencies(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goBin, "list", "-e", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned too little: %q", deps)
	}
	for _, dep := range deps {
		if strings.HasPrefix(dep, "k8s.io/") || strings.HasPrefix(dep, "sigs.k8s.io/") {
			t.Errorf("proxychain depends on %s", dep)
		}
	}
}

func startEcho(t *testing.T) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String(), func() { ln.Close(); <-done }
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
