package instance

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/proxychain/proxychain/proxy"
	"github.com/proxychain/proxychain/proxy/shadowsocks"
	"github.com/proxychain/proxychain/proxy/vmess"
	"github.com/proxychain/proxychain/test/harness"
)

// recordingDialer dials TCP and keeps a copy of everything written on its conns, so a
// test can replay what a client sent.
type recordingDialer struct {
	mu      sync.Mutex
	written bytes.Buffer
}

func (d *recordingDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &recordingConn{Conn: c, d: d}, nil
}

func (d *recordingDialer) bytes() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return bytes.Clone(d.written.Bytes())
}

// recordingConn has only net.Conn's methods, so that every byte goes through Write.
type recordingConn struct {
	net.Conn
	d *recordingDialer
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.d.mu.Lock()
	c.d.written.Write(p)
	c.d.mu.Unlock()
	return c.Conn.Write(p)
}

// replayCase is a protocol whose inbound keeps a replay filter, and a client for it.
type replayCase struct {
	name      string
	settings  string // an inbound's protocol and settings, as JSON members
	newClient func(t *testing.T, server string, parent proxy.Dialer) proxy.Dialer
}

func replayCases() []replayCase {
	ss := func(method, password string) replayCase {
		return replayCase{
			name:     method,
			settings: fmt.Sprintf(`"protocol": "shadowsocks", "settings": {"method": %q, "password": %q}`, method, password),
			newClient: func(t *testing.T, server string, parent proxy.Dialer) proxy.Dialer {
				c, err := shadowsocks.NewCipher(method, password)
				if err != nil {
					t.Fatal(err)
				}
				return shadowsocks.NewClient("t", server, c, parent)
			},
		}
	}
	return []replayCase{
		{
			name:     "vmess",
			settings: `"protocol": "vmess", "settings": {"clients": [{"id": "` + idA + `"}]}`,
			newClient: func(t *testing.T, server string, parent proxy.Dialer) proxy.Dialer {
				id, err := vmess.ParseUUID(idA)
				if err != nil {
					t.Fatal(err)
				}
				c, err := vmess.NewClient("t", server, vmess.User{ID: id}, "aes-128-gcm", parent)
				if err != nil {
					t.Fatal(err)
				}
				return c
			},
		},
		ss("2022-blake3-aes-128-gcm", base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))),
		ss("aes-256-gcm", "replay test"),
		ss("aes-128-cfb", "replay test"),
	}
}

// countingEcho serves a TCP echo and counts its connections: the dials of the proxy
// under test.
func countingEcho(t *testing.T) (addr string, dials *atomic.Int64) {
	dials = new(atomic.Int64)
	addr = harness.ServeTCP(t, func(c net.Conn) {
		dials.Add(1)
		io.Copy(c, c)
	})
	return addr, dials
}

// echoOnce sends payload through d to echo and checks it comes back.
func echoOnce(t *testing.T, d proxy.Dialer, echo string, payload []byte) {
	t.Helper()
	conn, err := d.DialContext(context.Background(), "tcp", echo)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(payload); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(conn, got); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("echo: %q, %v; want %q", got, err, payload)
	}
}

// replay sends wire to address as a new connection, half-closes, and returns what came
// back before the server closed. A server that refuses drains to the half-close and
// closes without a byte; one that accepts relays to the echo, which answers.
func replay(t *testing.T, address string, wire []byte) []byte {
	t.Helper()
	conn, err := net.Dial("tcp", address)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(wire); err != nil {
		t.Fatal(err)
	}
	conn.(*net.TCPConn).CloseWrite()
	back, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("replay: %v after %d bytes back", err, len(back))
	}
	return back
}

// TestReplayRefusedAcrossReloadAndInbounds records a client's connection to one inbound
// and replays its bytes at a second inbound with the same user or key, then at the
// first after a reload to the same config: each replay must get no byte back and cause
// no dial. A new connection still works on both after the reload.
func TestReplayRefusedAcrossReloadAndInbounds(t *testing.T) {
	for _, tc := range replayCases() {
		t.Run(tc.name, func(t *testing.T) {
			echo, dials := countingEcho(t)
			cfg := `{
			  "inbounds": [{"tag": "a", "port": 1, ` + tc.settings + `}, {"tag": "b", "port": 2, ` + tc.settings + `}],
			  "outbounds": [{"protocol": "freedom"}]
			}`
			server := buildOpts(t, cfg, Options{})
			a, b := server.Addr("a").String(), server.Addr("b").String()

			rec := &recordingDialer{}
			echoOnce(t, tc.newClient(t, a, rec), echo, []byte("captured request"))
			wire := rec.bytes()
			if dials.Load() != 1 {
				t.Fatalf("the recorded connection made %d dials, want 1", dials.Load())
			}

			if back := replay(t, b, wire); len(back) != 0 || dials.Load() != 1 {
				t.Errorf("replay at the other inbound: %d bytes back, %d dials; want 0 and 1", len(back), dials.Load())
			}
			// A whitespace edit of the config file reloads an equal config.
			if err := server.Reload(context.Background(), parse(t, cfg+"\n")); err != nil {
				t.Fatal(err)
			}
			if back := replay(t, a, wire); len(back) != 0 || dials.Load() != 1 {
				t.Errorf("replay after reload: %d bytes back, %d dials; want 0 and 1", len(back), dials.Load())
			}
			for _, addr := range []string{a, b} {
				echoOnce(t, tc.newClient(t, addr, &net.Dialer{}), echo, []byte("fresh request"))
			}
		})
	}
}

// TestReloadDropsReplayFiltersOfRemovedKeys: a reload keeps the replay filter of every
// key its config still has, and holds none for a key or protocol it no longer has.
func TestReloadDropsReplayFiltersOfRemovedKeys(t *testing.T) {
	ssInbound := func(port int, password string) string {
		return fmt.Sprintf(`{"port": %d, "protocol": "shadowsocks", "settings": {"method": "aes-256-gcm", "password": %q}}`, port, password)
	}
	server := buildOpts(t, `{
	  "inbounds": [`+ssInbound(1, "kept")+`, `+ssInbound(2, "removed")+`,
	    {"port": 3, "protocol": "vmess", "settings": {"clients": [{"id": "`+idA+`"}]}}],
	  "outbounds": [{"protocol": "freedom"}]
	}`, Options{})
	keyOf := func(password string) shadowsocks.ReplayKey {
		c, err := shadowsocks.NewCipher("aes-256-gcm", password)
		if err != nil {
			t.Fatal(err)
		}
		return c.ReplayKey()
	}
	before := server.gen.Load().replay
	if len(before.shadowsocks) != 2 || before.vmess == nil {
		t.Fatalf("before reload: %d shadowsocks filters, a VMess filter %t; want 2 and true", len(before.shadowsocks), before.vmess != nil)
	}

	if err := server.Reload(context.Background(), parse(t, `{
	  "inbounds": [`+ssInbound(1, "kept")+`],
	  "outbounds": [{"protocol": "freedom"}]
	}`)); err != nil {
		t.Fatal(err)
	}
	after := server.gen.Load().replay
	if f, ok := after.shadowsocks[keyOf("kept")]; len(after.shadowsocks) != 1 || !ok || f != before.shadowsocks[keyOf("kept")] {
		t.Errorf("after reload: %d shadowsocks filters; want only the one of the kept key, taken over", len(after.shadowsocks))
	}
	if after.vmess != nil {
		t.Error("after reload: a VMess filter is kept with no VMess inbound left")
	}
}
