// Package loadgen drives many WebSocket clients against Common Grounds servers and measures
// what they see: connections, publishes and acks, deliveries and their end-to-end latency, and
// every gap or duplicate in a room's seq. cmd/cgload is its command line.
package loadgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Storm modes.
const (
	StormNone    = ""
	StormDrop    = "drop"    // the load generator closes every socket itself
	StormRestart = "restart" // the servers are restarted by someone else
)

// Config is one process's part of a load run. Zero values give the documented defaults.
type Config struct {
	Scenario string
	// URLs are the servers' WebSocket endpoints (ws://host:port/ws); socket i uses URLs[i mod n].
	URLs []string
	// SourceAddrs are local IP addresses to connect from (such as 127.0.0.2); socket i uses
	// SourceAddrs[i mod n]. Default: the system's choice.
	SourceAddrs []string
	Seed        *Seed
	// Worker and Workers select this process's share of the seed: the users whose index is
	// Worker modulo Workers. Default: all.
	Worker, Workers int
	// Publishers is the number of users, the first ones of the seed, that publish. Default: all.
	Publishers int
	// Rate is the publishes per second of all processes together, spread evenly over the
	// publishers. Steps, when set, replace it with rates run StepDuration each.
	Rate         float64
	Steps        []float64
	StepDuration time.Duration
	// P99Limit ends a stepped run after the first step whose p99 latency, as this process
	// measured it, passed it. Zero: every step runs.
	P99Limit time.Duration
	// Duration is the steady phase, after every socket is connected and subscribed.
	Duration time.Duration
	// ContentSize is the length of a message's content. Default: 100.
	ContentSize int
	// ConnectConcurrency bounds the dials in progress in this process. Default: 200.
	ConnectConcurrency int
	// ConnectTimeout bounds the wait for every socket to be connected and subscribed; the run
	// goes on with those that are. Default: 5 minutes.
	ConnectTimeout time.Duration
	// ReconnectJitter is the longest random wait before reconnecting after a drop. Default: 0.
	ReconnectJitter time.Duration
	// Storm, after the steady phase, drops every socket (StormDrop) or waits for the servers to
	// restart (StormRestart), and measures the time until every socket has resubscribed and
	// caught up. StormTimeout bounds it. Default: 2 minutes.
	Storm        string
	StormTimeout time.Duration
	// DrainTimeout bounds the wait, after the last publish, for every ack and every delivery.
	// Default: 30 s.
	DrainTimeout time.Duration
	// RunID makes client_msg_ids unique across runs. Default: random.
	RunID string
	// ChangeMix is the share of publishes replaced by a change to an earlier message of the
	// publisher's (changes.go): an edit, a deletion or a hide, in turn. Default: 0, none.
	ChangeMix float64
	// ReplyMix is the share of publishes that are replies to a thread started by an offline
	// user (replies.go), each notifying that user. Default: 0, none.
	ReplyMix float64
	// Offline is the number of users, the last ones of the seed, that open no socket during the
	// run: before it, each starts a thread in each of its rooms for the replies. Default: 0.
	Offline int
	// PushEndpoint, when set, is the https URL of a push service under which each offline user
	// stores a push subscription before the run, so that replies are pushed to it.
	PushEndpoint string
	// HideFlags is the number of members that flag a message to hide it: the servers'
	// FLAG_HIDE_THRESHOLD. Default: 3.
	HideFlags int
}

func (c *Config) setDefaults() error {
	if len(c.URLs) == 0 {
		return errors.New("no server URL")
	}
	if c.Seed == nil || len(c.Seed.Users) == 0 {
		return errors.New("no users")
	}
	if c.Workers <= 0 {
		c.Workers, c.Worker = 1, 0
	}
	if c.Worker < 0 || c.Worker >= c.Workers {
		return fmt.Errorf("worker %d of %d", c.Worker, c.Workers)
	}
	if c.Publishers <= 0 || c.Publishers > len(c.Seed.Users) {
		c.Publishers = len(c.Seed.Users)
	}
	if c.ContentSize <= 0 {
		c.ContentSize = 100
	}
	if c.ConnectConcurrency <= 0 {
		c.ConnectConcurrency = 200
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 5 * time.Minute
	}
	if c.StormTimeout <= 0 {
		c.StormTimeout = 2 * time.Minute
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.StepDuration <= 0 {
		c.StepDuration = 10 * time.Second
	}
	if c.ChangeMix < 0 || c.ChangeMix > 1 {
		return fmt.Errorf("change mix %v: want a share from 0 to 1", c.ChangeMix)
	}
	if c.ReplyMix < 0 || c.ReplyMix > 1 || c.ReplyMix+c.ChangeMix > 1 {
		return fmt.Errorf("reply mix %v: want a share from 0 to 1, with the change mix at most 1", c.ReplyMix)
	}
	if c.Offline < 0 || c.Offline >= len(c.Seed.Users) {
		return fmt.Errorf("offline users %d: want from 0 to fewer than the seed's %d", c.Offline, len(c.Seed.Users))
	}
	if c.ReplyMix > 0 && c.Offline == 0 {
		return errors.New("a reply mix needs offline users to start the threads")
	}
	if c.PushEndpoint != "" && !strings.HasPrefix(c.PushEndpoint, "https://") {
		return fmt.Errorf("push endpoint %q: want an https URL", c.PushEndpoint)
	}
	if c.HideFlags <= 0 {
		c.HideFlags = 3
	}
	if c.RunID == "" {
		c.RunID = strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	}
	switch c.Storm {
	case StormNone, StormDrop, StormRestart:
	default:
		return fmt.Errorf("storm mode %q: want drop or restart", c.Storm)
	}
	return nil
}

// Control lets the caller synchronise processes: Go, when not nil, is closed when the steady
// phase may begin; closing Stop ends the steady phase (or the current step) early.
type Control struct {
	Go   <-chan struct{}
	Stop <-chan struct{}
}

// runner is the state of one run in one process.
type runner struct {
	cfg        Config
	sockets    []*socket
	publishers []*socket
	localRate  float64 // share of a global rate of 1 msg/s
	apiBase    string
	apiClient  *http.Client
	transports []*http.Transport
	dialSlots  chan struct{}
	roomAcks   map[string]*atomic.Int64
	threads    threads // the offline users' thread roots, for replies
	replies    atomic.Int64

	phase   atomic.Value // string
	steady  atomic.Bool
	rateNow atomic.Uint64 // float64 bits: this process's publishes per second

	connects, sent, acked, skipped, delivered, steadyDelivered   atomic.Int64
	gaps, duplicates, unexpected, unparsed                       atomic.Int64
	stepSent, stepAcked, stepDelivered, stepErrors               atomic.Int64
	readyNow, openNow                                            atomic.Int64
	connectFailures, disconnects, subscribeErrors, stormFailures Reasons
	publishErrors, otherErrors                                   Reasons
	changer                                                      *changer

	latency, intervalLatency, stepLatency, ackLatency *Hist

	readyOnce  stopwatch    // every socket ready once
	gaveUp     atomic.Int64 // sockets refused for good (401, 403): they will never be ready
	stormArmed atomic.Bool
	storm      stopwatch // every pair caught up after the storm
	stormReady stopwatch // every socket resubscribed after the storm
	droppedAt  atomic.Int64
	reconnAt   atomic.Int64
}

func newRunner(cfg Config) (*runner, error) {
	r := &runner{
		cfg:             cfg,
		dialSlots:       make(chan struct{}, cfg.ConnectConcurrency),
		roomAcks:        make(map[string]*atomic.Int64),
		latency:         NewHist(),
		intervalLatency: NewHist(),
		stepLatency:     NewHist(),
		ackLatency:      NewHist(),
	}
	r.phase.Store("connect")
	clients := []*http.Client{{}}
	if len(cfg.SourceAddrs) > 0 {
		clients = clients[:0]
		for _, a := range cfg.SourceAddrs {
			ip := net.ParseIP(a)
			if ip == nil {
				return nil, fmt.Errorf("source address %q is not an IP address", a)
			}
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
			t := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16}
			r.transports = append(r.transports, t)
			clients = append(clients, &http.Client{Transport: t})
		}
	} else {
		t := &http.Transport{DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext, MaxIdleConnsPerHost: 16}
		r.transports = append(r.transports, t)
		clients[0] = &http.Client{Transport: t}
	}
	r.apiClient = &http.Client{Transport: r.transports[0], Timeout: 30 * time.Second}
	u, err := url.Parse(cfg.URLs[0])
	if err != nil {
		return nil, fmt.Errorf("server URL: %w", err)
	}
	r.apiBase = httpBase(u)

	totalPublishers, localPublishers := 0, 0
	for i, user := range cfg.Seed.Users {
		if cfg.isOffline(i) {
			continue
		}
		isPublisher := i < cfg.Publishers && len(user.Rooms) > 0
		if isPublisher {
			totalPublishers++
		}
		if i%cfg.Workers != cfg.Worker {
			continue
		}
		s := &socket{
			r: r, index: i, token: user.Token,
			url:    cfg.URLs[i%len(cfg.URLs)],
			client: clients[i%len(clients)],
			byRoom: make(map[string]*roomTrack, len(user.Rooms)),
		}
		for _, room := range user.Rooms {
			t := &roomTrack{room: room}
			s.rooms = append(s.rooms, t)
			s.byRoom[room] = t
			if r.roomAcks[room] == nil {
				r.roomAcks[room] = new(atomic.Int64)
			}
		}
		r.sockets = append(r.sockets, s)
		if isPublisher {
			r.publishers = append(r.publishers, s)
			localPublishers++
		}
	}
	if totalPublishers > 0 {
		r.localRate = float64(localPublishers) / float64(totalPublishers)
	}
	r.changer = newChanger(r)
	return r, nil
}

// httpBase returns the http(s)://host of a ws(s) URL.
func httpBase(u *url.URL) string {
	scheme := "http"
	if u.Scheme == "wss" || u.Scheme == "https" {
		scheme = "https"
	}
	return scheme + "://" + u.Host
}

func (r *runner) setRate(global float64) {
	r.rateNow.Store(math.Float64bits(global * r.localRate))
}

func (r *runner) rate() float64 { return math.Float64frombits(r.rateNow.Load()) }

func (r *runner) countDelivery() {
	r.delivered.Add(1)
	r.stepDelivered.Add(1)
	if r.steady.Load() {
		r.steadyDelivered.Add(1)
	}
}

func (r *runner) recordLatency(d time.Duration) {
	r.latency.Record(d)
	r.intervalLatency.Record(d)
	r.stepLatency.Record(d)
}

// failure counts a failed dial or a lost connection under its reason, or among the storm's
// failures while the storm runs.
func (r *runner) failure(m *Reasons, reason string) {
	if r.stormArmed.Load() {
		m = &r.stormFailures
	}
	m.Add(reason)
}

// firstReconnect records the first reconnect after the storm began.
func (r *runner) firstReconnect(now int64) {
	if r.stormArmed.Load() {
		r.reconnAt.CompareAndSwap(0, now)
	}
}

// Run runs this process's part of a load test: it connects and subscribes every socket, waits
// for ctl.Go, publishes for the steady phase (or each step), runs the storm if asked, waits for
// every ack and delivery, and closes the sockets. emit, when not nil, receives a progress event
// every second and the events of the phases. Run returns an error only when it cannot start;
// what went wrong under load is in the Result.
func Run(ctx context.Context, cfg Config, ctl Control, emit func(Event)) (*Result, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, fmt.Errorf("load run: %w", err)
	}
	if emit == nil {
		emit = func(Event) {}
	}
	r, err := newRunner(cfg)
	if err != nil {
		return nil, fmt.Errorf("load run: %w", err)
	}
	defer func() {
		for _, t := range r.transports {
			t.CloseIdleConnections()
		}
	}()
	res := &Result{Scenario: cfg.Scenario, Sockets: len(r.sockets)}
	for _, s := range r.sockets {
		res.Pairs += len(s.rooms)
	}

	sctx, stopSockets := context.WithCancel(ctx)
	defer stopSockets()
	start := time.Now()
	progressDone := make(chan struct{})
	progressStop := make(chan struct{})
	go func() {
		defer close(progressDone)
		r.progressLoop(start, progressStop, emit)
	}()

	// Offline users start their threads (before the rooms' positions are first read).
	if err := r.prepareOffline(ctx); err != nil {
		return nil, fmt.Errorf("load run: %w", err)
	}
	res.Threads = r.threads.made.Load()

	// Connect and subscribe.
	res.StartedAt = start.UnixNano()
	r.readyOnce.start(int64(len(r.sockets)))
	var wg sync.WaitGroup
	for _, s := range r.sockets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(sctx)
		}()
	}
	r.waitFor(ctx, ctl.Stop, cfg.ConnectTimeout, func() bool {
		return r.readyOnce.doneAt.Load() != 0 || r.readyOnce.pending.Load() == r.gaveUp.Load()
	})
	res.AllReadyAt = r.readyOnce.doneAt.Load()

	startSeqs := r.roomSeqs(ctx)
	emit(Event{Kind: "ready"})
	if ctl.Go != nil {
		select {
		case <-ctl.Go:
		case <-ctl.Stop:
		case <-ctx.Done():
		}
	}

	// Steady phase, publishing.
	r.phase.Store("steady")
	pubStop := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		r.publishLoop(ctx, pubStop)
	}()
	steadyStart := time.Now()
	r.steady.Store(true)
	if len(cfg.Steps) > 0 {
		for i, rate := range cfg.Steps {
			if stopped(ctx, ctl.Stop) {
				break
			}
			r.phase.Store(fmt.Sprintf("step %d (%.0f msg/s)", i+1, rate))
			stepStart := time.Now()
			r.stepSent.Store(0)
			r.stepAcked.Store(0)
			r.stepDelivered.Store(0)
			r.stepErrors.Store(0)
			r.stepLatency.Reset()
			r.setRate(rate)
			stopped := r.sleep(ctx, ctl.Stop, cfg.StepDuration)
			step := &Step{
				Rate: rate, Seconds: time.Since(stepStart).Seconds(),
				Sent: r.stepSent.Load(), Acked: r.stepAcked.Load(), Delivered: r.stepDelivered.Load(),
				Errors: r.stepErrors.Load(), Latency: r.stepLatency.Reset(),
			}
			res.Steps = append(res.Steps, step)
			emit(Event{Kind: "step", Step: step, Index: i})
			over := cfg.P99Limit > 0 && step.Latency.Summary().P99 > float64(cfg.P99Limit)/float64(time.Millisecond)
			if stopped || over {
				break
			}
		}
	} else {
		r.setRate(cfg.Rate)
		r.sleep(ctx, ctl.Stop, cfg.Duration)
	}
	r.steady.Store(false)
	res.SteadySeconds = time.Since(steadyStart).Seconds()
	res.SteadyDelivered = r.steadyDelivered.Load()

	if cfg.Storm != StormNone && ctx.Err() == nil {
		res.Storm = r.runStorm(ctx, emit)
	}

	// Drain: no more publishes; every ack, then every delivery of what the server holds.
	r.phase.Store("drain")
	close(pubStop)
	<-pubDone
	r.changer.wait()
	r.waitFor(ctx, nil, cfg.DrainTimeout, func() bool { return r.pendingPublishes() == 0 })
	// Other processes may still be committing their last publishes: read the rooms' seqs
	// again after the deliveries arrived, until they hold still.
	endSeqs := r.roomSeqs(ctx)
	for range 5 {
		r.waitFor(ctx, nil, cfg.DrainTimeout, func() bool { return r.missing(endSeqs) == 0 })
		again := r.roomSeqs(ctx)
		if maps.Equal(again, endSeqs) {
			break
		}
		endSeqs = again
	}
	res.Missing = r.missing(endSeqs)
	for room, acks := range r.roomAcks {
		res.Rooms = addRoom(res.Rooms, room, RoomSeqs{Start: startSeqs[room], End: endSeqs[room], Acked: acks.Load(), Changed: r.changer.byRoom[room].Load()})
	}

	r.phase.Store("close")
	stopSockets()
	wg.Wait()
	close(progressStop)
	<-progressDone

	for _, s := range r.sockets {
		if s.everReady.Load() {
			res.Ready++
		}
	}
	res.Connects = r.connects.Load()
	res.ConnectFailures = r.connectFailures.Map()
	res.Disconnects = r.disconnects.Map()
	res.StormFailures = r.stormFailures.Map()
	res.SubscribeErrors = r.subscribeErrors.Map()
	res.PublishErrors = addCounts(r.publishErrors.Map(), r.otherErrors.Map())
	res.Sent, res.Acked, res.Skipped = r.sent.Load(), r.acked.Load(), r.skipped.Load()
	res.Delivered = r.delivered.Load()
	res.Latency, res.AckLatency = r.latency, r.ackLatency
	res.Gaps, res.Duplicates, res.Unexpected = r.gaps.Load(), r.duplicates.Load(), r.unexpected.Load()+r.unparsed.Load()
	res.Changes, res.ChangeErrors = r.changer.done.Load(), r.changer.errors.Map()
	res.Replies = r.replies.Load()
	return res, nil
}

func addRoom(m map[string]RoomSeqs, room string, s RoomSeqs) map[string]RoomSeqs {
	if m == nil {
		m = make(map[string]RoomSeqs)
	}
	m[room] = s
	return m
}

// stopped reports whether ctx ended or stop was closed.
func stopped(ctx context.Context, stop <-chan struct{}) bool {
	select {
	case <-ctx.Done():
		return true
	case <-stop:
		return true
	default:
		return false
	}
}

// sleep waits for d, ctx or stop; it reports whether it was stopped early.
func (r *runner) sleep(ctx context.Context, stop <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return false
	case <-ctx.Done():
		return true
	case <-stop:
		return true
	}
}

// waitFor polls cond until it holds, timeout passes, ctx ends or stop is closed.
func (r *runner) waitFor(ctx context.Context, stop <-chan struct{}, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-stop:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return true
}

// runStorm drops every socket, or waits for the servers to drop them, and measures the
// reconnect with since_seq until every subscription has caught up.
func (r *runner) runStorm(ctx context.Context, emit func(Event)) *Storm {
	st := &Storm{Mode: r.cfg.Storm}
	var members int64
	for _, s := range r.sockets {
		if s.everReady.Load() {
			s.stormMember.Store(true)
			members++
			st.Pairs += int64(len(s.rooms))
		}
	}
	r.storm.start(st.Pairs)
	r.stormReady.start(members)
	r.stormArmed.Store(true)
	r.phase.Store("storm")
	if r.cfg.Storm == StormDrop {
		r.droppedAt.Store(time.Now().UnixNano())
		for _, s := range r.sockets {
			s.drop()
		}
	} else {
		r.phase.Store("storm: restart the server(s) now")
		emit(Event{Kind: "restart"})
	}
	r.waitFor(ctx, nil, r.cfg.StormTimeout, func() bool {
		return r.storm.doneAt.Load() != 0 && r.stormReady.doneAt.Load() != 0
	})
	st.Pending = r.storm.pending.Load()
	st.DroppedAt = r.droppedAt.Load()
	st.FirstReconnectAt = r.reconnAt.Load()
	st.AllReadyAt = r.stormReady.doneAt.Load()
	st.CaughtUpAt = r.storm.doneAt.Load()
	r.stormArmed.Store(false)
	return st
}

// noteDrop records the first connection lost after the storm began.
func (r *runner) noteDrop() {
	if r.stormArmed.Load() {
		r.droppedAt.CompareAndSwap(0, time.Now().UnixNano())
	}
}

// publishLoop publishes at the current rate, round-robin over the publishers, until stop.
func (r *runner) publishLoop(ctx context.Context, stop <-chan struct{}) {
	if len(r.publishers) == 0 {
		return
	}
	prefix := fmt.Sprintf("%s-%d-", r.cfg.RunID, r.cfg.Worker)
	var n, base int64
	var t0 time.Time
	rate := -1.0
	var buf []byte
	next := 0
	mix := 0.0   // the share of a change owed
	reply := 0.0 // the share of a reply owed
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			return
		case <-tick.C:
		}
		if cur := r.rate(); cur != rate {
			rate, base, t0 = cur, n, time.Now()
		}
		if rate <= 0 {
			continue
		}
		due := base + int64(time.Since(t0).Seconds()*rate)
		for n < due {
			s := r.publishers[next%len(r.publishers)]
			next++
			n++
			if mix += r.cfg.ChangeMix; mix >= 1 {
				mix--
				if r.changer.start(ctx, s) {
					continue
				}
			}
			isReply := false
			if reply += r.cfg.ReplyMix; reply >= 1 {
				reply--
				isReply = true
			}
			var ok bool
			buf, ok = s.publish(prefix+strconv.FormatInt(n, 10), r.cfg.ContentSize, isReply, buf)
			if ok {
				r.sent.Add(1)
				r.stepSent.Add(1)
			} else {
				r.skipped.Add(1)
			}
		}
	}
}

func (r *runner) pendingPublishes() int {
	n := 0
	for _, s := range r.publishers {
		n += s.pending()
	}
	return n
}

// missing returns the seqs the server holds that subscribed sockets have not received.
func (r *runner) missing(end map[string]int64) int64 {
	var n int64
	for _, s := range r.sockets {
		if !s.everReady.Load() {
			continue
		}
		for _, t := range s.rooms {
			if d := end[t.room] - t.last.Load(); d > 0 {
				n += d
			}
		}
	}
	return n
}

// roomSeqs reads the last event position of every room of this process from the server's
// history, with a token of one of its members here.
func (r *runner) roomSeqs(ctx context.Context) map[string]int64 {
	type job struct{ room, token string }
	var jobs []job
	seen := make(map[string]bool)
	for _, s := range r.sockets {
		for _, t := range s.rooms {
			if !seen[t.room] {
				seen[t.room] = true
				jobs = append(jobs, job{t.room, s.token})
			}
		}
	}
	out := make(map[string]int64, len(jobs))
	var mu sync.Mutex
	ch := make(chan job)
	var wg sync.WaitGroup
	for range min(16, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				seq, err := r.lastSeq(ctx, j.room, j.token)
				if err != nil {
					fmt.Fprintf(os.Stderr, "cgload: room %s: %v\n", j.room, err)
					continue
				}
				mu.Lock()
				out[j.room] = seq
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	return out
}

// lastSeq returns the room's last event position (the history's last_seq), 0 in an empty
// room; it retries for a while, since the server may be restarting.
func (r *runner) lastSeq(ctx context.Context, room, token string) (int64, error) {
	var err error
	for attempt := 1; attempt <= 20; attempt++ {
		var seq int64
		if seq, err = r.lastSeqOnce(ctx, room, token); err == nil || ctx.Err() != nil || refused(err) {
			return seq, err
		}
		sleep(ctx, backoff(attempt))
	}
	return 0, err
}

func (r *runner) lastSeqOnce(ctx context.Context, room, token string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.apiBase+"/api/v1/classes/"+url.PathEscape(room)+"/messages?limit=1", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := r.apiClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("history: %w", httpError(resp.StatusCode))
	}
	var body struct {
		LastSeq *int64 `json:"last_seq"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("history: %w", err)
	}
	if body.LastSeq == nil {
		return 0, errors.New("history: no last_seq")
	}
	return *body.LastSeq, nil
}

// progressLoop emits a progress event every second until stop.
func (r *runner) progressLoop(start time.Time, stop <-chan struct{}, emit func(Event)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last, lastAt := int64(0), start
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			d := r.delivered.Load()
			l := r.intervalLatency.Reset().Summary()
			emit(Event{Kind: "progress", Progress: &Progress{
				Phase:     r.phase.Load().(string),
				Elapsed:   now.Sub(start).Seconds(),
				Open:      r.openNow.Load(),
				Ready:     r.readyNow.Load(),
				Failures:  r.connectFailures.Total() + r.disconnects.Total() + r.stormFailures.Total(),
				Sent:      r.sent.Load(),
				Acked:     r.acked.Load(),
				Errors:    r.publishErrors.Total() + r.subscribeErrors.Total(),
				Delivered: d,
				PerSec:    float64(d-last) / now.Sub(lastAt).Seconds(),
				Gaps:      r.gaps.Load(),
				Dups:      r.duplicates.Load(),
				P50:       l.P50,
				P99:       l.P99,
			}})
			last, lastAt = d, now
		}
	}
}

// FormatProgress formats a progress event as one line.
func FormatProgress(p *Progress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6.1fs %-12s open %d ready %d fail %d | sent %d acked %d err %d | delivered %d (%.0f/s) p50 %.1f ms p99 %.1f ms | gaps %d dups %d",
		p.Elapsed, p.Phase, p.Open, p.Ready, p.Failures, p.Sent, p.Acked, p.Errors, p.Delivered, p.PerSec, p.P50, p.P99, p.Gaps, p.Dups)
	return b.String()
}

// MergeProgress adds the progress of another process.
func MergeProgress(a, b *Progress) *Progress {
	if a == nil {
		c := *b
		return &c
	}
	a.Elapsed = max(a.Elapsed, b.Elapsed)
	a.Open += b.Open
	a.Ready += b.Ready
	a.Failures += b.Failures
	a.Sent += b.Sent
	a.Acked += b.Acked
	a.Errors += b.Errors
	a.Delivered += b.Delivered
	a.PerSec += b.PerSec
	a.Gaps += b.Gaps
	a.Dups += b.Dups
	a.P50 = max(a.P50, b.P50)
	a.P99 = max(a.P99, b.P99)
	return a
}
