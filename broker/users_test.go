package broker_test

import (
	"context"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/broker"
	"github.com/commongrounds/commongrounds/internal/testenv"
)

// HandleUserEvent records a user's event under the key "user:" and the user's id.
func (r *recorder) HandleUserEvent(user cg.UserID, p []byte) {
	r.mu.Lock()
	r.events[cg.ClassID("user:"+user)] = append(r.events[cg.ClassID("user:"+user)], string(p))
	r.mu.Unlock()
	r.got <- struct{}{}
}

// testUserCounting checks that user subscriptions are counted: a user stays subscribed until
// every SubscribeUser is undone, and an event reaches the instance that holds the user only.
func testUserCounting(t *testing.T, holder, other cg.Broker, rec *recorder, checkSilence bool) {
	ctx := context.Background()
	user := cg.UserID("22222222-2222-4222-8222-222222222222")
	key := cg.ClassID("user:" + user)
	for range 2 {
		if err := holder.SubscribeUser(ctx, user); err != nil {
			t.Fatal(err)
		}
	}
	if err := holder.UnsubscribeUser(ctx, user); err != nil {
		t.Fatal(err)
	}
	if err := other.PublishUser(ctx, user, []byte("one")); err != nil {
		t.Fatal(err)
	}
	rec.wait(t)
	if got := rec.events[key]; len(got) != 1 || got[0] != "one" {
		t.Fatalf("user events = %q, want [one]", got)
	}
	if err := holder.UnsubscribeUser(ctx, user); err != nil {
		t.Fatal(err)
	}
	if !checkSilence {
		return
	}
	if err := other.PublishUser(ctx, user, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := holder.PublishControl(ctx, []byte("ctl")); err != nil {
		t.Fatal(err)
	}
	rec.wait(t)
	if n := rec.count(key); n != 1 {
		t.Fatalf("user events = %d, want 1 (delivered while subscribed only)", n)
	}
}

func TestMemoryUsers(t *testing.T) {
	t.Parallel()
	b := broker.NewMemory()
	rec := newRecorder()
	b.SetHandler(rec)
	testUserCounting(t, b, b, rec, true)
}

// TestRedisUsers publishes from one broker to a user subscribed on another, as two instances.
func TestRedisUsers(t *testing.T) {
	t.Parallel()
	for _, sharded := range []bool{false, true} {
		client, prefix := testenv.MustRedis(t)
		holder := broker.NewRedis(client, broker.RedisOptions{Prefix: prefix, Sharded: sharded})
		other := broker.NewRedis(client, broker.RedisOptions{Prefix: prefix, Sharded: sharded})
		rec := newRecorder()
		holder.SetHandler(rec)
		other.SetHandler(newRecorder())
		testUserCounting(t, holder, other, rec, false)
		_ = other.Close()
		_ = holder.Close()
	}
}

// TestRedisSocketsCount counts a user's sockets across instances: open ones count, released
// and lapsed ones do not.
func TestRedisSocketsCount(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.MustRedis(t)
	clock := testenv.NewClock(time.Now())
	s := broker.NewRedisSockets(client, prefix, 30*time.Second)
	broker.SetSocketsClock(s, clock.Now)
	ctx := context.Background()
	count := func(want int) {
		t.Helper()
		if n, err := s.Count(ctx, "u"); err != nil || n != want {
			t.Fatalf("Count = %d, %v; want %d", n, err, want)
		}
	}
	count(0)
	for _, id := range []string{"a", "b"} {
		if ok, err := s.Acquire(ctx, "u", id, 10); err != nil || !ok {
			t.Fatalf("acquire: %v, %v", ok, err)
		}
	}
	count(2)
	if err := s.Release(ctx, "u", "a"); err != nil {
		t.Fatal(err)
	}
	count(1)
	clock.Advance(31 * time.Second)
	count(0)
}

// HandleUserEvent ignores user events: the cluster tests listen to rooms.
func (h *heard) HandleUserEvent(cg.UserID, []byte) {}
