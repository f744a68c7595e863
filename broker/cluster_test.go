package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/broker"
	"github.com/commongrounds/commongrounds/internal/testenv"
)

// heard is a BrokerHandler that counts each room's events and the resyncs; it never blocks.
type heard struct {
	mu      sync.Mutex
	rooms   map[cg.ClassID]int
	resyncs int
	got     chan struct{} // signalled after each event, without blocking
}

func newHeard() *heard {
	return &heard{rooms: make(map[cg.ClassID]int), got: make(chan struct{}, 1)}
}

func (h *heard) HandleRoomEvent(room cg.ClassID, _ []byte) {
	h.mu.Lock()
	h.rooms[room]++
	h.mu.Unlock()
	select {
	case h.got <- struct{}{}:
	default:
	}
}

func (h *heard) HandleControl([]byte) {}

func (h *heard) HandleResync() {
	h.mu.Lock()
	h.resyncs++
	h.mu.Unlock()
}

func (h *heard) count(room cg.ClassID) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.rooms[room]
}

func (h *heard) resynced() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.resyncs
}

// reset forgets the events heard so far.
func (h *heard) reset() {
	h.mu.Lock()
	clear(h.rooms)
	h.mu.Unlock()
}

// everyRoomHears publishes an event to each room (straight to its channel, with client) that
// has not heard one since the last reset, and again, until every room has or the time is up.
func everyRoomHears(t *testing.T, h *heard, client redis.UniversalClient, prefix string, rooms []cg.ClassID, within time.Duration) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(within)
	for {
		var deaf []cg.ClassID
		for _, r := range rooms {
			if h.count(r) == 0 {
				deaf = append(deaf, r)
			}
		}
		if len(deaf) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d rooms heard nothing within %v (first: %s)", len(deaf), len(rooms), within, deaf[0])
		}
		for _, r := range deaf {
			// An error (the slot's master is gone) is retried in the next round, with the
			// slots read again: go-redis does not on its own when a master stops answering.
			if err := client.SPublish(ctx, prefix+"room:"+string(r), "x").Err(); err != nil {
				if cc, ok := client.(*redis.ClusterClient); ok {
					cc.ReloadState(ctx)
				}
			}
		}
		select {
		case <-h.got:
		case <-time.After(200 * time.Millisecond): // a round may go unheard: publish again
		}
	}
}

// clientName returns a connection name unique to the test's prefix.
func clientName(prefix string) string {
	return "cgtest-" + strings.ReplaceAll(strings.TrimSuffix(prefix, ":"), ":", "-")
}

// shardConnections counts the connections named name on each node of rc and those of them
// with shard subscriptions (CLIENT LIST).
func shardConnections(t *testing.T, rc *testenv.RedisCluster, name string) (total, subscribers int, perNode map[string]int) {
	t.Helper()
	ctx := context.Background()
	perNode = make(map[string]int)
	for _, n := range rc.Nodes() {
		if !n.Alive() {
			continue
		}
		node := redis.NewClient(&redis.Options{Addr: n.Addr()})
		list, err := node.ClientList(ctx).Result()
		node.Close()
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(strings.NewReader(list))
		for sc.Scan() {
			if !strings.Contains(sc.Text(), " name="+name+" ") {
				continue
			}
			total++
			if !strings.Contains(sc.Text(), " ssub=0 ") {
				subscribers++
				perNode[n.Addr()]++
			}
		}
	}
	return total, subscribers, perNode
}

// namedClient returns a cluster client of rc whose connections are named name.
func namedClient(t *testing.T, rc *testenv.RedisCluster, name string) *redis.ClusterClient {
	t.Helper()
	opts, err := redis.ParseClusterURL(rc.URL())
	if err != nil {
		t.Fatal(err)
	}
	opts.ClientName = name
	opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = time.Second, time.Second, time.Second
	opts.PoolTimeout = time.Second
	client := redis.NewClusterClient(opts)
	t.Cleanup(func() { client.Close() })
	return client
}

// TestShardedConnections subscribes one instance to 1,000 rooms on a Redis Cluster and counts
// the connections it holds on each node (CLIENT LIST), which it logs: the figure in
// docs/scaling.md. The rooms share one subscription connection per master, and every room
// gets its events.
func TestShardedConnections(t *testing.T) {
	t.Parallel()
	rc := testenv.SharedRedisCluster(t)
	client, prefix := testenv.MustRedisCluster(t)
	name := clientName(prefix)
	b := broker.NewRedis(namedClient(t, rc, name), broker.RedisOptions{Prefix: prefix, Sharded: true})
	t.Cleanup(func() { b.Close() })
	h := newHeard()
	b.SetHandler(h)
	ctx := context.Background()
	const rooms = 1000
	ids := make([]cg.ClassID, rooms)
	for i := range ids {
		ids[i] = cg.ClassID(fmt.Sprintf("room-%d", i))
		if err := b.Subscribe(ctx, ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	total, subscribers, perNode := shardConnections(t, rc, name)
	t.Logf("%d rooms subscribed: %d connections to the cluster (%d with shard subscriptions, per node %v)",
		rooms, total, subscribers, perNode)
	if subscribers != 3 || len(perNode) != 3 {
		t.Errorf("%d connections with shard subscriptions on %d nodes, want one on each of the 3 masters", subscribers, len(perNode))
	}
	everyRoomHears(t, h, client, prefix, ids, 10*time.Second)
	for _, r := range ids[:rooms/2] {
		if err := b.Unsubscribe(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	h.reset()
	everyRoomHears(t, h, client, prefix, ids[rooms/2:], 10*time.Second)
	for _, r := range ids[rooms/2:] {
		if err := b.Unsubscribe(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the shard connections to close once no room is left", func() bool {
		_, subscribers, _ := shardConnections(t, rc, name)
		return subscribers == 0
	})
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling a condition
	}
}

// subscribeRooms subscribes b to n rooms named after tag and returns them.
func subscribeRooms(t *testing.T, b *broker.Redis, tag string, n int) []cg.ClassID {
	t.Helper()
	ids := make([]cg.ClassID, n)
	for i := range ids {
		ids[i] = cg.ClassID(fmt.Sprintf("%s-%d", tag, i))
		if err := b.Subscribe(context.Background(), ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// TestShardedFailover kills a master while 150 rooms are subscribed: once its replica is
// promoted, every room hears events again, the handler is told to resync, and the broker says
// it is up.
func TestShardedFailover(t *testing.T) {
	t.Parallel()
	rc := testenv.NewRedisCluster(t)
	prefix := "cgtest:" + testenv.RandomHex(6) + ":"
	name := clientName(prefix)
	b := broker.NewRedis(namedClient(t, rc, name), broker.RedisOptions{Prefix: prefix, Sharded: true, MaxBackoff: 200 * time.Millisecond})
	t.Cleanup(func() { b.Close() })
	h := newHeard()
	b.SetHandler(h)
	ids := subscribeRooms(t, b, "room", 150)
	publisher := rc.ClusterClient(t)
	everyRoomHears(t, h, publisher, prefix, ids, 10*time.Second)

	ctx := context.Background()
	master, replica, err := rc.Owners(ctx, prefix+"room:"+string(ids[0]))
	if err != nil {
		t.Fatal(err)
	}
	if replica == nil {
		t.Fatalf("master %s has no replica", master.Addr())
	}
	onMaster := 0
	for _, r := range ids {
		if m, _, err := rc.Owners(ctx, prefix+"room:"+string(r)); err != nil {
			t.Fatal(err)
		} else if m == master {
			onMaster++
		}
	}
	master.Kill()
	killed := time.Now()
	waitFor(t, "the replica's promotion", func() bool {
		role, err := replica.Role(ctx)
		return err == nil && role == "master"
	})
	promoted := time.Now()
	waitFor(t, "a resync and the broker up", func() bool { return h.resynced() > 0 && b.Up() })
	restored := time.Now()
	h.reset()
	everyRoomHears(t, h, publisher, prefix, ids, 20*time.Second)
	t.Logf("master %s (%d of %d rooms) killed; replica promoted %v later; subscriptions restored %v after the promotion; every room heard again %v after it",
		master.Addr(), onMaster, len(ids), promoted.Sub(killed).Round(time.Millisecond),
		restored.Sub(promoted).Round(time.Millisecond), time.Since(promoted).Round(time.Millisecond))
	if _, subscribers, perNode := shardConnections(t, rc, name); subscribers != 3 {
		t.Errorf("%d connections with shard subscriptions after the failover (%v), want one on each of the 3 masters", subscribers, perNode)
	}
}

// TestShardedSlotMigration moves the slot of 20 subscribed rooms to another master: the
// rooms are subscribed again on the new master, keep hearing events, and the handler is told to
// resync. A room of that slot subscribed afterwards through a client that still routes the slot
// to the old master is refused there (MOVED) and subscribed on the new one.
func TestShardedSlotMigration(t *testing.T) {
	t.Parallel()
	rc := testenv.NewRedisCluster(t)
	prefix := "cgtest:" + testenv.RandomHex(6) + ":"
	b := broker.NewRedis(rc.ClusterClient(t), broker.RedisOptions{Prefix: prefix, Sharded: true, MaxBackoff: 200 * time.Millisecond})
	t.Cleanup(func() { b.Close() })
	h := newHeard()
	b.SetHandler(h)
	// The hash tag puts the channels of these rooms in one slot.
	moving := subscribeRooms(t, b, "{mig}", 20)
	staying := subscribeRooms(t, b, "room", 50)
	all := append(append([]cg.ClassID{}, moving...), staying...)
	publisher := rc.ClusterClient(t)
	everyRoomHears(t, h, publisher, prefix, all, 10*time.Second)

	// A second broker, whose client has read the slots before the migration and will not again
	// until a node tells it to.
	var log testenv.SyncBuffer
	late := broker.NewRedis(rc.ClusterClient(t), broker.RedisOptions{
		Prefix: prefix, Sharded: true, MaxBackoff: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	t.Cleanup(func() { late.Close() })
	lateHeard := newHeard()
	late.SetHandler(lateHeard)
	subscribeRooms(t, late, "room", 1)

	ctx := context.Background()
	channel := prefix + "room:" + string(moving[0])
	from, _, err := rc.Owners(ctx, channel)
	if err != nil {
		t.Fatal(err)
	}
	var to *testenv.ClusterNode
	for _, r := range staying {
		if m, _, err := rc.Owners(ctx, prefix+"room:"+string(r)); err != nil {
			t.Fatal(err)
		} else if m != from {
			to = m
			break
		}
	}
	if to == nil {
		t.Fatal("no room of 50 lies on another master")
	}
	migrateSlot(t, rc, channel, from, to)

	h.reset()
	everyRoomHears(t, h, publisher, prefix, all, 20*time.Second)
	waitFor(t, "a resync and the broker up", func() bool { return h.resynced() > 0 && b.Up() })
	toClient := redis.NewClient(&redis.Options{Addr: to.Addr()})
	defer toClient.Close()
	waitFor(t, "the moved rooms subscribed on the new master", func() bool {
		for _, r := range moving {
			n, err := toClient.PubSubShardNumSub(ctx, prefix+"room:"+string(r)).Result()
			if err != nil || n[prefix+"room:"+string(r)] != 1 {
				return false
			}
		}
		return true
	})

	// MOVED: the late broker's client still sends the slot to the old master.
	newcomer := subscribeRooms(t, late, "{mig}-late", 1)
	everyRoomHears(t, lateHeard, publisher, prefix, newcomer, 10*time.Second)
	if !strings.Contains(log.String(), "MOVED") {
		t.Errorf("the late broker's subscription was not refused with MOVED; its log:\n%s", log.String())
	}
	if n, err := toClient.PubSubShardNumSub(ctx, prefix+"room:"+string(newcomer[0])).Result(); err != nil || n[prefix+"room:"+string(newcomer[0])] != 1 {
		t.Errorf("PUBSUB SHARDNUMSUB on the new master = %v, %v; want 1", n, err)
	}
}

// migrateSlot moves the slot of key from one master to another, as redis-cli --cluster
// reshard does (the slot holds no key in this test).
func migrateSlot(t *testing.T, rc *testenv.RedisCluster, key string, from, to *testenv.ClusterNode) {
	t.Helper()
	ctx := context.Background()
	nodeID := func(n *testenv.ClusterNode) string {
		c := redis.NewClient(&redis.Options{Addr: n.Addr()})
		defer c.Close()
		id, err := c.Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	fromID, toID := nodeID(from), nodeID(to)
	fc := redis.NewClient(&redis.Options{Addr: from.Addr()})
	defer fc.Close()
	tc := redis.NewClient(&redis.Options{Addr: to.Addr()})
	defer tc.Close()
	slot, err := fc.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		c    *redis.Client
		args []any
	}{
		{tc, []any{"CLUSTER", "SETSLOT", slot, "IMPORTING", fromID}},
		{fc, []any{"CLUSTER", "SETSLOT", slot, "MIGRATING", toID}},
		{tc, []any{"CLUSTER", "SETSLOT", slot, "NODE", toID}},
		{fc, []any{"CLUSTER", "SETSLOT", slot, "NODE", toID}},
	}
	for _, s := range steps {
		if err := s.c.Do(ctx, s.args...).Err(); err != nil {
			t.Fatalf("%v on %s: %v", s.args, s.c.Options().Addr, err)
		}
	}
	if err := rc.WaitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestShardedResubscribe unsubscribes rooms and subscribes them again at once, before their
// connection could send the unsubscription: each Subscribe still returns confirmed, and the
// rooms hear events.
func TestShardedResubscribe(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.MustRedisCluster(t)
	b := broker.NewRedis(client, broker.RedisOptions{Prefix: prefix, Sharded: true})
	t.Cleanup(func() { b.Close() })
	h := newHeard()
	b.SetHandler(h)
	ctx := context.Background()
	ids := subscribeRooms(t, b, "room", 20)
	for range 10 {
		for _, r := range ids {
			if err := b.Unsubscribe(ctx, r); err != nil {
				t.Fatal(err)
			}
			if err := b.Subscribe(ctx, r); err != nil {
				t.Fatalf("subscribe again at once: %v", err)
			}
		}
	}
	everyRoomHears(t, h, client, prefix, ids, 10*time.Second)
}
