package broker

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	cg "github.com/commongrounds/commongrounds"
)

// RedisSockets counts each user's sockets across instances: a sorted set per user whose members
// are socket ids scored by an expiry time. Instances refresh their sockets' entries; those of a
// crashed instance lapse after TTL.
type RedisSockets struct {
	client redis.UniversalClient
	prefix string
	ttl    time.Duration
	now    func() time.Time

	// Releases that arrive while one is under way go together, in one pipelined round trip:
	// when thousands of sockets close at once, one round trip each timed out by the thousand.
	mu       sync.Mutex
	pending  []release     // guarded by mu: releases for the next round
	next     *releaseRound // guarded by mu: the round pending goes in
	flushing bool          // guarded by mu: a caller is sending rounds
}

type release struct {
	key, id string
}

// releaseRound is one round trip of releases; err is set before done closes.
type releaseRound struct {
	done chan struct{}
	err  error
}

// NewRedisSockets returns a socket counter whose entries expire after ttl unless refreshed.
func NewRedisSockets(client redis.UniversalClient, prefix string, ttl time.Duration) *RedisSockets {
	if prefix == "" {
		prefix = "cg:"
	}
	return &RedisSockets{client: client, prefix: prefix, ttl: ttl, now: time.Now, next: newReleaseRound()}
}

func (s *RedisSockets) key(user cg.UserID) string { return s.prefix + "sockets:{" + string(user) + "}" }

// acquireScript drops lapsed entries, then adds the socket if the user holds fewer than the
// maximum: atomically, so that two instances cannot both admit the last socket.
var acquireScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1`)

// Acquire records the socket id of user unless the user already holds max sockets.
func (s *RedisSockets) Acquire(ctx context.Context, user cg.UserID, id string, max int) (bool, error) {
	now := s.now()
	n, err := acquireScript.Run(ctx, s.client, []string{s.key(user)},
		now.UnixMilli(), now.Add(s.ttl).UnixMilli(), id, max, (2 * s.ttl).Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("acquire socket: %w", err)
	}
	return n == 1, nil
}

func newReleaseRound() *releaseRound { return &releaseRound{done: make(chan struct{})} }

// releaseTimeout bounds one round of releases, as one release was bounded before they went
// together: an unresponsive Redis holds the caller sending the rounds up for a second a round.
const releaseTimeout = time.Second

// Release forgets the socket id of user. Releases that arrive while a round is under way go
// in the next round, all together; the caller that finds none under way sends the rounds until
// no release is left. A caller whose ctx ends stops waiting; its release still goes.
func (s *RedisSockets) Release(ctx context.Context, user cg.UserID, id string) error {
	s.mu.Lock()
	s.pending = append(s.pending, release{key: s.key(user), id: id})
	round := s.next
	lead := !s.flushing
	s.flushing = true
	s.mu.Unlock()
	if lead {
		s.flush()
	}
	select {
	case <-round.done:
		return round.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush sends rounds of releases until none is pending.
func (s *RedisSockets) flush() {
	for {
		s.mu.Lock()
		batch, round := s.pending, s.next
		if len(batch) == 0 {
			s.flushing = false
			s.mu.Unlock()
			return
		}
		s.pending, s.next = nil, newReleaseRound()
		s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		pipe := s.client.Pipeline()
		for _, r := range batch {
			pipe.ZRem(ctx, r.key, r.id)
		}
		_, err := pipe.Exec(ctx)
		cancel()
		if err != nil {
			round.err = fmt.Errorf("release sockets: %w", err)
		}
		close(round.done)
	}
}

// ReleaseAll forgets many sockets at once, in one round trip.
func (s *RedisSockets) ReleaseAll(ctx context.Context, sockets map[cg.UserID][]string) error {
	if len(sockets) == 0 {
		return nil
	}
	pipe := s.client.Pipeline()
	for user, ids := range sockets {
		members := make([]any, len(ids))
		for i, id := range ids {
			members[i] = id
		}
		pipe.ZRem(ctx, s.key(user), members...)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("release sockets: %w", err)
	}
	return nil
}

// RefreshInterval is how often Refresh must run for no entry to lapse: a third of the lifetime,
// so that two missed refreshes lapse none.
func (s *RedisSockets) RefreshInterval() time.Duration { return s.ttl / 3 }

// Refresh extends the entries of the sockets still open here.
func (s *RedisSockets) Refresh(ctx context.Context, sockets map[cg.UserID][]string) error {
	if len(sockets) == 0 {
		return nil
	}
	expiry := float64(s.now().Add(s.ttl).UnixMilli())
	pipe := s.client.Pipeline()
	for user, ids := range sockets {
		zs := make([]redis.Z, len(ids))
		for i, id := range ids {
			zs[i] = redis.Z{Score: expiry, Member: id}
		}
		pipe.ZAdd(ctx, s.key(user), zs...)
		pipe.PExpire(ctx, s.key(user), 2*s.ttl)
	}
	_, err := pipe.Exec(ctx)
	return err
}
