package loadgen

import (
	"fmt"
	"io"
	"time"
)

// Result is what one run measured. Results of worker processes merge into one.
type Result struct {
	Scenario string `json:"scenario"`
	Sockets  int    `json:"sockets"` // sockets planned
	Pairs    int    `json:"pairs"`   // socket × room subscriptions planned

	// Connections.
	StartedAt       int64            `json:"started_at"`   // Unix ns of the first dial
	AllReadyAt      int64            `json:"all_ready_at"` // Unix ns when every socket was connected and subscribed (0: never)
	Ready           int64            `json:"ready"`        // sockets that got connected and subscribed
	Connects        int64            `json:"connects"`     // successful upgrades, reconnects included
	ConnectFailures map[string]int64 `json:"connect_failures,omitempty"`
	Disconnects     map[string]int64 `json:"disconnects,omitempty"`
	// StormFailures are the failed dials and disconnects while the storm ran, which a restart
	// causes on purpose.
	StormFailures   map[string]int64 `json:"storm_failures,omitempty"`
	SubscribeErrors map[string]int64 `json:"subscribe_errors,omitempty"`

	// Messages.
	Sent            int64            `json:"sent"`
	Acked           int64            `json:"acked"`
	PublishErrors   map[string]int64 `json:"publish_errors,omitempty"`
	Skipped         int64            `json:"publish_skipped"` // publisher's socket was down
	Delivered       int64            `json:"delivered"`
	SteadyDelivered int64            `json:"steady_delivered"`
	SteadySeconds   float64          `json:"steady_seconds"`
	Latency         *Hist            `json:"latency"`     // publish → each delivery (live messages)
	AckLatency      *Hist            `json:"ack_latency"` // publish → ack

	// Correctness.
	Gaps       int64 `json:"gaps"`       // seqs skipped, per socket and room
	Duplicates int64 `json:"duplicates"` // seqs received twice, per socket and room
	Missing    int64 `json:"missing"`    // seqs the server holds that a subscribed socket never got
	Unexpected int64 `json:"unexpected"` // messages of rooms the socket had not joined
	// Changes are the edits, deletions and hides made (Config.ChangeMix), each an event the
	// rooms' sockets check like messages; ChangeErrors the ones refused.
	Changes      int64            `json:"changes"`
	ChangeErrors map[string]int64 `json:"change_errors,omitempty"`
	// Threads are the threads offline users started before the run (Config.Offline); Replies
	// the publishes sent as replies to them (Config.ReplyMix).
	Threads int64 `json:"threads,omitempty"`
	Replies int64 `json:"replies,omitempty"`
	// Rooms has each room's seq before the first publish and after the last, as the server's
	// history has them, and the publishes acknowledged in it.
	Rooms map[string]RoomSeqs `json:"rooms,omitempty"`

	Steps []*Step `json:"steps,omitempty"`
	Storm *Storm  `json:"storm,omitempty"`

	// Filled by the caller.
	Server    *ServerStats `json:"server,omitempty"`     // with every socket connected
	ServerEnd *ServerStats `json:"server_end,omitempty"` // at the end of the steady phase
	// P99LimitMs is the latency bound of a stepped run; SustainedPerSec the most deliveries per
	// second of a step that kept its p99 within it without errors.
	P99LimitMs      float64   `json:"p99_limit_ms,omitempty"`
	SustainedPerSec float64   `json:"sustained_deliveries_per_sec,omitempty"`
	LoadAvg         [2]string `json:"loadavg"` // /proc/loadavg at start and end
	Workers         int       `json:"workers"`
}

// RoomSeqs is a room's last event position at the start and end of the run, and the acks
// received and changes made in it.
type RoomSeqs struct {
	Start int64 `json:"start"` // the room's last event position
	End   int64 `json:"end"`
	Acked int64 `json:"acked"`
	// Changed is the changes made in the room (events that are not new messages).
	Changed int64 `json:"changed,omitempty"`
}

// Step is one rate of a stepped run.
type Step struct {
	Rate      float64 `json:"rate"` // messages/s asked of all processes together
	Seconds   float64 `json:"seconds"`
	Sent      int64   `json:"sent"`
	Acked     int64   `json:"acked"`
	Delivered int64   `json:"delivered"`
	Errors    int64   `json:"errors"` // publish errors and disconnects during the step
	Latency   *Hist   `json:"latency"`
}

// Storm is the reconnect storm: every socket dropped at once, then resumed with since_seq.
type Storm struct {
	Mode    string `json:"mode"` // "drop" (the load generator closed its sockets) or "restart"
	Pairs   int64  `json:"pairs"`
	Pending int64  `json:"pending"` // pairs not caught up when the storm phase ended
	// Unix ns instants: the first socket lost, the first reconnect, every socket reconnected
	// and subscribed, every pair caught up.
	DroppedAt        int64 `json:"dropped_at"`
	FirstReconnectAt int64 `json:"first_reconnect_at"`
	AllReadyAt       int64 `json:"all_ready_at"`
	CaughtUpAt       int64 `json:"caught_up_at"`
}

// ServerStats is what the servers' /metrics said, summed over instances.
type ServerStats struct {
	Instances     int     `json:"instances"`
	BaselineRSS   float64 `json:"baseline_rss_bytes"` // before any socket
	RSS           float64 `json:"rss_bytes"`          // with every socket open
	Conns         float64 `json:"ws_connections"`
	Goroutines    float64 `json:"goroutines"`
	HeapInuse     float64 `json:"heap_inuse_bytes"`
	StackInuse    float64 `json:"stack_inuse_bytes"`
	RSSPerSocket  float64 `json:"rss_per_socket_bytes"`  // (RSS − BaselineRSS) / Conns
	HeapPerSocket float64 `json:"heap_per_socket_bytes"` // (HeapInuse + StackInuse) / Conns, baseline included
}

// Progress is the state of a run once a second.
type Progress struct {
	Phase     string  `json:"phase"`
	Elapsed   float64 `json:"elapsed"`
	Open      int64   `json:"open"`
	Ready     int64   `json:"ready"`
	Failures  int64   `json:"failures"` // connect failures and disconnects so far
	Sent      int64   `json:"sent"`
	Acked     int64   `json:"acked"`
	Errors    int64   `json:"errors"`
	Delivered int64   `json:"delivered"`
	PerSec    float64 `json:"deliveries_per_sec"` // over the last interval
	Gaps      int64   `json:"gaps"`
	Dups      int64   `json:"dups"`
	P50       float64 `json:"p50_ms"` // latency over the last interval
	P99       float64 `json:"p99_ms"`
}

// Event is what a run reports while it runs: a progress line, the end of a step, readiness for
// the steady phase, a request to restart the server.
type Event struct {
	Kind     string    `json:"kind"` // "progress", "step", "ready", "restart"
	Progress *Progress `json:"progress,omitempty"`
	Step     *Step     `json:"step,omitempty"`
	Index    int       `json:"index,omitempty"` // of the step
}

// Merge adds o, the result of another process of the same run, into r.
func (r *Result) Merge(o *Result) {
	r.Sockets += o.Sockets
	r.Pairs += o.Pairs
	switch {
	case r.StartedAt == 0: // the first part
		r.AllReadyAt = o.AllReadyAt
	case r.AllReadyAt == 0 || o.AllReadyAt == 0:
		r.AllReadyAt = 0 // some part never had every socket ready
	default:
		r.AllReadyAt = maxTime(r.AllReadyAt, o.AllReadyAt)
	}
	r.StartedAt = minTime(r.StartedAt, o.StartedAt)
	r.Ready += o.Ready
	r.Connects += o.Connects
	r.ConnectFailures = addCounts(r.ConnectFailures, o.ConnectFailures)
	r.Disconnects = addCounts(r.Disconnects, o.Disconnects)
	r.StormFailures = addCounts(r.StormFailures, o.StormFailures)
	r.SubscribeErrors = addCounts(r.SubscribeErrors, o.SubscribeErrors)
	r.Sent += o.Sent
	r.Acked += o.Acked
	r.PublishErrors = addCounts(r.PublishErrors, o.PublishErrors)
	r.Skipped += o.Skipped
	r.Delivered += o.Delivered
	r.SteadyDelivered += o.SteadyDelivered
	r.SteadySeconds = max(r.SteadySeconds, o.SteadySeconds)
	r.Latency = mergeHist(r.Latency, o.Latency)
	r.AckLatency = mergeHist(r.AckLatency, o.AckLatency)
	r.Gaps += o.Gaps
	r.Duplicates += o.Duplicates
	r.Missing += o.Missing
	r.Unexpected += o.Unexpected
	r.Changes += o.Changes
	r.ChangeErrors = addCounts(r.ChangeErrors, o.ChangeErrors)
	r.Threads += o.Threads
	r.Replies += o.Replies
	for id, s := range o.Rooms {
		if r.Rooms == nil {
			r.Rooms = make(map[string]RoomSeqs)
		}
		if c, ok := r.Rooms[id]; ok {
			s = RoomSeqs{Start: min(c.Start, s.Start), End: max(c.End, s.End), Acked: c.Acked + s.Acked, Changed: c.Changed + s.Changed}
		}
		r.Rooms[id] = s
	}
	for i, s := range o.Steps {
		if i >= len(r.Steps) {
			r.Steps = append(r.Steps, &Step{Rate: s.Rate, Latency: NewHist()})
		}
		r.Steps[i].Merge(s)
	}
	if o.Storm != nil {
		if r.Storm == nil {
			r.Storm = &Storm{Mode: o.Storm.Mode}
		}
		r.Storm.Merge(o.Storm)
	}
}

func mergeHist(a, b *Hist) *Hist {
	if a == nil {
		a = NewHist()
	}
	a.Merge(b)
	return a
}

// Merge adds the same step of another process.
func (s *Step) Merge(o *Step) {
	s.Seconds = max(s.Seconds, o.Seconds)
	s.Sent += o.Sent
	s.Acked += o.Acked
	s.Delivered += o.Delivered
	s.Errors += o.Errors
	s.Latency = mergeHist(s.Latency, o.Latency)
}

// Merge adds the storm of another process.
func (s *Storm) Merge(o *Storm) {
	s.Pairs += o.Pairs
	s.Pending += o.Pending
	s.DroppedAt = minTime(s.DroppedAt, o.DroppedAt)
	s.FirstReconnectAt = minTime(s.FirstReconnectAt, o.FirstReconnectAt)
	s.AllReadyAt = maxTime(s.AllReadyAt, o.AllReadyAt)
	s.CaughtUpAt = maxTime(s.CaughtUpAt, o.CaughtUpAt)
}

// Committed returns the messages the server's history gained in the run's rooms, and whether
// every acknowledged publish is among them exactly (no other writer assumed).
func (r *Result) Committed() (committed int64, matchesAcks bool) {
	var acked int64
	for _, s := range r.Rooms {
		committed += s.End - s.Start - s.Changed
		acked += s.Acked
	}
	return committed, committed == acked && acked == r.Acked
}

// Failed returns the reasons the run is not correct: connection failures, gaps, duplicates,
// missing deliveries, publish errors, unacknowledged or unpersisted messages. Timing is never a
// reason.
func (r *Result) Failed() []string {
	var why []string
	add := func(cond bool, format string, args ...any) {
		if cond {
			why = append(why, fmt.Sprintf(format, args...))
		}
	}
	add(r.Ready < int64(r.Sockets), "%d of %d sockets never got connected and subscribed", int64(r.Sockets)-r.Ready, r.Sockets)
	add(len(r.ConnectFailures) > 0, "connect failures: %s", formatCounts(r.ConnectFailures))
	add(len(r.SubscribeErrors) > 0, "subscribe errors: %s", formatCounts(r.SubscribeErrors))
	add(len(r.PublishErrors) > 0, "publish errors: %s", formatCounts(r.PublishErrors))
	add(len(r.ChangeErrors) > 0, "change errors: %s", formatCounts(r.ChangeErrors))
	add(r.Gaps > 0, "%d seqs skipped", r.Gaps)
	add(r.Duplicates > 0, "%d seqs received twice", r.Duplicates)
	add(r.Missing > 0, "%d deliveries missing", r.Missing)
	add(r.Unexpected > 0, "%d messages of rooms not joined", r.Unexpected)
	add(r.Acked != r.Sent, "%d sent, %d acknowledged", r.Sent, r.Acked)
	if committed, ok := r.Committed(); !ok {
		why = append(why, fmt.Sprintf("the rooms gained %d messages, %d acknowledged", committed, r.Acked))
	}
	if r.Storm != nil {
		add(r.Storm.Pending > 0, "%d subscriptions not caught up after the storm", r.Storm.Pending)
	}
	return why
}

func seconds(from, to int64) float64 {
	if from == 0 || to == 0 {
		return 0
	}
	return time.Duration(to - from).Seconds()
}

// WriteText writes the human-readable report.
func (r *Result) WriteText(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("scenario        %s (%d sockets, %d subscriptions, %d worker processes)", r.Scenario, r.Sockets, r.Pairs, max(r.Workers, 1))
	p("load average    start %s, end %s", r.LoadAvg[0], r.LoadAvg[1])
	ready := seconds(r.StartedAt, r.AllReadyAt)
	rate := 0.0
	if ready > 0 {
		rate = float64(r.Sockets) / ready
	}
	p("connections     %d ready of %d, %d upgrades; all connected+subscribed in %.2f s (%.0f sockets/s)", r.Ready, r.Sockets, r.Connects, ready, rate)
	p("  failed        %s", formatCounts(r.ConnectFailures))
	p("  disconnects   %s", formatCounts(r.Disconnects))
	if r.Storm != nil {
		p("  in the storm  %s", formatCounts(r.StormFailures))
	}
	p("  subscribe err %s", formatCounts(r.SubscribeErrors))
	committed, ok := r.Committed()
	p("messages        sent %d, acked %d, errors %s, skipped %d; committed %d (matches acks: %v)", r.Sent, r.Acked, formatCounts(r.PublishErrors), r.Skipped, committed, ok)
	perSec := 0.0
	if r.SteadySeconds > 0 {
		perSec = float64(r.SteadyDelivered) / r.SteadySeconds
	}
	p("deliveries      %d (%.0f/s over %.1f s of steady state)", r.Delivered, perSec, r.SteadySeconds)
	if r.Latency != nil {
		l := r.Latency.Summary()
		p("latency         publish→delivery p50 %.2f ms, p90 %.2f, p99 %.2f, max %.2f (n=%d)", l.P50, l.P90, l.P99, l.Max, l.Count)
	}
	if r.AckLatency != nil {
		l := r.AckLatency.Summary()
		p("ack latency     publish→ack p50 %.2f ms, p90 %.2f, p99 %.2f, max %.2f (n=%d)", l.P50, l.P90, l.P99, l.Max, l.Count)
	}
	if r.Changes > 0 || len(r.ChangeErrors) > 0 {
		p("changes         %d edits, deletions and hides; errors %s", r.Changes, formatCounts(r.ChangeErrors))
	}
	if r.Threads > 0 || r.Replies > 0 {
		p("replies         %d, to %d threads of users with no socket", r.Replies, r.Threads)
	}
	p("correctness     gaps %d, duplicates %d, missing %d, unexpected %d (event positions)", r.Gaps, r.Duplicates, r.Missing, r.Unexpected)
	for i, s := range r.Steps {
		l := s.Latency.Summary()
		dps := 0.0
		if s.Seconds > 0 {
			dps = float64(s.Delivered) / s.Seconds
		}
		p("step %-2d         %.0f msg/s asked: sent %.0f/s, acked %d, %.0f deliveries/s, p50 %.2f ms, p90 %.2f, p99 %.2f, max %.2f, errors %d",
			i+1, s.Rate, float64(s.Sent)/max(s.Seconds, 1e-9), s.Acked, dps, l.P50, l.P90, l.P99, l.Max, s.Errors)
	}
	if s := r.Storm; s != nil {
		p("storm (%s)   %d subscriptions; from the first drop: first reconnect %.2f s, all resubscribed %.2f s, all caught up %.2f s; from the first reconnect: all caught up %.2f s; not caught up %d",
			s.Mode, s.Pairs, seconds(s.DroppedAt, s.FirstReconnectAt), seconds(s.DroppedAt, s.AllReadyAt), seconds(s.DroppedAt, s.CaughtUpAt),
			seconds(s.FirstReconnectAt, s.CaughtUpAt), s.Pending)
	}
	if r.P99LimitMs > 0 {
		p("sustained       %.0f deliveries/s with p99 ≤ %.0f ms and no error", r.SustainedPerSec, r.P99LimitMs)
	}
	for _, x := range []struct {
		when string
		s    *ServerStats
	}{{"connected", r.Server}, {"end of steady", r.ServerEnd}} {
		s := x.s
		if s == nil {
			continue
		}
		p("server (%s) %d instance(s): RSS %.1f MiB (baseline %.1f MiB), %0.f sockets, %.0f goroutines, heap in use %.1f MiB, stacks %.1f MiB",
			x.when, s.Instances, s.RSS/(1<<20), s.BaselineRSS/(1<<20), s.Conns, s.Goroutines, s.HeapInuse/(1<<20), s.StackInuse/(1<<20))
		p("  per socket    RSS %.1f KiB (above baseline), heap+stacks %.1f KiB", s.RSSPerSocket/1024, s.HeapPerSocket/1024)
	}
	if why := r.Failed(); len(why) > 0 {
		p("NOT CORRECT     %v", why)
	} else {
		p("correct         no gap, duplicate, loss, error or failed connection")
	}
}
