package loadgen

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Hist is a latency histogram in microseconds, from 1 µs to 10 minutes with three significant
// digits. It is safe for concurrent use and travels as JSON in the compressed HDR encoding.
type Hist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram // guarded by mu
}

const histMaxMicros = 600_000_000

// NewHist returns an empty histogram.
func NewHist() *Hist { return &Hist{h: hdrhistogram.New(1, histMaxMicros, 3)} }

// Record adds one latency; values out of range are clamped.
func (h *Hist) Record(d time.Duration) {
	us := min(max(d.Microseconds(), 1), histMaxMicros)
	h.mu.Lock()
	_ = h.h.RecordValue(us)
	h.mu.Unlock()
}

// Merge adds every value of o.
func (h *Hist) Merge(o *Hist) {
	if o == nil || h == o {
		return
	}
	o.mu.Lock()
	c := o.h.Clone()
	o.mu.Unlock()
	h.mu.Lock()
	h.h.Merge(c)
	h.mu.Unlock()
}

// Reset empties the histogram and returns a copy of what it held.
func (h *Hist) Reset() *Hist {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := &Hist{h: h.h.Clone()}
	h.h.Reset()
	return c
}

// Latency summarises a histogram in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary returns the count, median, 90th and 99th percentiles and maximum.
func (h *Hist) Summary() Latency {
	h.mu.Lock()
	defer h.mu.Unlock()
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Latency{
		Count: h.h.TotalCount(),
		P50:   ms(h.h.ValueAtQuantile(50)),
		P90:   ms(h.h.ValueAtQuantile(90)),
		P99:   ms(h.h.ValueAtQuantile(99)),
		Max:   ms(h.h.Max()),
	}
}

// MarshalJSON encodes the histogram in the compressed HDR format (base64).
func (h *Hist) MarshalJSON() ([]byte, error) {
	h.mu.Lock()
	b, err := h.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	h.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("encode histogram: %w", err)
	}
	return json.Marshal(string(b))
}

// UnmarshalJSON decodes what MarshalJSON encoded.
func (h *Hist) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	d, err := hdrhistogram.Decode([]byte(s))
	if err != nil {
		return fmt.Errorf("decode histogram: %w", err)
	}
	h.mu.Lock()
	h.h = d
	h.mu.Unlock()
	return nil
}

// Reasons counts events by reason. It is safe for concurrent use.
type Reasons struct {
	mu sync.Mutex
	m  map[string]int64 // guarded by mu
}

// Add counts one event of reason.
func (r *Reasons) Add(reason string) {
	r.mu.Lock()
	if r.m == nil {
		r.m = make(map[string]int64)
	}
	r.m[reason]++
	r.mu.Unlock()
}

// Map returns a copy of the counts.
func (r *Reasons) Map() map[string]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.m)
}

// Total returns the number of events.
func (r *Reasons) Total() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var n int64
	for _, v := range r.m {
		n += v
	}
	return n
}

// addCounts adds b's counts to a, returning a (allocated when nil and b is not empty).
func addCounts(a, b map[string]int64) map[string]int64 {
	for k, v := range b {
		if a == nil {
			a = make(map[string]int64)
		}
		a[k] += v
	}
	return a
}

// formatCounts formats counts as "a=1 b=2" in key order, or "0".
func formatCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "0"
	}
	s := ""
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if s != "" {
			s += " "
		}
		s += fmt.Sprintf("%s=%d", k, m[k])
	}
	return s
}

// minTime and maxTime combine Unix-ns instants where 0 means unset.
func minTime(a, b int64) int64 {
	if a == 0 || (b != 0 && b < a) {
		return b
	}
	return a
}

func maxTime(a, b int64) int64 { return max(a, b) }
