package broker_test

import (
	"context"
	"sync"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/broker"
	"github.com/commongrounds/commongrounds/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// recorder is a BrokerHandler that keeps what it receives.
type recorder struct {
	mu     sync.Mutex
	events map[cg.ClassID][]string
	ctrl   []string
	got    chan struct{}
}

func newRecorder() *recorder {
	return &recorder{events: make(map[cg.ClassID][]string), got: make(chan struct{}, 1000)}
}

func (r *recorder) HandleRoomEvent(room cg.ClassID, p []byte) {
	r.mu.Lock()
	r.events[room] = append(r.events[room], string(p))
	r.mu.Unlock()
	r.got <- struct{}{}
}

func (r *recorder) HandleControl(p []byte) {
	r.mu.Lock()
	r.ctrl = append(r.ctrl, string(p))
	r.mu.Unlock()
	r.got <- struct{}{}
}

func (r *recorder) HandleResync() {}

func (r *recorder) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.got:
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10 s")
	}
}

func (r *recorder) count(room cg.ClassID) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events[room])
}

// testCounting checks that subscriptions are counted: a room stays subscribed until every
// Subscribe is undone.
func testCounting(t *testing.T, b cg.Broker, rec *recorder, checkSilence bool) {
	ctx := context.Background()
	room := cg.ClassID("11111111-1111-4111-8111-111111111111")
	if err := b.Subscribe(ctx, room); err != nil {
		t.Fatal(err)
	}
	if err := b.Subscribe(ctx, room); err != nil {
		t.Fatal(err)
	}
	if err := b.Unsubscribe(ctx, room); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, room, []byte("one")); err != nil {
		t.Fatal(err)
	}
	rec.wait(t)
	if err := b.PublishControl(ctx, []byte("ctl")); err != nil {
		t.Fatal(err)
	}
	rec.wait(t)
	if err := b.Unsubscribe(ctx, room); err != nil {
		t.Fatal(err)
	}
	if !checkSilence {
		// Redis applies an unsubscription when it reads it, which a publication on another
		// connection may overtake: nothing to check without waiting.
		return
	}
	// Unsubscribed now: a publication goes nowhere; a control event still arrives, after it.
	if err := b.Publish(ctx, room, []byte("two")); err != nil {
		t.Fatal(err)
	}
	if err := b.PublishControl(ctx, []byte("ctl2")); err != nil {
		t.Fatal(err)
	}
	rec.wait(t)
	if n := rec.count(room); n != 1 {
		t.Fatalf("room events = %d, want 1 (delivered while subscribed only)", n)
	}
}

func TestMemory(t *testing.T) {
	t.Parallel()
	b := broker.NewMemory()
	rec := newRecorder()
	b.SetHandler(rec)
	testCounting(t, b, rec, true)
}

func TestRedis(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.MustRedis(t)
	b := broker.NewRedis(client, broker.RedisOptions{Prefix: prefix})
	defer b.Close()
	rec := newRecorder()
	b.SetHandler(rec)
	testCounting(t, b, rec, false)
}

func TestRedisSharded(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.MustRedis(t)
	b := broker.NewRedis(client, broker.RedisOptions{Prefix: prefix, Sharded: true})
	defer b.Close()
	rec := newRecorder()
	b.SetHandler(rec)
	testCounting(t, b, rec, false)
}
