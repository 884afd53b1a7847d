package metrics

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/nettest"

	"github.com/proxychain/proxychain/proxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// exposition is a parsed text exposition: families by name, each with its type, help and
// samples keyed by "name{labels}".
type exposition struct {
	types   map[string]string
	helps   map[string]string
	samples map[string]string
	order   []string // sample keys in output order
}

// parseExposition reads the text format strictly enough to catch what Prometheus would
// reject: a sample before its TYPE, a family declared twice or split, a bad label block,
// a missing final newline.
func parseExposition(t *testing.T, text string) *exposition {
	t.Helper()
	if !strings.HasSuffix(text, "\n") {
		t.Fatalf("exposition does not end with a newline: %q", text)
	}
	e := &exposition{types: map[string]string{}, helps: map[string]string{}, samples: map[string]string{}}
	current := ""
	done := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "# HELP "):
			name, help, _ := strings.Cut(l[len("# HELP "):], " ")
			if _, dup := e.helps[name]; dup {
				t.Fatalf("line %d: second HELP for %s", line, name)
			}
			e.helps[name] = help
		case strings.HasPrefix(l, "# TYPE "):
			f := strings.Fields(l)
			if len(f) != 4 {
				t.Fatalf("line %d: bad TYPE line %q", line, l)
			}
			if _, dup := e.types[f[2]]; dup || done[f[2]] {
				t.Fatalf("line %d: family %s declared twice", line, f[2])
			}
			if current != "" {
				done[current] = true
			}
			current = f[2]
			e.types[f[2]] = f[3]
		case l == "" || strings.HasPrefix(l, "#"):
		default:
			key, value, ok := cutLast(l, " ")
			if !ok {
				t.Fatalf("line %d: no value: %q", line, l)
			}
			if _, err := strconv.ParseFloat(value, 64); err != nil {
				t.Fatalf("line %d: value %q: %v", line, value, err)
			}
			name := key
			if i := strings.IndexByte(key, '{'); i >= 0 {
				name = key[:i]
				checkLabels(t, line, key[i:])
			}
			family := name
			if e.types[current] == "histogram" {
				family = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			}
			if family != current {
				t.Fatalf("line %d: sample %s outside its family's block (current %s)", line, name, current)
			}
			if _, dup := e.samples[key]; dup {
				t.Fatalf("line %d: duplicate sample %s", line, key)
			}
			e.samples[key] = value
			e.order = append(e.order, key)
		}
	}
	return e
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// checkLabels checks {a="x",b="y\"z"}: names, quotes and escapes.
func checkLabels(t *testing.T, line int, block string) {
	t.Helper()
	if !strings.HasSuffix(block, "}") {
		t.Fatalf("line %d: label block %q not closed", line, block)
	}
	s := block[1 : len(block)-1]
	for s != "" {
		name, rest, ok := strings.Cut(s, `="`)
		if !ok || name == "" || strings.ContainsAny(name, `",{} `) {
			t.Fatalf("line %d: bad label in %q", line, block)
		}
		i := 0
		for ; i < len(rest) && rest[i] != '"'; i++ {
			if rest[i] == '\n' {
				t.Fatalf("line %d: raw newline in label", line)
			}
			if rest[i] == '\\' {
				i++
				if i == len(rest) || !strings.ContainsRune(`\"n`, rune(rest[i])) {
					t.Fatalf("line %d: bad escape in %q", line, block)
				}
			}
		}
		if i == len(rest) {
			t.Fatalf("line %d: unterminated label value in %q", line, block)
		}
		s = strings.TrimPrefix(rest[i+1:], ",")
	}
}

func TestExpositionParses(t *testing.T) {
	r := NewRegistry()
	c := r.CounterVec("test_requests_total", "Requests, with a \\ and a\nnewline.", "path")
	c.With(`/a"b\c` + "\nd").Add(3)
	c.With("/").Inc()
	r.Gauge("test_temperature", "A gauge.").Set(-7)
	h := r.HistogramVec("test_latency_seconds", "A histogram.", []float64{0.5, 0.1, 1}, "op")
	for _, v := range []float64{0.05, 0.1, 0.3, 0.7, 2, 3} {
		h.With("dial").Observe(v)
	}
	r.CounterVec("test_unused_total", "No series yet, so not written.", "x")

	var b bytes.Buffer
	r.WriteTo(&b)
	e := parseExposition(t, b.String())

	want := map[string]float64{
		`test_requests_total{path="/"}`:                    1,
		`test_requests_total{path="/a\"b\\c\nd"}`:          3,
		`test_temperature`:                                 -7,
		`test_latency_seconds_bucket{op="dial",le="0.1"}`:  2, // le is inclusive: 0.1 counts
		`test_latency_seconds_bucket{op="dial",le="0.5"}`:  3,
		`test_latency_seconds_bucket{op="dial",le="1"}`:    4,
		`test_latency_seconds_bucket{op="dial",le="+Inf"}`: 6,
		`test_latency_seconds_count{op="dial"}`:            6,
		`test_latency_seconds_sum{op="dial"}`:              6.15,
	}
	for key, v := range want {
		got, ok := e.samples[key]
		if !ok {
			t.Errorf("missing %s in\n%s", key, b.String())
			continue
		}
		if f, _ := strconv.ParseFloat(got, 64); f < v-1e-9 || f > v+1e-9 {
			t.Errorf("%s = %s, want %v", key, got, v)
		}
	}
	if len(e.samples) != len(want) {
		t.Errorf("%d samples, want %d:\n%s", len(e.samples), len(want), b.String())
	}
	if e.types["test_latency_seconds"] != "histogram" || e.types["test_temperature"] != "gauge" || e.types["test_requests_total"] != "counter" {
		t.Errorf("types: %v", e.types)
	}
	if _, ok := e.types["test_unused_total"]; ok {
		t.Error("a family with no series was written")
	}
	if got := e.helps["test_requests_total"]; got != `Requests, with a \\ and a\nnewline.` {
		t.Errorf("HELP escaped as %q", got)
	}
}

// TestConcurrentUpdates checks that atomic updates from many goroutines all land while
// the registry is being written.
func TestConcurrentUpdates(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("c_total", "c")
	h := r.HistogramVec("h_seconds", "h", []float64{1}, "x").With("y")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.Inc()
				h.Observe(0.5)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			r.WriteTo(io.Discard)
		}
	})
	wg.Wait()
	var b bytes.Buffer
	r.WriteTo(&b)
	e := parseExposition(t, b.String())
	if e.samples["c_total"] != "8000" || e.samples[`h_seconds_count{x="y"}`] != "8000" || e.samples[`h_seconds_sum{x="y"}`] != "4000" {
		t.Errorf("lost updates:\n%s", b.String())
	}
}

func TestServer(t *testing.T) {
	p := NewProxy("v9")
	var health Health
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &Server{Registry: p.Registry, Health: &health}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	request := func(method, path string) (int, string, string) {
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(body)
	}
	get := func(path string) (int, string, string) { return request(http.MethodGet, path) }
	if code, _, _ := get("/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("readyz before ready = %d", code)
	}
	health.SetReady()
	if code, _, body := get("/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("readyz when ready = %d %q", code, body)
	}
	health.SetDraining()
	if code, _, body := get("/readyz"); code != http.StatusServiceUnavailable || body != "draining\n" {
		t.Errorf("readyz while draining = %d %q", code, body)
	}
	if code, _, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("healthz = %d", code)
	}
	if code, _, _ := get("/other"); code != http.StatusNotFound {
		t.Errorf("/other = %d", code)
	}
	if code, _, _ := request(http.MethodPost, "/metrics"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %d", code)
	}
	if code, _, body := request(http.MethodHead, "/healthz"); code != http.StatusOK || body != "" {
		t.Errorf("HEAD /healthz = %d %q", code, body)
	}
	p.ReloadFailures.Inc()
	code, ctype, body := get("/metrics")
	if code != http.StatusOK || ctype != ContentType {
		t.Fatalf("metrics: %d %q", code, ctype)
	}
	e := parseExposition(t, body)
	for key, want := range map[string]string{
		NameReloadFailures:               "1",
		NameReloads:                      "0",
		NameLastReloadSuccessful:         "1",
		NameBuildInfo + `{version="v9"}`: "1",
	} {
		if e.samples[key] != want {
			t.Errorf("%s = %q, want %s\n%s", key, e.samples[key], want, body)
		}
	}

	// Garbage gets a 400 and the connection closed, not a hang.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("\x16\x03\x01 not http\r\n\r\n"))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, _ := io.ReadAll(c)
	c.Close()
	if !strings.HasPrefix(string(reply), "HTTP/1.1 400 Bad Request\r\n") {
		t.Errorf("garbage got %q", reply)
	}

	http.DefaultClient.CloseIdleConnections()
	if err := srv.Close(); err != nil {
		t.Error(err)
	}
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Errorf("Serve = %v", err)
	}
}

// fakeOutbound dials loopback, or fails with err.
type fakeOutbound struct{ err error }

func (f fakeOutbound) Tag() string { return "hop" }
func (f fakeOutbound) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	if f.err != nil {
		return nil, f.err
	}
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

// TestInstrumentCountsBytes sends hashed bytes both ways through an instrumented
// outbound and checks the counters against what moved.
func TestInstrumentCountsBytes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const size = 300 << 10
	served := make(chan [32]byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- [32]byte{}
			return
		}
		defer c.Close()
		h := sha256.New()
		io.Copy(h, c)
		reply := make([]byte, size/3)
		rand.Read(reply)
		c.Write(reply)
		served <- sha256.Sum256(reply)
	}()

	p := NewProxy("t")
	stats := p.Outbound("hop")
	ob := Instrument(fakeOutbound{}, stats)
	c, err := ob.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, size)
	rand.Read(payload)
	if _, err := c.Write(payload); err != nil {
		t.Fatal(err)
	}
	if err := proxy.CloseWrite(c); err != nil {
		t.Fatal(err)
	}
	if got := stats.active.Value(); got != 1 {
		t.Errorf("active = %d while open", got)
	}
	h := sha256.New()
	// io.Copy takes the WriteTo path, as the relay does.
	n, err := io.Copy(h, c)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	c.Close()
	if want := <-served; [32]byte(h.Sum(nil)) != want {
		t.Fatal("reply hash differs")
	}
	if stats.up.Value() != size || stats.down.Value() != uint64(n) || n != size/3 {
		t.Errorf("up %d down %d (read %d), want %d and %d", stats.up.Value(), stats.down.Value(), n, size, size/3)
	}
	if got := stats.active.Value(); got != 0 {
		t.Errorf("active = %d after two Closes", got)
	}
	if stats.dial.Count() != 1 {
		t.Errorf("dial latency observations = %d", stats.dial.Count())
	}
}

func TestDialErrorReasons(t *testing.T) {
	p := NewProxy("t")
	stats := p.Outbound("hop")
	for _, err := range []error{
		context.DeadlineExceeded,
		fmt.Errorf("shadowsocks: %w", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}),
		fmt.Errorf("socks: reading reply: %w", io.ErrUnexpectedEOF),
		syscall.ECONNRESET,
		errors.New("vmess: bad response"),
		syscall.ETIMEDOUT,
	} {
		if _, err2 := Instrument(fakeOutbound{err: err}, stats).DialContext(context.Background(), "tcp", "x:1"); err2 != err {
			t.Fatalf("error not passed through: %v", err2)
		}
	}
	var b bytes.Buffer
	p.Registry.WriteTo(&b)
	e := parseExposition(t, b.String())
	for reason, want := range map[string]string{"timeout": "2", "refused": "1", "reset": "2", "other": "1"} {
		key := NameDialErrors + `{outbound="hop",reason="` + reason + `"}`
		if e.samples[key] != want {
			t.Errorf("%s = %q, want %s", key, e.samples[key], want)
		}
	}
}

// TestCountedConn runs the x/net conformance suite over the byte-counting wrapper.
func TestCountedConn(t *testing.T) {
	stats := NewProxy("t").Outbound("hop")
	nettest.TestConn(t, func() (c1, c2 net.Conn, stop func(), err error) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, nil, err
		}
		defer ln.Close()
		accepted := make(chan net.Conn, 1)
		go func() {
			c, _ := ln.Accept()
			accepted <- c
		}()
		c, err := Instrument(fakeOutbound{}, stats).DialContext(context.Background(), "tcp", ln.Addr().String())
		if err != nil {
			return nil, nil, nil, err
		}
		s := <-accepted
		if s == nil {
			c.Close()
			return nil, nil, nil, errors.New("accept failed")
		}
		return c, s, func() { c.Close(); s.Close() }, nil
	})
	if got := stats.active.Value(); got != 0 {
		t.Errorf("active = %d after the suite", got)
	}
}

// TestProcessMetrics: the gauges read at scrape time follow the process: goroutines
// started between two scrapes show up, and memory figures are plausible.
func TestProcessMetrics(t *testing.T) {
	p := NewProxy("test")
	scrape := func() map[string]float64 {
		var b bytes.Buffer
		p.Registry.WriteTo(&b)
		e := parseExposition(t, b.String())
		out := map[string]float64{}
		for _, name := range []string{NameGoroutines, NameHeapInuse, NameResident} {
			if e.types[name] != "gauge" {
				t.Errorf("%s: type %q, want gauge", name, e.types[name])
			}
			v, err := strconv.ParseFloat(e.samples[name], 64)
			if err != nil {
				t.Fatalf("%s: %v in\n%s", name, err, b.String())
			}
			out[name] = v
		}
		return out
	}
	before := scrape()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() { <-stop })
	}
	during := scrape()
	close(stop)
	wg.Wait()
	if got := during[NameGoroutines] - before[NameGoroutines]; got < 50 {
		t.Errorf("%s rose by %v with 50 more goroutines", NameGoroutines, got)
	}
	if h, rss := during[NameHeapInuse], during[NameResident]; h < 64<<10 || rss < h {
		t.Errorf("heap in use %v, resident %v: want a heap of some size inside the resident set", h, rss)
	}
}
