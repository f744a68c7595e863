package broker

import (
	"context"
	"fmt"
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

	// Acquires and releases that arrive while one round trip of theirs is under way go together
	// in the next, one pipeline: sockets open and close by the thousand at once (a restart, a
	// network failure).
	acquires gather[*acquireCall]
	releases gather[release]
}

type acquireCall struct {
	key, id string
	max     int
	ok      bool  // set by the round
	err     error // set by the round
}

type release struct {
	key, id string
}

// NewRedisSockets returns a socket counter whose entries expire after ttl unless refreshed.
func NewRedisSockets(client redis.UniversalClient, prefix string, ttl time.Duration) *RedisSockets {
	if prefix == "" {
		prefix = "cg:"
	}
	s := &RedisSockets{client: client, prefix: prefix, ttl: ttl, now: time.Now}
	s.acquires.send = s.sendAcquires
	s.releases.send = s.sendReleases
	return s
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

// Acquire records the socket id of user unless the user already holds max sockets. Acquires
// that arrive together go in one round trip. Acquire waits for its round even after ctx ends
// (a round is bounded by a second), so that the socket's release, which goes in a round of its
// own, cannot reach Redis before it; unless the round timed out, when Redis may still run the
// acquire later and the entry stays until it lapses.
func (s *RedisSockets) Acquire(ctx context.Context, user cg.UserID, id string, max int) (bool, error) {
	c := &acquireCall{key: s.key(user), id: id, max: max}
	if err := s.acquires.do(context.WithoutCancel(ctx), c); err != nil {
		return false, fmt.Errorf("acquire socket: %w", err)
	}
	if c.err != nil {
		return false, fmt.Errorf("acquire socket: %w", c.err)
	}
	return c.ok, nil
}

// sendAcquires runs the acquire script once per call, in one pipeline. When Redis has lost the
// script (it restarted), the calls refused for that run again once it is loaded.
func (s *RedisSockets) sendAcquires(ctx context.Context, calls []*acquireCall) error {
	now := s.now()
	run := func(calls []*acquireCall) []*redis.Cmd {
		pipe := s.client.Pipeline()
		cmds := make([]*redis.Cmd, len(calls))
		for i, c := range calls {
			cmds[i] = acquireScript.EvalSha(ctx, pipe, []string{c.key},
				now.UnixMilli(), now.Add(s.ttl).UnixMilli(), c.id, c.max, (2 * s.ttl).Milliseconds())
		}
		_, _ = pipe.Exec(ctx) // each command carries its own error
		return cmds
	}
	var again []*acquireCall
	for i, cmd := range run(calls) {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			again = append(again, calls[i])
			continue
		}
		n, err := cmd.Int()
		calls[i].ok, calls[i].err = n == 1, err
		reloadTopology(s.client, err)
	}
	if len(again) == 0 {
		return nil
	}
	if err := acquireScript.Load(ctx, s.client).Err(); err != nil {
		return err
	}
	for i, cmd := range run(again) {
		n, err := cmd.Int()
		again[i].ok, again[i].err = n == 1, err
	}
	return nil
}

// Release forgets the socket id of user. Releases that arrive together go in one round trip. A
// caller whose ctx ends stops waiting; its release still goes.
func (s *RedisSockets) Release(ctx context.Context, user cg.UserID, id string) error {
	if err := s.releases.do(ctx, release{key: s.key(user), id: id}); err != nil {
		return fmt.Errorf("release socket: %w", err)
	}
	return nil
}

func (s *RedisSockets) sendReleases(ctx context.Context, batch []release) error {
	pipe := s.client.Pipeline()
	for _, r := range batch {
		pipe.ZRem(ctx, r.key, r.id)
	}
	_, err := pipe.Exec(ctx)
	reloadTopology(s.client, err)
	return err
}

// Flush waits until the releases made so far have been sent, or ctx ends.
func (s *RedisSockets) Flush(ctx context.Context) error {
	if err := s.releases.wait(ctx); err != nil {
		return fmt.Errorf("release sockets: %w", err)
	}
	return nil
}

// RefreshInterval is how often Refresh must run for no entry to lapse: a third of the lifetime,
// so that two missed refreshes lapse none.
func (s *RedisSockets) RefreshInterval() time.Duration { return s.ttl / 3 }

// Refresh extends the entries of the sockets still open here. It never adds one: a socket
// that closed after the caller listed it may have been released already, and adding it back
// would count it until it lapsed. (After Redis has lost its data, the sockets open then are
// not counted until they reconnect: the limit is lenient for a while rather than wrong.)
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
		pipe.ZAddXX(ctx, s.key(user), zs...)
		pipe.PExpire(ctx, s.key(user), 2*s.ttl)
	}
	_, err := pipe.Exec(ctx)
	reloadTopology(s.client, err)
	return err
}
