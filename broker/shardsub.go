package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// shardSubs keeps sharded subscriptions (SSUBSCRIBE) of any number of channels on one pub/sub
// connection per node: on a Redis Cluster, the master that serves each channel's slot; on a
// single server, that server. It subscribes channels, whatever they carry.
//
// go-redis's PubSub resends all its shard channels in one SSUBSCRIBE when it reconnects, which a
// cluster refuses once they lie in different slots (CROSSSLOT). So each command here names one
// channel, and a connection is never reconnected in place: one that fails is closed, and its
// channels are routed again (to the same node, or to the one serving their slot by then) on a
// fresh connection. A channel the node refuses (MOVED, ASK, CLUSTERDOWN…) or drops (its slot
// went to another node, which Redis announces with an unrequested SUNSUBSCRIBE) is routed again
// the same way, after the client has been asked to read the cluster's slots again.
//
// Lock order: mu, then whatever the events take; the events must not call back into shardSubs.
type shardSubs struct {
	route  func(ctx context.Context, channel string) (addr string, c shardClient, err error)
	reload func() // has the client read the cluster's slots again
	events shardEvents
	opts   RedisOptions

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{} // wakes the rerouter

	// lost counts the wanted channels whose confirmed subscription was lost and is not back.
	// Written under mu, read without it.
	lost atomic.Int64

	mu       sync.Mutex
	chans    map[string]*shardChan // guarded by mu: the channels wanted
	nodes    map[string]*shardNode // guarded by mu: the connections, by node address
	homeless map[string]struct{}   // guarded by mu: wanted channels waiting for a route
	failures int                   // guarded by mu: failures since the last confirmation; sets the backoff
}

// shardClient is what can open a pub/sub connection to one node.
type shardClient interface {
	SSubscribe(ctx context.Context, channels ...string) *redis.PubSub
}

// shardEvents are what shardSubs tells its owner. confirmed and lost are called with shardSubs's
// lock held, in the order things happened; resync too, and must not block.
type shardEvents struct {
	message   func(channel string, payload []byte)
	confirmed func(channel string) // Redis confirmed the channel's subscription
	lost      func(channel string) // a confirmed subscription ended without being asked to
	resync    func()               // every lost subscription is back: events may have been missed
}

// shardChan is the state of one wanted channel.
type shardChan struct {
	node      *shardNode // the connection it is (being) subscribed on; nil while homeless
	confirmed bool       // Redis confirmed it on node
	lost      bool       // it was confirmed once, then lost, and is not confirmed again yet
}

// sendState is what a connection has asked Redis about a channel.
type sendState uint8

const (
	subSent sendState = iota + 1
	subConfirmed
	unsubSent
)

// shardOp is a command written on a connection whose reply has not been read yet.
type shardOp struct {
	sub     bool // SSUBSCRIBE; false: SUNSUBSCRIBE
	channel string
}

// shardNode is one pub/sub connection to one node, from its dial to its end. It ends when it
// fails, when no channel is left on it, or when shardSubs closes.
type shardNode struct {
	addr     string
	client   shardClient
	kick     chan struct{} // wakes the writer
	dead     chan struct{} // closed by fail
	failOnce sync.Once
	err      error        // why it failed; written before dead is closed
	lastRead atomic.Int64 // unix nanoseconds of the last reply read

	want    map[string]struct{}  // guarded by shardSubs.mu: channels placed here
	dirty   map[string]struct{}  // guarded by shardSubs.mu: channels whose want changed since the writer looked
	sent    map[string]sendState // guarded by shardSubs.mu
	pending []shardOp            // guarded by shardSubs.mu: in the order written
	empty   bool                 // guarded by shardSubs.mu: ended because no channel was left
}

func (n *shardNode) wake() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

func (n *shardNode) fail(err error) {
	n.failOnce.Do(func() {
		n.err = err
		close(n.dead)
	})
}

// newShardSubs returns the subscriptions of client; close stops them.
func newShardSubs(client redis.UniversalClient, opts RedisOptions, events shardEvents) *shardSubs {
	ctx, cancel := context.WithCancel(context.Background())
	s := &shardSubs{
		events:   events,
		opts:     opts,
		ctx:      ctx,
		cancel:   cancel,
		kick:     make(chan struct{}, 1),
		chans:    make(map[string]*shardChan),
		nodes:    make(map[string]*shardNode),
		homeless: make(map[string]struct{}),
	}
	if cc, ok := client.(*redis.ClusterClient); ok {
		s.route = func(ctx context.Context, channel string) (string, shardClient, error) {
			// A shard channel lives in the slot its name hashes to, as a key would.
			node, err := cc.MasterForKey(ctx, channel)
			if err != nil {
				return "", nil, err
			}
			return node.Options().Addr, node, nil
		}
		s.reload = func() { cc.ReloadState(context.Background()) }
	} else {
		s.route = func(context.Context, string) (string, shardClient, error) { return "", client, nil }
		s.reload = func() {}
	}
	s.wg.Add(1)
	go s.reroute()
	return s
}

// subscribe asks for channel's subscription; events.confirmed tells when Redis confirmed it.
// Subscriptions are not counted: a channel subscribed twice is subscribed once.
func (s *shardSubs) subscribe(ctx context.Context, channel string) {
	s.mu.Lock()
	if _, ok := s.chans[channel]; ok {
		s.mu.Unlock()
		return
	}
	s.chans[channel] = &shardChan{}
	s.homeless[channel] = struct{}{}
	s.mu.Unlock()
	s.place(ctx, []string{channel})
}

// unsubscribe ends channel's subscription.
func (s *shardSubs) unsubscribe(channel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.chans[channel]
	if c == nil {
		return
	}
	delete(s.chans, channel)
	delete(s.homeless, channel)
	if c.lost {
		s.lost.Add(-1)
	}
	if n := c.node; n != nil {
		delete(n.want, channel)
		n.dirty[channel] = struct{}{}
		n.wake()
	}
}

// healthy reports whether every subscription that was confirmed still is.
func (s *shardSubs) healthy() bool { return s.lost.Load() == 0 }

// close ends every connection and waits for their goroutines.
func (s *shardSubs) close() {
	s.cancel()
	s.wg.Wait()
}

// place routes channels and puts each that is still homeless on its node's connection. A
// channel that cannot be routed stays homeless, for the rerouter.
func (s *shardSubs) place(ctx context.Context, channels []string) {
	type routed struct {
		addr   string
		client shardClient
	}
	routes := make(map[string]routed, len(channels))
	var failed error
	for _, ch := range channels {
		addr, c, err := s.route(ctx, ch)
		if err != nil {
			failed = err
			continue
		}
		routes[ch] = routed{addr, c}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch, r := range routes {
		c := s.chans[ch]
		if c == nil || c.node != nil {
			continue // unsubscribed, or placed meanwhile
		}
		n := s.nodes[r.addr]
		if n == nil {
			n = &shardNode{
				addr:   r.addr,
				client: r.client,
				kick:   make(chan struct{}, 1),
				dead:   make(chan struct{}),
				want:   make(map[string]struct{}),
				dirty:  make(map[string]struct{}),
				sent:   make(map[string]sendState),
			}
			s.nodes[r.addr] = n
			s.wg.Add(1)
			go s.run(n)
		}
		n.want[ch] = struct{}{}
		n.dirty[ch] = struct{}{}
		c.node = n
		delete(s.homeless, ch)
		if n.sent[ch] == subConfirmed {
			// Unsubscribed and subscribed again before the connection sent the unsubscription:
			// it never will, and Redis will not confirm again what it has.
			s.confirm(c, ch)
		}
		n.wake()
	}
	if failed != nil {
		s.failures++
		s.opts.Logger.Debug("redis shard channel not routed", "err", failed)
		s.reload()
		s.wakeRerouter()
	}
}

func (s *shardSubs) wakeRerouter() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// reroute places homeless channels again, with jittered backoff while it keeps failing.
func (s *shardSubs) reroute() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
		}
		for {
			s.mu.Lock()
			failures := s.failures
			homeless := len(s.homeless)
			s.mu.Unlock()
			if homeless == 0 {
				break
			}
			backoff := min(s.opts.MaxBackoff, 25*time.Millisecond<<min(failures, 10))
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(rand.N(backoff) + time.Millisecond):
			}
			s.mu.Lock()
			channels := make([]string, 0, len(s.homeless))
			for ch := range s.homeless {
				channels = append(channels, ch)
			}
			s.mu.Unlock()
			s.place(s.ctx, channels)
		}
	}
}

// run owns one connection: it writes the subscriptions its channels need and pings, while a
// reader goroutine reads the replies, until the connection fails or has no channel left.
func (s *shardSubs) run(n *shardNode) {
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	ps := n.client.SSubscribe(ctx) // no channel: go-redis dials on the first command
	n.lastRead.Store(time.Now().UnixNano())
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		s.read(ctx, n, ps)
	}()
	t := time.NewTicker(s.opts.HealthInterval)
	for !s.write(ctx, n, ps) {
		select {
		case <-ctx.Done():
			n.fail(ctx.Err())
		case <-n.dead:
		case <-n.kick:
		case <-t.C:
			// Any reply proves the connection alive; a PING asks for one.
			if time.Since(time.Unix(0, n.lastRead.Load())) > 5*s.opts.HealthInterval {
				n.fail(errors.New("no reply to PING"))
				break
			}
			pctx, pcancel := context.WithTimeout(ctx, s.opts.HealthInterval)
			if err := ps.Ping(pctx); err != nil {
				n.fail(err)
			}
			pcancel()
		}
	}
	t.Stop()
	_ = ps.Close() // ends the reader's Receive
	cancel()
	<-readerDone
	s.detach(n)
}

// write sends what changed on n since the last call. It reports whether n is done: failed, or
// left without channels (then taken out of the nodes at once, so that a new subscription of
// its node opens a new connection).
func (s *shardSubs) write(ctx context.Context, n *shardNode, ps *redis.PubSub) (done bool) {
	select {
	case <-n.dead:
		return true
	default:
	}
	s.mu.Lock()
	if len(n.want) == 0 {
		n.empty = true
		if s.nodes[n.addr] == n {
			delete(s.nodes, n.addr)
		}
		s.mu.Unlock()
		n.fail(errors.New("no channel left"))
		return true
	}
	var ops []shardOp
	for ch := range n.dirty {
		_, want := n.want[ch]
		st := n.sent[ch]
		subscribed := st == subSent || st == subConfirmed
		switch {
		case want && !subscribed:
			n.sent[ch] = subSent
			ops = append(ops, shardOp{sub: true, channel: ch})
		case !want && subscribed:
			n.sent[ch] = unsubSent
			ops = append(ops, shardOp{channel: ch})
		}
	}
	clear(n.dirty)
	// Recorded before it is written, so that the reader finds it when the reply comes.
	n.pending = append(n.pending, ops...)
	s.mu.Unlock()
	for _, op := range ops {
		var err error
		if op.sub {
			err = ps.SSubscribe(ctx, op.channel)
		} else {
			err = ps.SUnsubscribe(ctx, op.channel)
		}
		if err != nil {
			n.fail(err)
			return true
		}
	}
	return false
}

// read reads n's replies and messages until the connection fails or closes.
func (s *shardSubs) read(ctx context.Context, n *shardNode, ps *redis.PubSub) {
	for {
		msg, err := ps.Receive(ctx)
		if err != nil {
			var refusal redis.Error
			if errors.As(err, &refusal) && ctx.Err() == nil {
				n.lastRead.Store(time.Now().UnixNano())
				if s.refused(n, err) {
					continue
				}
				err = fmt.Errorf("reply to no command: %w", err)
			}
			n.fail(err)
			return
		}
		n.lastRead.Store(time.Now().UnixNano())
		switch m := msg.(type) {
		case *redis.Subscription:
			if !s.replied(n, m.Kind, m.Channel) {
				n.fail(fmt.Errorf("unexpected %s of %q", m.Kind, m.Channel))
				return
			}
		case *redis.Message:
			s.events.message(m.Channel, []byte(m.Payload))
		}
	}
}

// replied handles a subscription reply on n; false means it answers no command written, and
// the connection can no longer be trusted.
func (s *shardSubs) replied(n *shardNode, kind, channel string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	var head *shardOp
	if len(n.pending) > 0 {
		head = &n.pending[0]
	}
	switch {
	case kind == "ssubscribe":
		if head == nil || !head.sub || head.channel != channel {
			return false
		}
		n.pending = n.pending[1:]
		if n.sent[channel] != subSent {
			return true // unsubscribed since
		}
		n.sent[channel] = subConfirmed
		s.failures = 0
		if c := s.chans[channel]; c != nil && c.node == n && !c.confirmed {
			s.confirm(c, channel)
		}
	case kind == "sunsubscribe" && head != nil && !head.sub && head.channel == channel:
		n.pending = n.pending[1:]
		if n.sent[channel] == unsubSent {
			delete(n.sent, channel)
		}
	case kind == "sunsubscribe" && n.sent[channel] == subConfirmed:
		// Unasked: the node no longer serves the channel's slot.
		delete(n.sent, channel)
		s.opts.Logger.Info("redis shard channel moved", "node", n.addr, "channel", channel)
		s.displace(n, channel)
	default:
		return false
	}
	return true
}

// refused handles an error reply on n, which answers the oldest command written; false means
// no command was waiting.
func (s *shardSubs) refused(n *shardNode, err error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(n.pending) == 0 {
		return false
	}
	op := n.pending[0]
	n.pending = n.pending[1:]
	if !op.sub {
		if n.sent[op.channel] == unsubSent {
			delete(n.sent, op.channel)
		}
		return true
	}
	if n.sent[op.channel] == subSent {
		delete(n.sent, op.channel)
	}
	s.opts.Logger.Debug("redis refused a shard subscription", "node", n.addr, "channel", op.channel, "err", err)
	s.displace(n, op.channel)
	return true
}

// displace takes channel off n, which does not serve it, and routes it again. Called with mu held.
func (s *shardSubs) displace(n *shardNode, channel string) {
	c := s.chans[channel]
	if c == nil || c.node != n {
		return
	}
	delete(n.want, channel)
	c.node = nil
	s.unconfirm(c, channel)
	s.homeless[channel] = struct{}{}
	s.failures++
	s.reload()
	s.wakeRerouter()
}

// detach takes the channels of n, whose connection ended, and routes them again.
func (s *shardSubs) detach(n *shardNode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nodes[n.addr] == n {
		delete(s.nodes, n.addr)
	}
	if n.empty || s.ctx.Err() != nil {
		return
	}
	lost := 0
	for ch := range n.want {
		c := s.chans[ch]
		if c == nil || c.node != n {
			continue
		}
		if c.confirmed {
			lost++
		}
		c.node = nil
		s.unconfirm(c, ch)
		s.homeless[ch] = struct{}{}
	}
	if lost > 0 {
		s.opts.Logger.Warn("redis shard subscription lost", "node", n.addr, "channels", lost, "err", n.err)
	} else {
		s.opts.Logger.Debug("redis shard connection failed", "node", n.addr, "err", n.err)
	}
	s.failures++
	s.reload()
	s.wakeRerouter()
}

// confirm marks c confirmed. Called with mu held.
func (s *shardSubs) confirm(c *shardChan, channel string) {
	c.confirmed = true
	s.events.confirmed(channel)
	if !c.lost {
		return
	}
	c.lost = false
	if s.lost.Add(-1) == 0 {
		s.opts.Logger.Info("redis shard subscriptions restored")
		s.events.resync()
	}
}

// unconfirm marks c no longer confirmed. Called with mu held.
func (s *shardSubs) unconfirm(c *shardChan, channel string) {
	if !c.confirmed {
		return
	}
	c.confirmed = false
	s.events.lost(channel)
	if !c.lost {
		c.lost = true
		s.lost.Add(1)
	}
}
