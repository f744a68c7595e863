package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	cg "github.com/commongrounds/commongrounds"
)

// ErrUnavailable is returned by Publish while Redis is unreachable. The event was still handed
// to this instance's own subscribers; other instances repair from Postgres.
var ErrUnavailable = errors.New("redis unavailable")

// RedisOptions configure a Redis broker.
type RedisOptions struct {
	// Prefix starts every channel and key name, so that deployments (and tests) sharing a Redis
	// do not hear each other. Default: "cg:".
	Prefix string
	// Sharded uses sharded pub/sub (SSUBSCRIBE/SPUBLISH) for room channels, for Redis Cluster:
	// each room's messages then travel only through the shard that owns the room's channel.
	// The rooms' subscriptions share one connection per master (one in all on a single server).
	Sharded bool
	// SubscribeTimeout bounds the wait for Redis to confirm a subscription. Default: 2 s.
	SubscribeTimeout time.Duration
	// HealthInterval is how often the subscription connection is pinged. Default: 1 s.
	HealthInterval time.Duration
	// MaxBackoff bounds the delay between reconnect attempts (full jitter). Default: 1 s.
	MaxBackoff time.Duration
	Logger     *slog.Logger
}

// Redis is a broker over Redis pub/sub. Room events go to one channel per room, control events
// to one channel for all. A lost connection is retried with jittered backoff; when the
// subscriptions are back, the handler is told to resync, since events may have been missed.
type Redis struct {
	client redis.UniversalClient
	opts   RedisOptions

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	up     atomic.Bool

	handler atomic.Pointer[cg.BrokerHandler]

	// subMu serialises subscription changes, so that the commands for one room reach Redis in
	// the order of the calls. It is held while a command is written, never by the receive loops.
	subMu  sync.Mutex
	refs   map[string]int // guarded by subMu: subscriptions of each channel not yet undone
	shards *shardSubs     // sharded mode: the rooms' channels
	main   *subscription  // control channel, and rooms when not sharded

	mu        sync.Mutex
	local     map[cg.ClassID]struct{}    // guarded by mu: rooms subscribed here
	waiters   map[string][]chan struct{} // guarded by mu: waiting for a subscription's confirmation
	confirmed map[string]bool            // guarded by mu: channels Redis confirmed

	users userSubs // the users subscribed here (users.go)
}

var _ cg.Broker = (*Redis)(nil)

// subscription is one pub/sub connection with its receive loop.
type subscription struct {
	ps     *redis.PubSub
	cancel context.CancelFunc
	failed atomic.Bool // the receive loop lost the connection and has not had it back
}

// NewRedis returns a broker on client and starts its control subscription. Close stops it.
func NewRedis(client redis.UniversalClient, opts RedisOptions) *Redis {
	if opts.Prefix == "" {
		opts.Prefix = "cg:"
	}
	if opts.SubscribeTimeout == 0 {
		opts.SubscribeTimeout = 2 * time.Second
	}
	if opts.HealthInterval == 0 {
		opts.HealthInterval = time.Second
	}
	if opts.MaxBackoff == 0 {
		opts.MaxBackoff = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Redis{
		client:    client,
		opts:      opts,
		ctx:       ctx,
		cancel:    cancel,
		local:     make(map[cg.ClassID]struct{}),
		refs:      make(map[string]int),
		confirmed: make(map[string]bool),
		waiters:   make(map[string][]chan struct{}),
	}
	b.up.Store(true)
	if opts.Sharded {
		b.shards = newShardSubs(client, opts, shardEvents{
			message:   b.dispatch,
			confirmed: b.confirm,
			lost: func(channel string) {
				b.mu.Lock()
				delete(b.confirmed, channel)
				b.mu.Unlock()
			},
			resync: b.resync,
		})
	}
	b.main = b.start(b.controlChannel())
	return b
}

func (b *Redis) controlChannel() string          { return b.opts.Prefix + "control" }
func (b *Redis) roomChannel(r cg.ClassID) string { return b.opts.Prefix + "room:" + string(r) }

// Up reports whether the subscriptions are connected.
func (b *Redis) Up() bool { return b.up.Load() && (b.shards == nil || b.shards.healthy()) }

// start opens a pub/sub connection subscribed to channel and runs its receive loop and pinger.
// go-redis remembers the channel and subscribes it again on every reconnection, even when the
// first send fails.
func (b *Redis) start(channel string) *subscription {
	ctx, cancel := context.WithCancel(b.ctx)
	s := &subscription{ps: b.client.Subscribe(ctx), cancel: cancel}
	_ = s.ps.Subscribe(ctx, channel)
	b.wg.Add(2)
	go b.receive(ctx, s)
	go b.ping(ctx, s)
	return s
}

// receive reads the connection until ctx ends. After a failure it backs off with full jitter
// and reads again, which makes go-redis reconnect and resubscribe; the first confirmation after
// that means events may have been lost meanwhile, so the handler is told to resync.
func (b *Redis) receive(ctx context.Context, s *subscription) {
	defer b.wg.Done()
	failed := false
	attempt := 0
	for {
		msg, err := s.ps.Receive(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			reloadTopology(b.client, err)
			if !failed {
				b.opts.Logger.Warn("redis subscription lost", "err", err)
			}
			failed = true
			s.failed.Store(true)
			b.up.Store(false)
			b.mu.Lock()
			// Until Redis confirms them again. The shard channels are on connections of their own.
			if b.shards == nil {
				clear(b.confirmed)
			} else {
				delete(b.confirmed, b.controlChannel())
			}
			b.mu.Unlock()
			attempt++
			backoff := min(b.opts.MaxBackoff, 50*time.Millisecond<<min(attempt, 10))
			select {
			case <-ctx.Done():
				return
			case <-time.After(rand.N(backoff) + time.Millisecond):
			}
			continue
		}
		attempt = 0
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" || m.Kind == "ssubscribe" {
				b.confirm(m.Channel)
				if failed {
					failed = false
					s.failed.Store(false)
					b.up.Store(true)
					b.opts.Logger.Info("redis subscription restored")
					b.resync()
				}
			}
		case *redis.Message:
			b.dispatch(m.Channel, []byte(m.Payload))
		}
	}
}

// ping checks the connection, so that a silently dead one fails the receive loop.
func (b *Redis) ping(ctx context.Context, s *subscription) {
	defer b.wg.Done()
	t := time.NewTicker(b.opts.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, b.opts.HealthInterval)
			err := s.ps.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				b.up.Store(false)
			} else if err == nil && !s.failed.Load() {
				b.up.Store(true)
			}
		}
	}
}

// resync tells the handler that events may have been missed, off the caller's goroutine: the
// resync reads Postgres.
func (b *Redis) resync() {
	if h := b.getHandler(); h != nil {
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			h.HandleResync()
		}()
	}
}

func (b *Redis) getHandler() cg.BrokerHandler {
	if h := b.handler.Load(); h != nil {
		return *h
	}
	return nil
}

func (b *Redis) dispatch(channel string, payload []byte) {
	h := b.getHandler()
	if h == nil {
		return
	}
	if channel == b.controlChannel() {
		h.HandleControl(payload)
		return
	}
	if room, ok := strings.CutPrefix(channel, b.opts.Prefix+"room:"); ok {
		h.HandleRoomEvent(cg.ClassID(room), payload)
		return
	}
	b.dispatchUser(h, channel, payload)
}

func (b *Redis) confirm(channel string) {
	b.mu.Lock()
	b.confirmed[channel] = true
	ws := b.waiters[channel]
	delete(b.waiters, channel)
	b.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
}

// SetHandler sets the receiver of events.
func (b *Redis) SetHandler(h cg.BrokerHandler) { b.handler.Store(&h) }

// Subscribe subscribes the room's channel and waits until Redis confirms it, so that an
// event published after Subscribe returns is not missed. Subscriptions are counted: only the
// first Subscribe of a room reaches Redis, and only the Unsubscribe that undoes the last one.
// When Redis does not confirm in time it returns an error; the subscription stays requested and
// takes effect when Redis is back.
func (b *Redis) Subscribe(ctx context.Context, room cg.ClassID) error {
	return b.subscribeChannel(ctx, b.roomChannel(room), func() { b.local[room] = struct{}{} }, true)
}

// Unsubscribe undoes one Subscribe; the last one stops receiving the room's events.
func (b *Redis) Unsubscribe(ctx context.Context, room cg.ClassID) error {
	return b.unsubscribeChannel(ctx, b.roomChannel(room), func() { delete(b.local, room) })
}

// subscribeChannel counts one subscription of ch; the first is sent to Redis (through the
// shard connections, or the main one). It then waits until Redis confirms ch, unless Redis is
// down and waitWhileDown is false. local records the subscriber under b.mu.
func (b *Redis) subscribeChannel(ctx context.Context, ch string, local func(), waitWhileDown bool) error {
	wait := make(chan struct{})
	b.subMu.Lock()
	b.refs[ch]++
	first := b.refs[ch] == 1
	b.mu.Lock()
	local()
	if first || !b.confirmed[ch] {
		b.waiters[ch] = append(b.waiters[ch], wait)
	} else {
		close(wait) // subscribed and confirmed for an earlier caller
	}
	b.mu.Unlock()
	var err error
	switch {
	case !first:
	case b.shards != nil:
		b.shards.subscribe(ctx, ch)
	default:
		err = b.main.ps.Subscribe(ctx, ch)
	}
	b.subMu.Unlock()
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", ch, err)
	}
	if !waitWhileDown && !b.Up() {
		// Requested: it takes effect when Redis is back.
		return fmt.Errorf("subscribe %s: %w", ch, ErrUnavailable)
	}
	t := time.NewTimer(b.opts.SubscribeTimeout)
	defer t.Stop()
	select {
	case <-wait:
		return nil
	case <-t.C:
		return fmt.Errorf("subscribe %s: %w", ch, ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unsubscribeChannel undoes one subscribeChannel of ch; the last one leaves the channel in
// Redis. local forgets the subscriber under b.mu.
func (b *Redis) unsubscribeChannel(ctx context.Context, ch string, local func()) error {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	if b.refs[ch] == 0 {
		return nil
	}
	if b.refs[ch]--; b.refs[ch] > 0 {
		return nil
	}
	delete(b.refs, ch)
	b.mu.Lock()
	local()
	delete(b.confirmed, ch)
	b.mu.Unlock()
	if b.shards != nil {
		b.shards.unsubscribe(ch)
		return nil
	}
	return b.main.ps.Unsubscribe(ctx, ch)
}

// Publish sends a room event. While Redis is unreachable the event is handed to this
// instance's own subscribers directly and ErrUnavailable returned.
func (b *Redis) Publish(ctx context.Context, room cg.ClassID, payload []byte) error {
	var err error
	if b.Up() {
		if b.opts.Sharded {
			err = b.client.SPublish(ctx, b.roomChannel(room), payload).Err()
		} else {
			err = b.client.Publish(ctx, b.roomChannel(room), payload).Err()
		}
		if err == nil {
			return nil
		}
		reloadTopology(b.client, err)
	} else {
		err = ErrUnavailable
	}
	b.mu.Lock()
	_, local := b.local[room]
	b.mu.Unlock()
	if h := b.getHandler(); local && h != nil {
		h.HandleRoomEvent(room, payload)
	}
	return fmt.Errorf("publish: %w", err)
}

// PublishControl sends a control event to every instance.
func (b *Redis) PublishControl(ctx context.Context, payload []byte) error {
	if err := b.client.Publish(ctx, b.controlChannel(), payload).Err(); err != nil {
		reloadTopology(b.client, err)
		return fmt.Errorf("publish control: %w", err)
	}
	return nil
}

// Close stops every subscription and waits for their goroutines.
func (b *Redis) Close() error {
	b.cancel()
	if b.shards != nil {
		b.shards.close() // before the wait: it may start a resync until then
	}
	err := b.main.ps.Close()
	b.wg.Wait()
	return err
}
