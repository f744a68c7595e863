package rooms

import (
	"sync"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// RateLimiter is a token bucket per user, in process: each user may publish Burst messages at
// once and Rate a second on average. Buckets of idle users are forgotten.
type RateLimiter struct {
	Rate  float64
	Burst float64
	Now   func() time.Time

	mu      sync.Mutex
	buckets map[cg.UserID]*bucket // guarded by mu
	swept   time.Time             // guarded by mu
}

type bucket struct {
	tokens float64
	at     time.Time
}

// NewRateLimiter returns a limiter of rate messages a second with bursts of burst.
func NewRateLimiter(rate, burst float64) *RateLimiter {
	return &RateLimiter{Rate: rate, Burst: burst, Now: time.Now, buckets: make(map[cg.UserID]*bucket)}
}

// Allow takes a token of user's bucket. When there is none it returns false and how long until
// there is.
func (l *RateLimiter) Allow(user cg.UserID) (bool, time.Duration) {
	now := l.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		full := time.Duration(l.Burst / l.Rate * float64(time.Second))
		for u, b := range l.buckets {
			if now.Sub(b.at) > full {
				delete(l.buckets, u)
			}
		}
		l.swept = now
	}
	b, ok := l.buckets[user]
	if !ok {
		b = &bucket{tokens: l.Burst, at: now}
		l.buckets[user] = b
	}
	b.tokens = min(l.Burst, b.tokens+now.Sub(b.at).Seconds()*l.Rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / l.Rate * float64(time.Second))
	return false, wait
}
