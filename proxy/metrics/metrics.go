// Package metrics is a small Prometheus instrumentation kit: counters, gauges and
// histograms updated with atomic operations only, grouped in labelled families, and
// written in the Prometheus text exposition format (version 0.0.4).
//
// It exists instead of the Prometheus client library to keep the data plane binary
// small. The hot path never locks: a series is looked up once (With, under the family's
// lock) and the returned pointer is updated with atomic adds from then on.
package metrics

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ContentType is the media type of the text exposition format.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Counter only goes up.
type Counter struct{ v atomic.Uint64 }

// Add adds n.
func (c *Counter) Add(n uint64) { c.v.Add(n) }

// Inc adds one.
func (c *Counter) Inc() { c.v.Add(1) }

// Value returns the count.
func (c *Counter) Value() uint64 { return c.v.Load() }

func (c *Counter) write(b *bytes.Buffer, name, labels string) {
	sample(b, name, labels, "", strconv.FormatUint(c.Value(), 10))
}

// Gauge goes up and down.
type Gauge struct{ v atomic.Int64 }

// Add adds n, which may be negative.
func (g *Gauge) Add(n int64) { g.v.Add(n) }

// Set sets the value.
func (g *Gauge) Set(n int64) { g.v.Store(n) }

// Value returns the value.
func (g *Gauge) Value() int64 { return g.v.Load() }

func (g *Gauge) write(b *bytes.Buffer, name, labels string) {
	sample(b, name, labels, "", strconv.FormatInt(g.Value(), 10))
}

// gaugeFunc is a gauge whose value is read when the metrics are written.
type gaugeFunc func() int64

func (g gaugeFunc) write(b *bytes.Buffer, name, labels string) {
	sample(b, name, labels, "", strconv.FormatInt(g(), 10))
}

// Histogram counts observations into buckets with fixed upper bounds.
type Histogram struct {
	bounds []float64       // ascending upper bounds; +Inf is implicit
	counts []atomic.Uint64 // per bucket, not cumulative; the last is +Inf
	sum    atomic.Uint64   // float64 bits
}

func newHistogram(bounds []float64) *Histogram {
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	i, _ := slices.BinarySearch(h.bounds, v) // the first bound >= v: buckets are "le"
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// ObserveDuration records d in seconds.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(d.Seconds()) }

// Count returns how many observations were made.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

func (h *Histogram) write(b *bytes.Buffer, name, labels string) {
	// Buckets are read one by one while observations go on, so the +Inf bucket and
	// _count are the running total of what was read: cumulative counts never decrease.
	var cum uint64
	for i, bound := range h.bounds {
		cum += h.counts[i].Load()
		sample(b, name+"_bucket", labels, `le="`+formatFloat(bound)+`"`, strconv.FormatUint(cum, 10))
	}
	cum += h.counts[len(h.bounds)].Load()
	sample(b, name+"_bucket", labels, `le="+Inf"`, strconv.FormatUint(cum, 10))
	sample(b, name+"_sum", labels, "", formatFloat(math.Float64frombits(h.sum.Load())))
	sample(b, name+"_count", labels, "", strconv.FormatUint(cum, 10))
}

// DefaultDialBuckets suit dial latencies through a chain: 1 ms to 10 s.
var DefaultDialBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// metric is a series a family can write.
type metric interface {
	write(b *bytes.Buffer, name, labels string)
}

type family struct {
	name, help, kind string
	labels           []string

	mu     sync.Mutex
	series map[string]metric // by rendered label pairs
}

// Vec is a family of series told apart by label values.
type Vec[M metric] struct {
	f  *family
	mk func() M
}

// With returns the series for values, one per label in the order the family was
// registered with, creating it on first use. Keep the result: With takes a lock.
func (v *Vec[M]) With(values ...string) M {
	if len(values) != len(v.f.labels) {
		// A programming error; a mislabelled series would be silently wrong instead.
		panic(fmt.Sprintf("metrics: %s has %d labels, got %d values", v.f.name, len(v.f.labels), len(values)))
	}
	var key strings.Builder
	for i, l := range v.f.labels {
		if i > 0 {
			key.WriteByte(',')
		}
		key.WriteString(l + `="` + escapeLabel(values[i]) + `"`)
	}
	v.f.mu.Lock()
	defer v.f.mu.Unlock()
	if m, ok := v.f.series[key.String()]; ok {
		return m.(M)
	}
	m := v.mk()
	v.f.series[key.String()] = m
	return m
}

// Registry holds families in registration order and writes them.
type Registry struct {
	mu       sync.Mutex
	families []*family
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{} }

func (r *Registry) add(name, help, kind string, labels []string) *family {
	f := &family{name: name, help: help, kind: kind, labels: labels, series: map[string]metric{}}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.families {
		if g.name == name {
			panic("metrics: duplicate family " + name) // a programming error
		}
	}
	r.families = append(r.families, f)
	return f
}

// Counter registers a counter without labels.
func (r *Registry) Counter(name, help string) *Counter {
	return r.CounterVec(name, help).With()
}

// CounterVec registers a family of counters.
func (r *Registry) CounterVec(name, help string, labels ...string) *Vec[*Counter] {
	return &Vec[*Counter]{r.add(name, help, "counter", labels), func() *Counter { return new(Counter) }}
}

// Gauge registers a gauge without labels.
func (r *Registry) Gauge(name, help string) *Gauge {
	return r.GaugeVec(name, help).With()
}

// GaugeVec registers a family of gauges.
func (r *Registry) GaugeVec(name, help string, labels ...string) *Vec[*Gauge] {
	return &Vec[*Gauge]{r.add(name, help, "gauge", labels), func() *Gauge { return new(Gauge) }}
}

// GaugeFunc registers a gauge without labels whose value read calls for at each write.
func (r *Registry) GaugeFunc(name, help string, read func() int64) {
	f := r.add(name, help, "gauge", nil)
	f.series[""] = gaugeFunc(read)
}

// HistogramVec registers a family of histograms with ascending bucket upper bounds.
func (r *Registry) HistogramVec(name, help string, bounds []float64, labels ...string) *Vec[*Histogram] {
	bounds = slices.Clone(bounds)
	slices.Sort(bounds)
	return &Vec[*Histogram]{r.add(name, help, "histogram", labels), func() *Histogram { return newHistogram(bounds) }}
}

// WriteTo writes every family that has a series, in registration order, series sorted
// by labels.
func (r *Registry) WriteTo(w io.Writer) (int64, error) {
	r.mu.Lock()
	families := slices.Clone(r.families)
	r.mu.Unlock()
	var b bytes.Buffer
	for _, f := range families {
		f.mu.Lock()
		keys := make([]string, 0, len(f.series))
		for k := range f.series {
			keys = append(keys, k)
		}
		series := make([]metric, len(keys))
		slices.Sort(keys)
		for i, k := range keys {
			series[i] = f.series[k]
		}
		f.mu.Unlock()
		if len(series) == 0 {
			continue
		}
		b.WriteString("# HELP " + f.name + " " + escapeHelp(f.help) + "\n")
		b.WriteString("# TYPE " + f.name + " " + f.kind + "\n")
		for i, m := range series {
			m.write(&b, f.name, keys[i])
		}
	}
	return b.WriteTo(w)
}

// sample writes one line: name{labels,extra} value.
func sample(b *bytes.Buffer, name, labels, extra, value string) {
	b.WriteString(name)
	if labels != "" || extra != "" {
		b.WriteByte('{')
		b.WriteString(labels)
		if labels != "" && extra != "" {
			b.WriteByte(',')
		}
		b.WriteString(extra)
		b.WriteByte('}')
	}
	b.WriteByte(' ')
	b.WriteString(value)
	b.WriteByte('\n')
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// The format escapes backslash and newline in HELP text, and also the double quote in
// label values.
var (
	helpEscaper  = strings.NewReplacer(`\`, `\\`, "\n", `\n`)
	labelEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`)
)

func escapeHelp(s string) string  { return helpEscaper.Replace(s) }
func escapeLabel(s string) string { return labelEscaper.Replace(s) }
