package auth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	cg "github.com/commongrounds/commongrounds"
)

// Rate is a limit: at most Limit events per Window.
type Rate struct {
	Limit  int
	Window time.Duration
}

// Limiter counts events per key in fixed windows that start at a key's first event.
type Limiter interface {
	// Allow records n events under key if they fit within rate, and records nothing otherwise.
	// It returns a rate_limited error, with RetryAfterMs set to the time left in the window,
	// when they do not fit, and unavailable when the counters cannot be reached.
	Allow(ctx context.Context, key string, n int, rate Rate) error
}

// rateLimited returns the rate_limited error for a window that ends after retryAfter.
func rateLimited(retryAfter time.Duration) error {
	ms := retryAfter.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return &cg.Error{Code: cg.ERATELIMITED, Message: "Too many requests; try again later.", RetryAfterMs: ms}
}

// MemoryLimiter is a Limiter for a single instance: its counters live in this process.
type MemoryLimiter struct {
	now func() time.Time

	mu        sync.Mutex
	windows   map[string]*window // guarded by mu
	lastSweep time.Time          // guarded by mu
}

type window struct {
	count int
	ends  time.Time
}

var _ Limiter = (*MemoryLimiter)(nil)

// NewMemoryLimiter returns an in-process limiter on the clock now (time.Now when nil).
func NewMemoryLimiter(now func() time.Time) *MemoryLimiter {
	if now == nil {
		now = time.Now
	}
	return &MemoryLimiter{now: now, windows: make(map[string]*window)}
}

// Allow implements Limiter.
func (l *MemoryLimiter) Allow(ctx context.Context, key string, n int, rate Rate) error {
	if rate.Limit <= 0 || rate.Window <= 0 {
		return nil
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	// Drop ended windows now and then, so that the map holds only live keys.
	if now.Sub(l.lastSweep) > time.Minute {
		for k, w := range l.windows {
			if !now.Before(w.ends) {
				delete(l.windows, k)
			}
		}
		l.lastSweep = now
	}
	w, ok := l.windows[key]
	if !ok || !now.Before(w.ends) {
		w = &window{ends: now.Add(rate.Window)}
		l.windows[key] = w
	}
	if w.count+n > rate.Limit {
		return rateLimited(w.ends.Sub(now))
	}
	w.count += n
	return nil
}

// RedisLimiter is a Limiter whose counters live in Redis, so that every instance sharing the
// Redis server (and the prefix) shares the limits.
type RedisLimiter struct {
	client redis.Scripter
	prefix string
}

var _ Limiter = (*RedisLimiter)(nil)

// NewRedisLimiter returns a limiter keeping its counters in client under keys that start with
// prefix (for example "cg:rl:"; tests use a prefix of their own).
func NewRedisLimiter(client redis.Scripter, prefix string) *RedisLimiter {
	return &RedisLimiter{client: client, prefix: prefix}
}

// allowScript adds ARGV[1] to the counter KEYS[1] if the sum stays within ARGV[3], starting a
// window of ARGV[2] milliseconds at the first event. It returns {allowed, ms left in window}.
var allowScript = redis.NewScript(`
local n = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
local ttl = redis.call('PTTL', KEYS[1])
if count > 0 and ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], window)
  ttl = window
end
if count + n > limit then
  if ttl < 0 then ttl = window end
  return {0, ttl}
end
count = redis.call('INCRBY', KEYS[1], n)
if count == n then
  redis.call('PEXPIRE', KEYS[1], window)
  ttl = window
end
return {1, ttl}
`)

// Allow implements Limiter.
func (l *RedisLimiter) Allow(ctx context.Context, key string, n int, rate Rate) error {
	if rate.Limit <= 0 || rate.Window <= 0 {
		return nil
	}
	res, err := allowScript.Run(ctx, l.client, []string{l.prefix + key}, n, rate.Window.Milliseconds(), rate.Limit).Int64Slice()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return fmt.Errorf("rate limit: %w", err)
		}
		return &cg.Error{Code: cg.EUNAVAILABLE, Message: "The rate limiter is unavailable; try again.", RetryAfterMs: 1000}
	}
	if len(res) != 2 {
		return fmt.Errorf("rate limit: unexpected reply %v", res)
	}
	if res[0] == 0 {
		return rateLimited(time.Duration(res[1]) * time.Millisecond)
	}
	return nil
}
