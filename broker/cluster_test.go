package broker_test

import (
	"bufio"
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/broker"
	"github.com/commongrounds/commongrounds/internal/testenv"
)

// TestShardedConnections subscribes one instance to 1,000 rooms on a Redis Cluster and counts
// the connections it holds on each node (CLIENT LIST), which it logs: the figure in
// docs/scaling.md. Every room still gets its events.
func TestShardedConnections(t *testing.T) {
	t.Parallel()
	rc := testenv.SharedRedisCluster(t)
	_, prefix := testenv.MustRedisCluster(t)
	opts, err := redis.ParseClusterURL(rc.URL())
	if err != nil {
		t.Fatal(err)
	}
	name := "cgtest-" + strings.ReplaceAll(strings.TrimSuffix(prefix, ":"), ":", "-")
	opts.ClientName = name
	client := redis.NewClusterClient(opts)
	t.Cleanup(func() { client.Close() })
	b := broker.NewRedis(client, broker.RedisOptions{Prefix: prefix, Sharded: true})
	t.Cleanup(func() { b.Close() })
	rec := newRecorder()
	b.SetHandler(rec)
	ctx := context.Background()
	const rooms = 1000
	ids := make([]cg.ClassID, rooms)
	for i := range ids {
		ids[i] = cg.ClassID(fmt.Sprintf("room-%d", i))
		if err := b.Subscribe(ctx, ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	var total, subscribers atomic.Int64
	perNode := make(map[string]int)
	for _, n := range rc.Nodes() {
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
			total.Add(1)
			perNode[n.Addr()]++
			if !strings.Contains(sc.Text(), " ssub=0 ") {
				subscribers.Add(1)
			}
		}
	}
	t.Logf("%d rooms subscribed: %d connections to the cluster (%d with shard subscriptions), per node %v",
		rooms, total.Load(), subscribers.Load(), perNode)
	for i := 0; i < rooms; i += 97 {
		if err := b.Publish(ctx, ids[i], []byte("x")); err != nil {
			t.Fatal(err)
		}
		for rec.count(ids[i]) == 0 {
			rec.wait(t)
		}
	}
}
