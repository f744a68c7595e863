package loadgen

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// The server metrics the load generator reads.
const (
	metricRSS        = "process_resident_memory_bytes"
	metricConns      = "commongrounds_ws_connections"
	metricGoroutines = "go_goroutines"
	metricHeapInuse  = "go_memstats_heap_inuse_bytes"
	metricStackInuse = "go_memstats_stack_inuse_bytes"
)

// ParseMetrics reads the values of the named metrics from the Prometheus text format, summed
// over their label sets.
func ParseMetrics(r io.Reader, names ...string) (map[string]float64, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := make(map[string]float64)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, _ := strings.Cut(line, " ")
		if i := strings.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
			if j := strings.LastIndexByte(line, '}'); j >= 0 {
				rest = line[j+1:]
			}
		}
		if !want[name] {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		out[name] += v
	}
	return out, sc.Err()
}

// MetricsURLs returns the /metrics URL of each server given by its WebSocket URL, once per
// host: the server serves its metrics apart from the public listener, on METRICS_ADDR, whose port
// is given.
func MetricsURLs(wsURLs []string, port string) ([]string, error) {
	var out []string
	seen := make(map[string]bool)
	for _, raw := range wsURLs {
		u, err := url.Parse(raw)
		if err != nil {
			return nil, fmt.Errorf("server URL: %w", err)
		}
		m := "http://" + net.JoinHostPort(u.Hostname(), port) + "/metrics"
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out, nil
}

// ScrapeServers reads the memory and socket metrics of every server, given by its /metrics URL,
// and sums them.
func ScrapeServers(ctx context.Context, metricsURLs []string) (*ServerStats, error) {
	st := &ServerStats{}
	for _, u := range metricsURLs {
		m, err := scrape(ctx, u)
		if err != nil {
			return nil, err
		}
		st.Instances++
		st.RSS += m[metricRSS]
		st.Conns += m[metricConns]
		st.Goroutines += m[metricGoroutines]
		st.HeapInuse += m[metricHeapInuse]
		st.StackInuse += m[metricStackInuse]
	}
	return st, nil
}

func scrape(ctx context.Context, u string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", u, resp.Status)
	}
	return ParseMetrics(resp.Body, metricRSS, metricConns, metricGoroutines, metricHeapInuse, metricStackInuse)
}

// PerSocket fills the per-socket figures from a steady-state scrape and the baseline RSS.
func (s *ServerStats) PerSocket(baselineRSS float64) {
	s.BaselineRSS = baselineRSS
	if s.Conns > 0 {
		s.RSSPerSocket = (s.RSS - baselineRSS) / s.Conns
		s.HeapPerSocket = (s.HeapInuse + s.StackInuse) / s.Conns
	}
}

// LoadAvg returns the system's load averages (the first three fields of /proc/loadavg), or
// "unknown".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
