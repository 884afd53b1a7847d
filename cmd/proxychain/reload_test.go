package main

import (
	"context"
	"fmt"
	"github.com/proxychain/proxychain/test/harness/proxytest"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/config"
	"github.com/proxychain/proxychain/proxy/instance"
	"github.com/proxychain/proxychain/proxy/metrics"
	"github.com/proxychain/proxychain/proxy/socks"

	"github.com/proxychain/proxychain/test/harness"
)

// volume imitates how kubelet publishes a ConfigMap or Secret: the files live in a
// timestamped directory, ..data points at it, and each name is a symlink through ..data.
// An update writes a new directory and renames a new ..data over the old, atomically.
type volume struct {
	dir string
	gen int
}

func newVolume(t *testing.T, files map[string]string) *volume {
	t.Helper()
	v := &volume{dir: t.TempDir()}
	v.update(t, files)
	return v
}

func (v *volume) update(t *testing.T, files map[string]string) {
	t.Helper()
	v.gen++
	ts := fmt.Sprintf("..2026_01_01_00_00_%02d.%d", v.gen, v.gen)
	if err := os.Mkdir(filepath.Join(v.dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(v.dir, ts, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	tmp := filepath.Join(v.dir, "..data_tmp")
	if err := os.Symlink(ts, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(v.dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(v.dir, name)
		if _, err := os.Lstat(link); err != nil {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func (v *volume) path(name string) string { return filepath.Join(v.dir, name) }

// socksHops runs two SOCKS hop servers that each want their own password, and counts
// the connections each accepts.
func socksHops(t *testing.T) (hop1, hop2 *metrics.Counter, port1, port2 int) {
	t.Helper()
	cfg, _, err := config.Parse([]byte(`{
	  "inbounds": [
	    {"tag": "hop1", "protocol": "socks", "port": 1, "settings": {"auth": "password", "accounts": [{"user": "u", "pass": "one"}]}},
	    {"tag": "hop2", "protocol": "socks", "port": 2, "settings": {"auth": "password", "accounts": [{"user": "u", "pass": "two"}]}}
	  ],
	  "outbounds": [{"protocol": "freedom"}]
	}`))
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.NewProxy("test")
	in, err := instance.Build(cfg, instance.Options{Metrics: m, Logger: slog.New(slog.DiscardHandler),
		Listen: func(ctx context.Context, network, _ string) (net.Listener, error) {
			var lc net.ListenConfig
			return lc.Listen(ctx, network, "127.0.0.1:0")
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Shutdown(context.Background()) })
	return m.Inbound("hop1"), m.Inbound("hop2"), in.Addr("hop1").(*net.TCPAddr).Port, in.Addr("hop2").(*net.TCPAddr).Port
}

// sidecarConfig is a SOCKS inbound on port whose one outbound is a SOCKS hop on loopback
// hopPort, authenticating with the password in passFile.
func sidecarConfig(port, hopPort int, passFile string) string {
	return fmt.Sprintf(`{
	  // a comment, as operators write them
	  "inbounds": [{"tag": "in", "protocol": "socks", "listen": "127.0.0.1", "port": %d}],
	  "outbounds": [{"tag": "exit", "protocol": "socks",
	    "settings": {"servers": [{"address": "127.0.0.1", "port": %d, "users": [{"user": "u", "passFile": %q}]}]}},],
	}`, port, hopPort, passFile)
}

// scrape returns the value of the sample named key (name{labels}) at addr's /metrics.
func scrape(t *testing.T, addr, key string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			return v
		}
	}
	return ""
}

// waitMetric polls until the sample key has value want.
func waitMetric(t *testing.T, addr, key, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := scrape(t, addr, key)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %q, want %s", key, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunReloads drives `proxychain run` through kubelet-style volume updates: a valid
// change moves new connections to another hop while an open stream keeps flowing through
// the first; a broken config is refused and counted while the running one keeps
// working; a change to a secret file alone is applied.
func TestRunReloads(t *testing.T) {
	echo, stopEcho := startEcho(t)
	defer stopEcho()
	hop1, hop2, p1, p2 := socksHops(t)
	port, metricsAddr := freePort(t), fmt.Sprintf("127.0.0.1:%d", freePort(t))
	secrets := newVolume(t, map[string]string{"hop1-pass": "one\n", "hop2-pass": "two\n"})
	conf := newVolume(t, map[string]string{"config.json": sidecarConfig(port, p1, secrets.path("hop1-pass"))})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var logs harness.SyncBuffer
	go func() {
		done <- realMain(ctx, []string{"run", "-c", conf.path("config.json"), "-reload-interval", "50ms",
			"-metrics-addr", metricsAddr, "-drain", "2s"}, io.Discard, &logs)
	}()
	defer func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("run exited %d", code)
			}
		case <-time.After(10 * time.Second):
			t.Error("run did not return after cancel")
		}
		if t.Failed() {
			t.Logf("run's log:\n%s", logs.String())
		}
	}()
	waitReady(t, metricsAddr)

	via := socks.NewClient("app", fmt.Sprintf("127.0.0.1:%d", port), "", "", &net.Dialer{})
	old := proxytest.OpenEchoStream(t, via, echo)
	old.Part(t, 64<<10)
	if hop1.Value() != 1 || hop2.Value() != 0 {
		t.Fatalf("before the change: hop1 %d, hop2 %d connections", hop1.Value(), hop2.Value())
	}

	t.Log("valid change: new connections go through hop2")
	conf.update(t, map[string]string{"config.json": sidecarConfig(port, p2, secrets.path("hop2-pass"))})
	waitMetric(t, metricsAddr, metrics.NameReloads, "1")
	for range 3 {
		roundTripVia(t, via, echo, 32<<10)
	}
	if hop1.Value() != 1 || hop2.Value() != 3 {
		t.Fatalf("after the change: hop1 %d, hop2 %d connections; want 1 and 3", hop1.Value(), hop2.Value())
	}
	old.Part(t, 256<<10)
	old.Finish(t)

	t.Log("invalid change: refused, counted, the running config stays")
	conf.update(t, map[string]string{"config.json": `{"outbounds": [{"protocol": "socks",}`})
	waitMetric(t, metricsAddr, metrics.NameReloadFailures, "1")
	waitMetric(t, metricsAddr, metrics.NameLastReloadSuccessful, "0")
	roundTripVia(t, via, echo, 1000)
	if hop2.Value() != 4 || scrape(t, metricsAddr, metrics.NameReloads) != "1" {
		t.Fatalf("after the refused change: hop2 %d connections, reloads %s", hop2.Value(), scrape(t, metricsAddr, metrics.NameReloads))
	}
	if !strings.Contains(logs.String(), "config change refused; the running config stays") {
		t.Error("the refusal was not logged")
	}

	t.Log("secret change alone triggers a reload")
	conf.update(t, map[string]string{"config.json": sidecarConfig(port, p2, secrets.path("hop2-pass"))})
	waitMetric(t, metricsAddr, metrics.NameReloads, "2")
	waitMetric(t, metricsAddr, metrics.NameLastReloadSuccessful, "1")
	secrets.update(t, map[string]string{"hop1-pass": "one\n", "hop2-pass": "not-two\n"})
	waitMetric(t, metricsAddr, metrics.NameReloads, "3")
	if c, err := via.DialContext(context.Background(), "tcp", echo); err == nil {
		c.Close()
		t.Fatal("a connection succeeded with the wrong password from the new secret")
	}
	secrets.update(t, map[string]string{"hop1-pass": "one\n", "hop2-pass": "two\n"})
	waitMetric(t, metricsAddr, metrics.NameReloads, "4")
	roundTripVia(t, via, echo, 1000)
	if got := scrape(t, metricsAddr, metrics.NameReloadFailures); got != "1" {
		t.Errorf("reload failures = %s, want 1", got)
	}
	// The sidecar closes its side just after the client saw the end of the stream.
	waitMetric(t, metricsAddr, metrics.NameOutboundActive+`{outbound="exit"}`, "0")
}

func waitReady(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz never answered 200: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func roundTripVia(t *testing.T, d proxy.Dialer, echo string, size int) {
	t.Helper()
	s := proxytest.OpenEchoStream(t, d, echo)
	s.Part(t, size)
	s.Finish(t)
	s.Conn().Close()
}

func TestFingerprintFollowsSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("c.json", `{"outbounds": [{"protocol": "shadowsocks", "settings": {"servers": [
	  {"address": "a", "port": 1, "method": "aes-256-gcm", "passwordFile": "pw"}]}},]}`)
	write("pw", "one")
	paths := []string{filepath.Join(dir, "c.json")}
	if got := secretFileNames([]byte(`{"a": {"passFile": "x", "b": [{"idFile": "/y"}]}, "error": "log"}`)); strings.Join(got, ",") != "/y,x" {
		t.Errorf("secretFileNames = %q", got)
	}
	before := fingerprint(paths)
	if fingerprint(paths) != before {
		t.Fatal("fingerprint is not stable")
	}
	write("pw", "two")
	if fingerprint(paths) == before {
		t.Fatal("a change to the secret file did not change the fingerprint")
	}
	os.Remove(filepath.Join(dir, "pw"))
	if fingerprint(paths) == before {
		t.Fatal("a missing secret file hashes like the old one")
	}
}
