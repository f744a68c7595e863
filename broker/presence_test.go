package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/broker"
	"github.com/commongrounds/commongrounds/internal/testenv"
)

// sentCommands is a go-redis hook that keeps every command sent (name and arguments) and
// counts round trips: commands sent alone and pipelines.
type sentCommands struct {
	mu     sync.Mutex
	cmds   []string // guarded by mu: since the last take
	rounds int64    // guarded by mu
}

func (*sentCommands) DialHook(next redis.DialHook) redis.DialHook { return next }

func (s *sentCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		s.add(cmd)
		return next(ctx, cmd)
	}
}

func (s *sentCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		s.add(cmds...)
		return next(ctx, cmds)
	}
}

// add records one round trip of cmds.
func (s *sentCommands) add(cmds ...redis.Cmder) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rounds++
	for _, cmd := range cmds {
		args := make([]string, len(cmd.Args()))
		for i, a := range cmd.Args() {
			args[i] = fmt.Sprint(a)
		}
		s.cmds = append(s.cmds, strings.Join(args, " "))
	}
}

// roundTrips returns the round trips so far.
func (s *sentCommands) roundTrips() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rounds
}

// take returns the commands sent since the last take.
func (s *sentCommands) take() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	cmds := s.cmds
	s.cmds = nil
	return cmds
}

// named returns the commands of cmds whose name is name.
func named(cmds []string, name string) []string {
	return slices.DeleteFunc(slices.Clone(cmds), func(c string) bool { return !strings.HasPrefix(c, name+" ") })
}

// TestRedisPresence counts distinct users across two instances as they come and go, sends
// only what changed between full refreshes, and drops an instance that stopped syncing once
// its entries lapse.
//
// Not parallel, as none of the tests that flush Redis's scripts are: the commands a sync sends,
// which it checks, would change if another test flushed them meanwhile.
func TestRedisPresence(t *testing.T) {
	client, prefix := testenv.MustRedis(t)
	sent := &sentCommands{}
	client.AddHook(sent)
	ctx := context.Background()
	const ttl = 30 * time.Second
	clk := testenv.NewClock(time.Date(2026, 1, 12, 9, 0, 0, 0, time.UTC))
	a := broker.NewRedisPresence(client, prefix, "a", ttl)
	b := broker.NewRedisPresence(client, prefix, "b", ttl)
	broker.SetPresenceClock(a, clk.Now)
	broker.SetPresenceClock(b, clk.Now)
	room, other := cg.ClassID("room"), cg.ClassID("other")
	countsAfter := func(p *broker.RedisPresence, local map[cg.ClassID][]cg.UserID) map[cg.ClassID]int {
		t.Helper()
		counts, err := p.Sync(ctx, local)
		if err != nil {
			t.Fatal(err)
		}
		return counts
	}
	want := func(got map[cg.ClassID]int, want map[cg.ClassID]int) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("counts %v, want %v", got, want)
		}
	}

	want(countsAfter(a, map[cg.ClassID][]cg.UserID{room: {"u1", "u2"}, other: {"u1"}}), map[cg.ClassID]int{room: 2, other: 1})
	// u2 has sockets on both instances: counted once.
	want(countsAfter(b, map[cg.ClassID][]cg.UserID{room: {"u2", "u3"}}), map[cg.ClassID]int{room: 3})
	sent.take()

	// Nothing changed and no refresh is due: a sync adds and removes nothing, and counts.
	want(countsAfter(a, map[cg.ClassID][]cg.UserID{room: {"u1", "u2"}, other: {"u1"}}), map[cg.ClassID]int{room: 3, other: 1})
	cmds := sent.take()
	if changes := append(named(cmds, "zadd"), named(cmds, "zrem")...); len(changes) != 0 {
		t.Errorf("a sync with nothing changed sent %q", changes)
	}

	// u1 leaves the room and u4 comes: one removal, one addition.
	want(countsAfter(a, map[cg.ClassID][]cg.UserID{room: {"u2", "u4"}, other: {"u1"}}), map[cg.ClassID]int{room: 3, other: 1})
	cmds = sent.take()
	key := prefix + "presence:{room}"
	if zadd, zrem := named(cmds, "zadd"), named(cmds, "zrem"); len(zadd) != 1 || !strings.HasPrefix(zadd[0], "zadd "+key) ||
		!strings.HasSuffix(zadd[0], " u4|a") || fmt.Sprint(zrem) != "[zrem "+key+" u1|a]" {
		t.Errorf("after one change each way: %q, %q; want u4 added and u1 removed", zadd, zrem)
	}

	// A third of the lifetime later every entry is scored again.
	clk.Advance(ttl / 3)
	want(countsAfter(a, map[cg.ClassID][]cg.UserID{room: {"u2", "u4"}, other: {"u1"}}), map[cg.ClassID]int{room: 3, other: 1})
	if got := named(sent.take(), "zadd"); len(got) != 2 {
		t.Errorf("a refresh sent %q, want every entry of both rooms", got)
	}

	// a leaves the other room; b stops syncing (it crashed): once its entries lapse, u3 is gone
	// and u2 is counted through a's entry alone.
	want(countsAfter(a, map[cg.ClassID][]cg.UserID{room: {"u2", "u4"}}), map[cg.ClassID]int{room: 3})
	clk.Advance(ttl / 3)
	want(countsAfter(a, map[cg.ClassID][]cg.UserID{room: {"u2", "u4"}}), map[cg.ClassID]int{room: 3})
	clk.Advance(ttl / 3)
	want(countsAfter(a, map[cg.ClassID][]cg.UserID{room: {"u2", "u4"}}), map[cg.ClassID]int{room: 2})
	if n, err := client.ZCard(ctx, prefix+"presence:{other}").Result(); err != nil || n != 0 {
		t.Errorf("the room a left holds %d entries (%v), want none", n, err)
	}

	// A sync that fails may have been applied in part or not at all: the next one sends every
	// entry and every removal again.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Sync(cancelled, map[cg.ClassID][]cg.UserID{room: {"u4"}}); err == nil {
		t.Fatal("a sync with its context cancelled succeeded")
	}
	sent.take()
	want(countsAfter(a, map[cg.ClassID][]cg.UserID{room: {"u4"}}), map[cg.ClassID]int{room: 1})
	cmds = sent.take()
	if zadd, zrem := named(cmds, "zadd"), named(cmds, "zrem"); len(zadd) != 1 || fmt.Sprint(zrem) != "[zrem "+key+" u2|a]" {
		t.Errorf("after a failed sync: %q, %q; want u4 added again and u2 removed", zadd, zrem)
	}

	// Redis lost its scripts (a restart): the sync loads it again.
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	want(countsAfter(a, map[cg.ClassID][]cg.UserID{room: {"u4"}}), map[cg.ClassID]int{room: 1})

	// Shutting down withdraws every entry.
	want(countsAfter(a, nil), map[cg.ClassID]int{})
	if n, err := client.ZCard(ctx, prefix+"presence:{room}").Result(); err != nil || n != 0 {
		t.Errorf("after a withdrew, the room holds %d entries (%v), want none", n, err)
	}
}

// failAfter is a go-redis hook that, when armed, lets one pipeline run and then reports it
// failed, as a connection lost before the reply does.
type failAfter struct{ armed atomic.Bool }

func (*failAfter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*failAfter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (f *failAfter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if f.armed.CompareAndSwap(true, false) {
			return errors.New("connection lost before the reply")
		}
		return err
	}
}

// TestRedisPresenceFailures: a sync that failed after Redis applied it, and a Redis that lost
// its data and scripts (a restart), leave no user counted who is gone and miss none who is
// there.
// Not parallel: it flushes Redis's scripts.
func TestRedisPresenceFailures(t *testing.T) {
	client, prefix := testenv.MustRedis(t)
	fail := &failAfter{}
	client.AddHook(fail)
	ctx := context.Background()
	p := broker.NewRedisPresence(client, prefix, "a", 30*time.Second)
	room := cg.ClassID("room")
	countsAfter := func(local map[cg.ClassID][]cg.UserID) map[cg.ClassID]int {
		t.Helper()
		counts, err := p.Sync(ctx, local)
		if err != nil {
			t.Fatal(err)
		}
		return counts
	}
	if got := countsAfter(map[cg.ClassID][]cg.UserID{room: {"u1"}}); got[room] != 1 {
		t.Fatalf("count %d, want 1", got[room])
	}
	// u2 comes; the sync adds it but reports failure. Then u2 leaves.
	fail.armed.Store(true)
	if _, err := p.Sync(ctx, map[cg.ClassID][]cg.UserID{room: {"u1", "u2"}}); err == nil {
		t.Fatal("the failed sync reported no error")
	}
	if got := countsAfter(map[cg.ClassID][]cg.UserID{room: {"u1"}}); got[room] != 1 {
		t.Fatalf("after a user added by a failed sync left: count %d, want 1", got[room])
	}
	// Redis restarts without its data or scripts.
	if err := client.Del(ctx, prefix+"presence:{room}").Err(); err != nil {
		t.Fatal(err)
	}
	if err := client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if got := countsAfter(map[cg.ClassID][]cg.UserID{room: {"u1"}}); got[room] != 1 {
		t.Fatalf("after Redis lost its data: count %d, want 1", got[room])
	}
}
