package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/proxychain/proxychain/proxy"
)

// Proxy is the data plane's set of metrics. Outbound series are labelled by the
// outbound's tag (or its JSON path when it has none), inbound series by the inbound's.
type Proxy struct {
	Registry *Registry

	outboundBytes  *Vec[*Counter]
	outboundActive *Vec[*Gauge]
	dialErrors     *Vec[*Counter]
	dialDuration   *Vec[*Histogram]
	inboundConns   *Vec[*Counter]

	// Reloads counts configs applied after the first; ReloadFailures counts new configs
	// that were refused (the old one stayed).
	Reloads        *Counter
	ReloadFailures *Counter
	// LastReloadSuccessful is 1 while the config on disk is the one running, 0 after a
	// refused reload until a good one is applied.
	LastReloadSuccessful *Gauge
}

// Metric names, as exposed.
const (
	NameOutboundBytes        = "proxychain_outbound_bytes_total"
	NameOutboundActive       = "proxychain_outbound_active_connections"
	NameDialErrors           = "proxychain_outbound_dial_errors_total"
	NameDialDuration         = "proxychain_outbound_dial_duration_seconds"
	NameInboundConns         = "proxychain_inbound_connections_total"
	NameReloads              = "proxychain_config_reloads_total"
	NameReloadFailures       = "proxychain_config_reload_failures_total"
	NameLastReloadSuccessful = "proxychain_config_last_reload_successful"
	NameBuildInfo            = "proxychain_build_info"
)

// Dial error reasons, the values of the reason label.
const (
	ReasonTimeout = "timeout"
	ReasonRefused = "refused"
	ReasonReset   = "reset"
	ReasonOther   = "other"
)

var reasons = [...]string{ReasonTimeout, ReasonRefused, ReasonReset, ReasonOther}

// NewProxy registers the data plane's metrics in a new registry.
func NewProxy(version string) *Proxy {
	r := NewRegistry()
	p := &Proxy{
		Registry: r,
		outboundBytes: r.CounterVec(NameOutboundBytes,
			"Bytes carried through an outbound: up is written toward its server, down is read from it.",
			"outbound", "direction"),
		outboundActive: r.GaugeVec(NameOutboundActive,
			"Connections through an outbound that are open now.", "outbound"),
		dialErrors: r.CounterVec(NameDialErrors,
			"Failed dials through an outbound, by reason: timeout, refused, reset (the peer reset or closed the connection) or other.",
			"outbound", "reason"),
		dialDuration: r.HistogramVec(NameDialDuration,
			"Time to establish a connection through an outbound, including its parents; successful dials only.",
			DefaultDialBuckets, "outbound"),
		inboundConns: r.CounterVec(NameInboundConns,
			"Connections an inbound accepted and began a handshake on.", "inbound"),
		Reloads:              r.Counter(NameReloads, "Configs applied by hot reload."),
		ReloadFailures:       r.Counter(NameReloadFailures, "New configs refused by hot reload; the running config stayed."),
		LastReloadSuccessful: r.Gauge(NameLastReloadSuccessful, "1 if the last config read from disk is running, 0 if it was refused."),
	}
	p.LastReloadSuccessful.Set(1)
	r.GaugeVec(NameBuildInfo, "The running proxychain's version.", "version").With(version).Set(1)
	registerProcess(r)
	return p
}

// Process metric names, as the Prometheus client libraries call them, so existing
// dashboards and alerts apply.
const (
	NameGoroutines = "go_goroutines"
	NameHeapInuse  = "go_memstats_heap_inuse_bytes"
	NameResident   = "process_resident_memory_bytes"
)

// registerProcess adds what an operator watches a sidecar by: goroutines (an idle
// connection holds none) and memory.
func registerProcess(r *Registry) {
	r.GaugeFunc(NameGoroutines, "Goroutines that currently exist.", func() int64 { return int64(runtime.NumGoroutine()) })
	r.GaugeFunc(NameHeapInuse, "Bytes in heap spans in use: live objects and the space in their spans.", heapInuse)
	if residentBytes() >= 0 {
		r.GaugeFunc(NameResident, "Resident memory size in bytes.", residentBytes)
	}
}

var heapSamples = []rtmetrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"},
	{Name: "/memory/classes/heap/unused:bytes"},
}

var heapMu sync.Mutex // guards heapSamples

func heapInuse() int64 {
	heapMu.Lock()
	defer heapMu.Unlock()
	rtmetrics.Read(heapSamples)
	return int64(heapSamples[0].Value.Uint64() + heapSamples[1].Value.Uint64())
}

// residentBytes reads the resident set from /proc, or returns -1 where there is none.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return -1
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		return -1
	}
	pages, err := strconv.ParseInt(fields[1], 10, 64)
	if err != nil {
		return -1
	}
	return pages * int64(os.Getpagesize())
}

// Inbound returns the counter of connections accepted by the inbound named name.
func (p *Proxy) Inbound(name string) *Counter { return p.inboundConns.With(name) }

// OutboundStats are one outbound's series, looked up once so the data path only adds.
type OutboundStats struct {
	up, down *Counter
	active   *Gauge
	dial     *Histogram
	errors   [len(reasons)]*Counter
}

// Outbound returns the series of the outbound named name.
func (p *Proxy) Outbound(name string) *OutboundStats {
	s := &OutboundStats{
		up:     p.outboundBytes.With(name, "up"),
		down:   p.outboundBytes.With(name, "down"),
		active: p.outboundActive.With(name),
		dial:   p.dialDuration.With(name),
	}
	for i, r := range reasons {
		s.errors[i] = p.dialErrors.With(name, r)
	}
	return s
}

// Instrument returns ob counting into s. Since a child outbound dials through its
// parent, each hop's bytes are what the layer above it handed it: the ciphertext of
// every hop after it, framing included.
func Instrument(ob proxy.Outbound, s *OutboundStats) proxy.Outbound {
	return &instrumented{Outbound: ob, stats: s}
}

type instrumented struct {
	proxy.Outbound
	stats *OutboundStats
}

func (o *instrumented) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	start := time.Now()
	c, err := o.Outbound.DialContext(ctx, network, address)
	if err != nil {
		o.stats.errors[classify(err)].Inc()
		return nil, err
	}
	o.stats.dial.ObserveDuration(time.Since(start))
	o.stats.active.Add(1)
	return &countedConn{Conn: c, stats: o.stats}, nil
}

// classify returns the index in reasons of err's reason.
func classify(err error) int {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, syscall.ETIMEDOUT), errors.As(err, &ne) && ne.Timeout():
		return 0
	case errors.Is(err, syscall.ECONNREFUSED):
		return 1
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return 2
	}
	return 3
}

// countedConn counts bytes with one atomic add per Read or Write, and keeps the
// io.Copy fast path of the conn it wraps (WriteTo), the half-close and the unwrap
// that the relay uses to turn a close into a reset.
type countedConn struct {
	net.Conn
	stats  *OutboundStats
	closed atomic.Bool
}

func (c *countedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.stats.down.Add(uint64(n))
	return n, err
}

func (c *countedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.stats.up.Add(uint64(n))
	return n, err
}

// WriteTo lets a protocol conn hand over its decoded records without an extra copy;
// proxy.Copy also keeps a TCP conn from holding a copy buffer while it is idle.
func (c *countedConn) WriteTo(w io.Writer) (int64, error) {
	return proxy.Copy(countingWriter{w, c.stats.down}, c.Conn)
}

// WaitReadable waits on the conn beneath, so a reader above holds no buffer meanwhile.
func (c *countedConn) WaitReadable() error { return proxy.WaitReadable(c.Conn) }

func (c *countedConn) CloseWrite() error { return proxy.CloseWrite(c.Conn) }

// NetConn returns the wrapped conn.
func (c *countedConn) NetConn() net.Conn { return c.Conn }

func (c *countedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.stats.active.Add(-1)
	}
	return c.Conn.Close()
}

type countingWriter struct {
	w io.Writer
	n *Counter
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(uint64(n))
	return n, err
}
