// Package push sends notifications to the browsers and phones of users who have no socket open,
// by Web Push: RFC 8030 delivery to the browser's push service, the payload encrypted for the
// browser alone (RFC 8291, aes128gcm) and the server identified by VAPID (RFC 8292, ES256).
//
// Push never blocks its caller. A notification first passes the coalescer (at most one push per
// user and thread per CoalesceWindow), then waits in a bounded queue for a worker, which looks
// up the user's subscriptions and hands one delivery per subscription to the lane of the push
// service's host. Each lane has its own bounded queue and senders, so a push service that hangs
// or fails holds up only its own deliveries. A full queue drops the notification and counts it
// (commongrounds_push_dropped_total): pushes are a courtesy, the inbox keeps every notification.
//
// A request times out after RequestTimeout. 404 and 410 remove the subscription; 429, 5xx and
// network errors are retried with exponential backoff, never sooner than a Retry-After, at most
// MaxAttempts times. Retries wait on timers, not in senders.
package push

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	cg "github.com/commongrounds/commongrounds"
)

// Options configure a Service. PrivateKey and Subject are required; the others have the
// defaults their comments give.
type Options struct {
	// PrivateKey is the VAPID private key: a P-256 scalar of 32 bytes.
	PrivateKey []byte
	// Subject is the VAPID contact (the JWT's sub): a mailto: or https: URL.
	Subject string
	// AllowedHosts are the push services subscriptions may point at: host names, or "*." and a
	// domain for any of its subdomains (not the domain itself), each with an optional ":port"
	// (without one, only port 443). Default: DefaultAllowedHosts.
	AllowedHosts []string
	// Client sends the push requests; it must not follow redirects (the Service refuses them in
	// a copy it makes). Default: a client of its own with the environment's proxy settings.
	Client *http.Client
	// Workers look subscriptions up. Default: 2.
	Workers int
	// QueueSize bounds the notifications waiting for a worker. Default: 4096.
	QueueSize int
	// SendersPerHost are the concurrent requests to one push service (one entry of
	// AllowedHosts). Default: 4.
	SendersPerHost int
	// HostQueueSize bounds the deliveries waiting for a push service's senders. Default: 1024.
	HostQueueSize int
	// RequestTimeout bounds one request to a push service. Default: 5 s.
	RequestTimeout time.Duration
	// MaxAttempts bounds the tries of one delivery. Default: 5.
	MaxAttempts int
	// RetryBase is the wait before the first retry; each further retry waits twice as long
	// (half of it random), up to RetryMax. Default: 2 s.
	RetryBase time.Duration
	// RetryMax caps the backoff; a push service asking (Retry-After) to wait longer than it is
	// given up on. Default: 10 min.
	RetryMax time.Duration
	// CoalesceWindow is the least time between two pushes of one thread to one user; 0 takes
	// the default, a negative value turns coalescing off. Default: 30 s.
	CoalesceWindow time.Duration
	// TTL is how long a push service keeps a push for a device that is offline. Default: 24 h.
	TTL time.Duration
	// Logger receives failures. Default: slog.Default().
	Logger *slog.Logger
	// Registerer takes the metrics. Default: prometheus.DefaultRegisterer.
	Registerer prometheus.Registerer
}

// recordSize is the size of every encrypted push body. Padding each payload to it hides the
// length of the excerpt from the push service; 2048 bytes stay under the limits of every push
// service (Firefox on Android refused 4096).
const recordSize = 2048

// maxPayload is the largest JSON payload one record of recordSize holds: the aes128gcm header
// (86 bytes with the 65-byte key), the padding delimiter and the 16-byte tag take the rest.
const maxPayload = recordSize - 86 - 1 - 16

// Service is a cg.Pusher that sends Web Push messages. Its workers run from New until Close.
type Service struct {
	store      cg.PushSubscriptionStore
	opts       Options
	publicKey  string // base64url, uncompressed point
	privateKey string // base64url, for the library
	subscriber string // Subject as the library takes it
	allowed    allowlist
	client     *http.Client
	logger     *slog.Logger
	metrics    *metrics

	jobs  chan job
	lanes []chan *delivery
	co    *coalescer

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	timers map[*time.Timer]struct{} // guarded by mu; retries waiting
	closed bool                     // guarded by mu

	observe func(event) // tests: told of every outcome
}

var _ cg.Pusher = (*Service)(nil)

// job is a notification for a user, waiting for a worker.
type job struct {
	user cg.UserID
	n    *cg.Notification
}

// delivery is a notification for one subscription, waiting for a sender of its lane.
type delivery struct {
	sub     *cg.PushSubscription
	payload []byte
	topic   string
	lane    int
	attempt int // the try under way or next, from 1
}

// New returns a Service that reads subscriptions from store, and starts its workers.
func New(store cg.PushSubscriptionStore, o Options) (*Service, error) {
	priv, err := ecdh.P256().NewPrivateKey(o.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("push: VAPID private key: %w", err)
	}
	subscriber := o.Subject
	switch {
	case strings.HasPrefix(o.Subject, "mailto:") && len(o.Subject) > len("mailto:"):
		// The library writes "mailto:" before any subject that is not https.
		subscriber = strings.TrimPrefix(o.Subject, "mailto:")
	case strings.HasPrefix(o.Subject, "https://") && len(o.Subject) > len("https://"):
	default:
		return nil, fmt.Errorf("push: VAPID subject %q: want a mailto: or https: URL", o.Subject)
	}
	if o.AllowedHosts == nil {
		o.AllowedHosts = DefaultAllowedHosts
	}
	var allowed allowlist
	for _, h := range o.AllowedHosts {
		h = strings.ToLower(strings.TrimSpace(h))
		if !checkHostPattern(h) {
			return nil, fmt.Errorf("push: allowed host %q: want a host name or *.domain, with an optional :port", h)
		}
		allowed = append(allowed, h)
	}
	if len(allowed) == 0 {
		return nil, errors.New("push: no allowed hosts")
	}
	setDefault(&o.Workers, 2)
	setDefault(&o.QueueSize, 4096)
	setDefault(&o.SendersPerHost, 4)
	setDefault(&o.HostQueueSize, 1024)
	setDefault(&o.MaxAttempts, 5)
	setDefault(&o.RequestTimeout, 5*time.Second)
	setDefault(&o.RetryBase, 2*time.Second)
	setDefault(&o.RetryMax, 10*time.Minute)
	setDefault(&o.CoalesceWindow, 30*time.Second)
	setDefault(&o.TTL, 24*time.Hour)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registerer == nil {
		o.Registerer = prometheus.DefaultRegisterer
	}
	client := &http.Client{}
	if o.Client != nil {
		*client = *o.Client
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = o.SendersPerHost
		client.Transport = t
	}
	// A redirect would send the request to a host the allowlist never saw.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{
		store:      store,
		opts:       o,
		publicKey:  base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
		privateKey: base64.RawURLEncoding.EncodeToString(o.PrivateKey),
		subscriber: subscriber,
		allowed:    allowed,
		client:     client,
		logger:     o.Logger,
		metrics:    newMetrics(o.Registerer),
		jobs:       make(chan job, o.QueueSize),
		lanes:      make([]chan *delivery, len(allowed)),
		ctx:        ctx,
		cancel:     cancel,
		timers:     make(map[*time.Timer]struct{}),
	}
	s.co = newCoalescer(o.CoalesceWindow, s.enqueue, func() {
		s.metrics.coalesced.Inc()
		s.event(event{Kind: evCoalesced})
	})
	for range o.Workers {
		s.wg.Add(1)
		go s.work()
	}
	for i := range s.lanes {
		s.lanes[i] = make(chan *delivery, o.HostQueueSize)
		for range o.SendersPerHost {
			s.wg.Add(1)
			go s.sendLoop(s.lanes[i])
		}
	}
	return s, nil
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// PublicKey returns the VAPID public key, base64url without padding: the applicationServerKey
// a browser subscribes with.
func (s *Service) PublicKey() string { return s.publicKey }

// Push queues a push of n to every subscription of user. It never blocks: past the coalescing
// window's first notification of a thread it keeps only the newest, and a full queue drops.
func (s *Service) Push(user cg.UserID, n *cg.Notification) {
	if s == nil || n == nil {
		return
	}
	s.co.offer(user, n)
}

// Close stops the workers, the senders and the retries, cancelling requests under way, and
// waits for them. What is queued is not sent. Closing twice, or a nil Service, does nothing.
func (s *Service) Close() {
	if s == nil {
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for t := range s.timers {
		t.Stop()
	}
	clear(s.timers)
	s.mu.Unlock()
	s.co.close()
	s.cancel()
	s.wg.Wait()
	s.client.CloseIdleConnections()
}

// enqueue hands a notification to the workers, or drops it when their queue is full.
func (s *Service) enqueue(j job) {
	if s.ctx.Err() != nil {
		return
	}
	select {
	case s.jobs <- j:
	default:
		s.drop()
	}
}

func (s *Service) drop() {
	s.metrics.dropped.Inc()
	s.event(event{Kind: evDropped})
}

// work looks up the subscriptions of each queued notification's user and hands a delivery for
// each to its lane.
func (s *Service) work() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case j := <-s.jobs:
			s.fanOut(j)
		}
	}
}

func (s *Service) fanOut(j job) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.RequestTimeout)
	subs, err := s.store.ListPushSubscriptions(ctx, j.user)
	cancel()
	if err != nil {
		if s.ctx.Err() == nil {
			s.logger.Warn("push: list subscriptions", "err", err)
			s.metrics.failed.Inc()
			s.event(event{Kind: evFailed})
		}
		return
	}
	if len(subs) == 0 {
		return
	}
	payload := encodePayload(j.n)
	topic := topicOf(j.n.ThreadID)
	now := time.Now()
	for _, sub := range subs {
		if sub.ExpiresAt != nil && sub.ExpiresAt.Before(now) {
			// The browser said it ends then: its push service would answer 410.
			s.remove(sub, 0)
			continue
		}
		u, err := url.Parse(sub.Endpoint)
		lane := -1
		if err == nil {
			lane = s.allowed.match(u)
		}
		if lane < 0 {
			// Stored under an earlier PUSH_ALLOWED_HOSTS: not sent while its host is not allowed.
			s.metrics.failed.Inc()
			s.event(event{Kind: evFailed, Endpoint: sub.Endpoint})
			continue
		}
		s.toLane(&delivery{sub: sub, payload: payload, topic: topic, lane: lane, attempt: 1})
	}
}

// toLane hands d to its lane's senders, or drops it when their queue is full.
func (s *Service) toLane(d *delivery) {
	if s.ctx.Err() != nil {
		return
	}
	select {
	case s.lanes[d.lane] <- d:
	default:
		s.drop()
	}
}

// sendLoop sends the deliveries of one lane.
func (s *Service) sendLoop(lane chan *delivery) {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case d := <-lane:
			s.send(d)
		}
	}
}

// after runs f after d on a timer that Close stops.
func (s *Service) after(d time.Duration, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		s.mu.Lock()
		_, live := s.timers[t]
		delete(s.timers, t)
		s.mu.Unlock()
		if live {
			f()
		}
	})
	s.timers[t] = struct{}{}
}

func (s *Service) event(e event) {
	if s.observe != nil {
		s.observe(e)
	}
}
