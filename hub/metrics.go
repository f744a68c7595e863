package hub

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connects   prometheus.Counter
	deliveries prometheus.Counter
	duplicates prometheus.Counter
	gaps       prometheus.Counter
	slow       prometheus.Counter
	writes     prometheus.Counter
	gathered   prometheus.Counter
	commit     prometheus.Observer
}

// newMetrics registers the hub's metrics; a second hub in one process (tests) shares the
// first one's counters.
func newMetrics(reg prometheus.Registerer, h *Hub) *metrics {
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		if err := reg.Register(c); err != nil {
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				return are.ExistingCollector.(prometheus.Counter)
			}
		}
		return c
	}
	commit := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "commongrounds_publish_commit_seconds",
		Help:    "Time from a publish frame to its commit (the ack is queued then), successful publishes only.",
		Buckets: prometheus.ExponentialBuckets(0.00025, 2, 14), // 0.25 ms to 2 s
	})
	if err := reg.Register(commit); err != nil {
		if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
			commit = are.ExistingCollector.(prometheus.Histogram)
		}
	}
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "commongrounds_ws_connections", Help: "Open WebSocket connections on this instance.",
	}, func() float64 { return float64(h.Conns()) })
	_ = reg.Register(gauge)
	_ = reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "commongrounds_ws_parked_readers", Help: "Open WebSocket connections whose reader is parked: idle, waiting for the client on a small stack.",
	}, func() float64 { return float64(h.Parked()) }))
	return &metrics{
		connects:   counter("commongrounds_ws_connects_total", "WebSocket connections accepted."),
		deliveries: counter("commongrounds_ws_deliveries_total", "Message frames queued for local subscribers."),
		duplicates: counter("commongrounds_room_duplicates_dropped_total", "Room messages dropped because they were already delivered."),
		gaps:       counter("commongrounds_room_gaps_repaired_total", "Gaps in a room's seq repaired from the store."),
		slow:       counter("commongrounds_ws_slow_consumers_total", "Sockets closed because their queue overflowed."),
		writes:     counter("commongrounds_ws_writes_total", "Batches of queued frames written to sockets."),
		gathered:   counter("commongrounds_ws_gathered_writes_total", "Socket writers started after WRITE_DELAY, to gather frames while the instance was busy."),
		commit:     commit,
	}
}
