package broker_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/broker"
	"github.com/commongrounds/commongrounds/internal/testenv"
)

// TestRedisSocketsRelease closes a thousand sockets of a hundred users at once, as a network
// failure or a load test's end does: every socket is forgotten, so that each user may open as
// many again, and the releases went in far fewer round trips than sockets.
func TestRedisSocketsRelease(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.MustRedis(t)
	counter := &sentCommands{}
	client.AddHook(counter)
	s := broker.NewRedisSockets(client, prefix, 30*time.Second)
	ctx := context.Background()
	const users, each = 100, 10
	type socket struct {
		user cg.UserID
		id   string
	}
	var sockets []socket
	for u := range users {
		for i := range each {
			sk := socket{cg.UserID(fmt.Sprintf("user-%d", u)), fmt.Sprintf("s-%d-%d", u, i)}
			if ok, err := s.Acquire(ctx, sk.user, sk.id, each); err != nil || !ok {
				t.Fatalf("acquire %v: %v, %v", sk, ok, err)
			}
			sockets = append(sockets, sk)
		}
	}
	if ok, err := s.Acquire(ctx, "user-0", "one-too-many", each); err != nil || ok {
		t.Fatalf("acquire past the limit: %v, %v", ok, err)
	}

	before := counter.roundTrips()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for _, sk := range sockets {
		wg.Go(func() {
			<-start
			if err := s.Release(ctx, sk.user, sk.id); err != nil {
				t.Errorf("release %v: %v", sk, err)
			}
		})
	}
	close(start)
	wg.Wait()
	rounds := counter.roundTrips() - before
	t.Logf("%d releases in %d round trips", len(sockets), rounds)
	if rounds > int64(len(sockets)/4) {
		t.Errorf("%d releases took %d round trips, want them together", len(sockets), rounds)
	}
	for u := range users {
		user := cg.UserID(fmt.Sprintf("user-%d", u))
		for i := range each {
			if ok, err := s.Acquire(ctx, user, fmt.Sprintf("again-%d", i), each); err != nil || !ok {
				t.Fatalf("acquire again for %s: %v, %v", user, ok, err)
			}
		}
	}
}

// TestRedisSocketsAcquire opens a thousand sockets of a hundred users at once, as clients do
// after a restart: each user is admitted up to the limit and no further, even when its sockets
// arrive together, and the acquires go in far fewer round trips than sockets.
// Not parallel: it flushes Redis's scripts.
func TestRedisSocketsAcquire(t *testing.T) {
	client, prefix := testenv.MustRedis(t)
	counter := &sentCommands{}
	client.AddHook(counter)
	s := broker.NewRedisSockets(client, prefix, 30*time.Second)
	ctx := context.Background()
	const users, each, max = 100, 12, 10
	var admitted [users]atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for u := range users {
		for i := range each {
			wg.Go(func() {
				<-start
				ok, err := s.Acquire(ctx, cg.UserID(fmt.Sprintf("user-%d", u)), fmt.Sprintf("s-%d-%d", u, i), max)
				if err != nil {
					t.Errorf("acquire: %v", err)
				}
				if ok {
					admitted[u].Add(1)
				}
			})
		}
	}
	close(start)
	wg.Wait()
	rounds := counter.roundTrips()
	t.Logf("%d acquires in %d round trips", users*each, rounds)
	for u := range users {
		if n := admitted[u].Load(); n != max {
			t.Errorf("user-%d: %d sockets admitted, want %d", u, n, max)
		}
	}
	if rounds > users*each/4 {
		t.Errorf("%d acquires took %d round trips, want them together", users*each, rounds)
	}

	// Redis lost its scripts (a restart): the acquire loads it again.
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Acquire(ctx, "someone-else", "s", max); err != nil || !ok {
		t.Fatalf("acquire after the scripts were flushed: %v, %v", ok, err)
	}
	if ok, err := s.Acquire(ctx, "user-0", "one-too-many", max); err != nil || ok {
		t.Fatalf("acquire past the limit after the scripts were flushed: %v, %v", ok, err)
	}
}

// TestRedisSocketsRefresh extends the entries of open sockets and never brings back one that
// was released meanwhile.
func TestRedisSocketsRefresh(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.MustRedis(t)
	s := broker.NewRedisSockets(client, prefix, 30*time.Second)
	clk := testenv.NewClock(time.Now())
	broker.SetSocketsClock(s, clk.Now)
	ctx := context.Background()
	key := prefix + "sockets:{u}"
	for _, id := range []string{"open", "closed"} {
		if ok, err := s.Acquire(ctx, "u", id, 10); err != nil || !ok {
			t.Fatalf("acquire %s: %v, %v", id, ok, err)
		}
	}
	before, err := client.ZScore(ctx, key, "open").Result()
	if err != nil {
		t.Fatal(err)
	}
	// The refresh listed both sockets; one closed and was released before it was sent.
	if err := s.Release(ctx, "u", "closed"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	if err := s.Refresh(ctx, map[cg.UserID][]string{"u": {"open", "closed"}}); err != nil {
		t.Fatal(err)
	}
	members, err := client.ZRangeWithScores(ctx, key, 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0].Member != "open" || members[0].Score <= before {
		t.Fatalf("after the refresh: %v; want only the open socket, its expiry later than %v", members, before)
	}
}

// TestRedisSocketsFlush: releases whose callers did not wait (a shutdown's) have all reached
// Redis once Flush returns.
func TestRedisSocketsFlush(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.MustRedis(t)
	s := broker.NewRedisSockets(client, prefix, 30*time.Second)
	ctx := context.Background()
	const n = 500
	for i := range n {
		if ok, err := s.Acquire(ctx, cg.UserID(fmt.Sprintf("user-%d", i%50)), fmt.Sprintf("s-%d", i), n); err != nil || !ok {
			t.Fatalf("acquire: %v, %v", ok, err)
		}
	}
	gone, cancel := context.WithCancel(ctx)
	cancel()
	for i := range n {
		_ = s.Release(gone, cg.UserID(fmt.Sprintf("user-%d", i%50)), fmt.Sprintf("s-%d", i)) // does not wait
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for u := range 50 {
		if c, err := client.ZCard(ctx, fmt.Sprintf("%ssockets:{user-%d}", prefix, u)).Result(); err != nil || c != 0 {
			t.Fatalf("user-%d: %d sockets still counted after Flush (%v)", u, c, err)
		}
	}
}
