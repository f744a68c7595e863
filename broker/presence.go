package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	cg "github.com/commongrounds/commongrounds"
)

// RedisPresence counts the distinct users online in each room across instances. Each instance
// records its local users of a room in a sorted set scored by an expiry time; the users of an
// instance that stops refreshing (it crashed) drop out after TTL.
//
// A sync sends what changed since the last one and re-scores every entry only a few times per
// TTL; Redis counts each room's users and answers with the count alone. Sending and reading
// back every entry of every room each second was, with 10,000 idle sockets in rooms of 1,000,
// close to half of an idle server's CPU time.
type RedisPresence struct {
	client   redis.UniversalClient
	prefix   string
	instance string
	ttl      time.Duration
	now      func() time.Time

	// Owned by the caller of Sync (one goroutine): what Redis holds of this instance, as far as
	// the last successful sync knows, and when every entry was last re-scored.
	prev     map[cg.ClassID]map[cg.UserID]struct{}
	lastFull time.Time
}

// NewRedisPresence returns a presence store for the instance named instance (unique among the
// running instances), whose entries expire after ttl unless refreshed.
func NewRedisPresence(client redis.UniversalClient, prefix, instance string, ttl time.Duration) *RedisPresence {
	if prefix == "" {
		prefix = "cg:"
	}
	return &RedisPresence{client: client, prefix: prefix, instance: instance, ttl: ttl, now: time.Now,
		prev: make(map[cg.ClassID]map[cg.UserID]struct{})}
}

func (p *RedisPresence) key(room cg.ClassID) string {
	return p.prefix + "presence:{" + string(room) + "}"
}

// member is a user's entry in a room's set: the user, then the instance.
func (p *RedisPresence) member(u cg.UserID) string { return string(u) + "|" + p.instance }

// countScript drops a room's lapsed entries, keeps the set from expiring while it is synced,
// and returns the number of distinct users among the rest (a user with sockets on two
// instances has two entries).
var countScript = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local seen, n = {}, 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local user = string.match(m, '^[^|]*')
  if not seen[user] then
    seen[user] = true
    n = n + 1
  end
end
return n`)

// Sync records the local users of each room (rooms missing from local have none here any more)
// and returns the number of distinct users online in each room of local, across instances.
// It is called from one goroutine at a time.
func (p *RedisPresence) Sync(ctx context.Context, local map[cg.ClassID][]cg.UserID) (map[cg.ClassID]int, error) {
	now := p.now()
	full := now.Sub(p.lastFull) >= p.ttl/3
	next := make(map[cg.ClassID]map[cg.UserID]struct{}, len(local))
	run := func(pipe redis.Pipeliner) map[cg.ClassID]*redis.Cmd {
		expiry := float64(now.Add(p.ttl).UnixMilli())
		counts := make(map[cg.ClassID]*redis.Cmd, len(local))
		for room, users := range local {
			key := p.key(room)
			before := p.prev[room]
			cur := make(map[cg.UserID]struct{}, len(users))
			var add []redis.Z
			for _, u := range users {
				cur[u] = struct{}{}
				if _, had := before[u]; full || !had {
					add = append(add, redis.Z{Score: expiry, Member: p.member(u)})
				}
			}
			var gone []any
			for u := range before {
				if _, ok := cur[u]; !ok {
					gone = append(gone, p.member(u))
				}
			}
			if len(gone) > 0 {
				pipe.ZRem(ctx, key, gone...)
			}
			if len(add) > 0 {
				pipe.ZAdd(ctx, key, add...)
				pipe.PExpire(ctx, key, 2*p.ttl) // as the count does, should it not run
			}
			counts[room] = countScript.EvalSha(ctx, pipe, []string{key}, now.UnixMilli(), (2 * p.ttl).Milliseconds())
			next[room] = cur
		}
		for room, users := range p.prev {
			if _, ok := local[room]; ok || len(users) == 0 {
				continue
			}
			gone := make([]any, 0, len(users))
			for u := range users {
				gone = append(gone, p.member(u))
			}
			pipe.ZRem(ctx, p.key(room), gone...)
		}
		return counts
	}
	pipe := p.client.Pipeline()
	counts := run(pipe)
	_, err := pipe.Exec(ctx)
	if redis.HasErrorPrefix(err, "NOSCRIPT") {
		// Redis has restarted or dropped its scripts, and maybe its data: load the script and
		// send every entry again (adding and removing entries twice changes nothing).
		if err = countScript.Load(ctx, p.client).Err(); err == nil {
			full = true
			pipe = p.client.Pipeline()
			counts = run(pipe)
			_, err = pipe.Exec(ctx)
		}
	}
	if err != nil {
		reloadTopology(p.client, err)
		// Any part of it may have been applied: next time, send every entry again, and remove
		// whatever either sync had added.
		for room, users := range next {
			if before, ok := p.prev[room]; ok {
				for u := range before {
					users[u] = struct{}{}
				}
			}
			p.prev[room] = users
		}
		p.lastFull = time.Time{}
		return nil, fmt.Errorf("presence sync: %w", err)
	}
	p.prev = next
	if full {
		p.lastFull = now
	}
	out := make(map[cg.ClassID]int, len(counts))
	for room, cmd := range counts {
		n, err := cmd.Int()
		if err != nil {
			return nil, fmt.Errorf("presence count: %w", err)
		}
		out[room] = n
	}
	return out, nil
}
