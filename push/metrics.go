package push

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	sent, failed, dropped, removed, retries, coalesced prometheus.Counter
}

// newMetrics registers the service's metrics; a second service in one process (tests) shares
// the first one's counters.
func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
		if err := reg.Register(c); err != nil {
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				return are.ExistingCollector.(prometheus.Counter)
			}
		}
		return c
	}
	return &metrics{
		sent:      counter("commongrounds_push_sent_total", "Web Push messages a push service accepted."),
		failed:    counter("commongrounds_push_failed_total", "Web Push deliveries given up: refused, or still failing after the last retry."),
		dropped:   counter("commongrounds_push_dropped_total", "Web Push notifications or deliveries dropped because a queue was full."),
		removed:   counter("commongrounds_push_removed_total", "Web Push subscriptions removed because their push service answered 404 or 410."),
		retries:   counter("commongrounds_push_retries_total", "Web Push deliveries retried after a 429, a 5xx or a network error."),
		coalesced: counter("commongrounds_push_coalesced_total", "Notifications not pushed on their own because a newer one of the thread followed within the coalescing window."),
	}
}

// eventKind is what happened to a push.
type eventKind int

// The outcomes a Service reports to its observer.
const (
	evSent eventKind = iota + 1
	evRemoved
	evFailed
	evRetry
	evDropped
	evCoalesced
)

// event is one outcome, for tests.
type event struct {
	Kind     eventKind
	Endpoint string
	Status   int
	Delay    time.Duration // evRetry: the wait before the next try
}
