package broker

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	cg "github.com/commongrounds/commongrounds"
)

// RedisPresence counts the distinct users online in each room across instances. Each instance
// records its local users of a room in a sorted set scored by an expiry time and refreshes them
// every sync; the users of an instance that stops refreshing (it crashed) drop out after TTL.
type RedisPresence struct {
	client   redis.UniversalClient
	prefix   string
	instance string
	ttl      time.Duration
	now      func() time.Time

	prev map[cg.ClassID]map[cg.UserID]struct{} // owned by the caller of Sync (one goroutine)
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

// Sync records the local users of each room (rooms missing from local have none here any more)
// and returns the number of distinct users online in each room of local, across instances.
// It is called from one goroutine at a time.
func (p *RedisPresence) Sync(ctx context.Context, local map[cg.ClassID][]cg.UserID) (map[cg.ClassID]int, error) {
	now := p.now()
	expiry := float64(now.Add(p.ttl).UnixMilli())
	nowScore := strconv.FormatInt(now.UnixMilli(), 10)
	pipe := p.client.Pipeline()
	ranges := make(map[cg.ClassID]*redis.StringSliceCmd, len(local))
	for room, users := range local {
		key := p.key(room)
		cur := make(map[cg.UserID]struct{}, len(users))
		zs := make([]redis.Z, 0, len(users))
		for _, u := range users {
			cur[u] = struct{}{}
			zs = append(zs, redis.Z{Score: expiry, Member: string(u) + "|" + p.instance})
		}
		for u := range p.prev[room] {
			if _, ok := cur[u]; !ok {
				pipe.ZRem(ctx, key, string(u)+"|"+p.instance)
			}
		}
		if len(zs) > 0 {
			pipe.ZAdd(ctx, key, zs...)
		}
		pipe.ZRemRangeByScore(ctx, key, "-inf", nowScore)
		pipe.Expire(ctx, key, 2*p.ttl)
		ranges[room] = pipe.ZRangeByScore(ctx, key, &redis.ZRangeBy{Min: "(" + nowScore, Max: "+inf"})
		p.prev[room] = cur
	}
	for room, users := range p.prev {
		if _, ok := local[room]; ok {
			continue
		}
		for u := range users {
			pipe.ZRem(ctx, p.key(room), string(u)+"|"+p.instance)
		}
		delete(p.prev, room)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("presence sync: %w", err)
	}
	counts := make(map[cg.ClassID]int, len(ranges))
	for room, cmd := range ranges {
		distinct := make(map[string]struct{})
		for _, m := range cmd.Val() {
			user, _, _ := strings.Cut(m, "|")
			distinct[user] = struct{}{}
		}
		counts[room] = len(distinct)
	}
	return counts, nil
}
