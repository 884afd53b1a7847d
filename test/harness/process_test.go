package harness

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestStartProcessCapturesOutputAndKills(t *testing.T) {
	var p *Process
	t.Run("run", func(t *testing.T) {
		p = StartProcess(t, "sh", "-c", "echo ready; echo oops >&2; exec sleep 60")
		deadline := time.Now().Add(5 * time.Second)
		for !strings.Contains(p.Output(), "oops") {
			if time.Now().After(deadline) {
				t.Fatalf("output after 5s: %q", p.Output())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if exited, err := p.Exited(); exited {
			t.Fatalf("process exited early: %v", err)
		}
	})
	if exited, _ := p.Exited(); !exited {
		t.Fatal("process still running after its test ended")
	}
	if out := p.Output(); out != "ready\noops\n" {
		t.Fatalf("output = %q, want stdout and stderr combined", out)
	}
}

func TestStartProcessMissingBinary(t *testing.T) {
	f := runTB(t, func(tb testing.TB) { StartProcess(tb, "/nonexistent/peer") })
	if !f.failed || !strings.Contains(f.msg, "/nonexistent/peer") {
		t.Fatalf("failed %v: %s", f.failed, f.msg)
	}
}

func TestWaitListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	WaitListening(t, addr)
	ln.Close()

	f := runTB(t, func(tb testing.TB) { waitListening(tb, addr, 100*time.Millisecond) })
	if !f.failed || !strings.Contains(f.msg, "nothing listening on "+addr) {
		t.Fatalf("failed %v: %s", f.failed, f.msg)
	}
}

func TestFreePort(t *testing.T) {
	port := FreePort(t)
	ln, err := net.Listen("tcp", LoopbackAddr(port))
	if err != nil {
		t.Fatalf("listen on the free port %d: %v", port, err)
	}
	ln.Close()
}

func TestWriteConfig(t *testing.T) {
	want := map[string]any{"inbounds": []any{map[string]any{"port": 1080.0, "protocol": "socks"}}}
	data, err := os.ReadFile(WriteConfig(t, want))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if string(gotJSON) != string(wantJSON) {
		t.Fatalf("config = %s, want %s", gotJSON, wantJSON)
	}
}

func TestStartV2Ray(t *testing.T) {
	tg := StartTarget(t)
	port := FreePort(t)
	StartV2Ray(t, json.RawMessage(fmt.Sprintf(`{
  "log": {"loglevel": "warning"},
  "inbounds": [{"listen": "127.0.0.1", "port": %d, "protocol": "socks", "settings": {"auth": "noauth"}}],
  "outbounds": [{"protocol": "freedom"}]
}`, port)), port)
	conn, err := DialSOCKS5(LoopbackAddr(port), tg.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if err := Exchange(conn, 50<<10, 70<<10); err != nil {
		t.Fatal(err)
	}
}
