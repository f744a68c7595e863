package auth_test

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/internal/testenv"
)

// retryAfter returns the RetryAfterMs of a rate_limited error, failing the test for any other.
func retryAfter(t *testing.T, err error) time.Duration {
	t.Helper()
	var e *cg.Error
	if !errors.As(err, &e) || e.Code != cg.ERATELIMITED || e.RetryAfterMs <= 0 {
		t.Fatalf("err=%v, want rate_limited with a retry time", err)
	}
	return time.Duration(e.RetryAfterMs) * time.Millisecond
}

// testLimiter runs the behaviour every Limiter shares. newLimiter returns limiters sharing
// their counters.
func testLimiter(t *testing.T, newLimiter func() auth.Limiter) {
	ctx := context.Background()
	rate := auth.Rate{Limit: 3, Window: time.Minute}
	t.Run("OKUpToLimit", func(t *testing.T) {
		l := newLimiter()
		for i := range 3 {
			if err := l.Allow(ctx, "k1", 1, rate); err != nil {
				t.Fatalf("event %d: %v, want nil", i+1, err)
			}
		}
		if d := retryAfter(t, l.Allow(ctx, "k1", 1, rate)); d > time.Minute {
			t.Fatalf("Retry-After %v, want at most the window", d)
		}
		if err := l.Allow(ctx, "k2", 1, rate); err != nil {
			t.Fatalf("another key: %v, want nil", err)
		}
	})
	t.Run("OKSharedCounters", func(t *testing.T) {
		a, b := newLimiter(), newLimiter()
		for i, l := range []auth.Limiter{a, b, a} {
			if err := l.Allow(ctx, "shared", 1, rate); err != nil {
				t.Fatalf("event %d: %v", i+1, err)
			}
		}
		retryAfter(t, b.Allow(ctx, "shared", 1, rate))
	})
	t.Run("OKRefusedCountsNothing", func(t *testing.T) {
		l := newLimiter()
		retryAfter(t, l.Allow(ctx, "n", 4, rate))
		if err := l.Allow(ctx, "n", 3, rate); err != nil {
			t.Fatalf("3 after a refused 4: %v, want nil", err)
		}
		retryAfter(t, l.Allow(ctx, "n", 1, rate))
	})
	t.Run("OKConcurrent", func(t *testing.T) {
		l := newLimiter()
		var allowed atomic.Int32
		var wg sync.WaitGroup
		for range 40 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if l.Allow(ctx, "c", 1, auth.Rate{Limit: 10, Window: time.Minute}) == nil {
					allowed.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := allowed.Load(); n != 10 {
			t.Fatalf("%d of 40 concurrent events allowed, want 10", n)
		}
	})
	t.Run("OKNoLimit", func(t *testing.T) {
		l := newLimiter()
		for range 5 {
			if err := l.Allow(ctx, "none", 1, auth.Rate{Limit: -1, Window: time.Minute}); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestMemoryLimiter(t *testing.T) {
	t.Parallel()
	clock := testenv.NewClock(time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC))
	shared := auth.NewMemoryLimiter(clock.Now)
	testLimiter(t, func() auth.Limiter { return shared })
	t.Run("OKWindowEnds", func(t *testing.T) {
		l := auth.NewMemoryLimiter(clock.Now)
		rate := auth.Rate{Limit: 2, Window: time.Minute}
		_ = l.Allow(context.Background(), "w", 2, rate)
		clock.Advance(20 * time.Second)
		if d := retryAfter(t, l.Allow(context.Background(), "w", 1, rate)); d != 40*time.Second {
			t.Fatalf("Retry-After=%v, want 40s", d)
		}
		clock.Advance(40 * time.Second)
		if err := l.Allow(context.Background(), "w", 1, rate); err != nil {
			t.Fatalf("after the window: %v, want nil", err)
		}
	})
}

func TestRedisLimiter(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.MustRedis(t)
	testLimiter(t, func() auth.Limiter { return auth.NewRedisLimiter(client, prefix) })
	t.Run("OKPrefixesIsolate", func(t *testing.T) {
		rate := auth.Rate{Limit: 1, Window: time.Minute}
		a, b := auth.NewRedisLimiter(client, prefix+"a:"), auth.NewRedisLimiter(client, prefix+"b:")
		if err := a.Allow(context.Background(), "k", 1, rate); err != nil {
			t.Fatal(err)
		}
		if err := b.Allow(context.Background(), "k", 1, rate); err != nil {
			t.Fatalf("another prefix: %v, want nil", err)
		}
	})
	t.Run("OKWindowExpires", func(t *testing.T) {
		l := auth.NewRedisLimiter(client, prefix)
		rate := auth.Rate{Limit: 1, Window: time.Minute}
		ctx := context.Background()
		if err := l.Allow(ctx, "exp", 1, rate); err != nil {
			t.Fatal(err)
		}
		ttl, err := client.PTTL(ctx, prefix+"exp").Result()
		if err != nil || ttl <= 0 || ttl > time.Minute {
			t.Fatalf("PTTL=%v,%v, want a window of at most a minute", ttl, err)
		}
		retryAfter(t, l.Allow(ctx, "exp", 1, rate))
		// The window's end is Redis's expiry: once the key is gone, the count starts again.
		if err := client.Del(ctx, prefix+"exp").Err(); err != nil {
			t.Fatal(err)
		}
		if err := l.Allow(ctx, "exp", 1, rate); err != nil {
			t.Fatalf("after the window: %v, want nil", err)
		}
	})
	t.Run("ErrUnavailable", func(t *testing.T) {
		l := auth.NewRedisLimiter(closedRedis(t), prefix)
		if err := l.Allow(context.Background(), "k", 1, auth.Rate{Limit: 1, Window: time.Minute}); cg.ErrorCode(err) != cg.EUNAVAILABLE {
			t.Fatalf("code=%q, want unavailable", cg.ErrorCode(err))
		}
	})
}

// closedRedis returns a client of a Redis server that is not there.
func closedRedis(t *testing.T) *redis.Client {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { c.Close() })
	return c
}
