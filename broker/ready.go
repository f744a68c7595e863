package broker

import (
	"context"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ClusterDegradedError says that a Redis Cluster answers but does not serve every slot: some
// rooms' events and keys cannot reach Redis until it does.
type ClusterDegradedError struct {
	State   string // cluster_state, "fail"
	SlotsOK string // cluster_slots_ok, of 16384
}

func (e *ClusterDegradedError) Error() string {
	return fmt.Sprintf("redis cluster_state:%s, %s of 16384 slots served", e.State, e.SlotsOK)
}

// ReadyStatus is the error as /readyz reports it.
func (e *ClusterDegradedError) ReadyStatus() string {
	return fmt.Sprintf("cluster_state:%s, slots ok %s/16384", e.State, e.SlotsOK)
}

// RedisReady returns a check of client for /readyz: a server answers PING; a cluster answers
// CLUSTER INFO with cluster_state:ok (otherwise the error is a *ClusterDegradedError).
func RedisReady(client redis.UniversalClient) func(context.Context) error {
	cc, ok := client.(*redis.ClusterClient)
	if !ok {
		return func(ctx context.Context) error { return client.Ping(ctx).Err() }
	}
	return func(ctx context.Context) error {
		info, err := cc.ClusterInfo(ctx).Result()
		if err != nil {
			return err
		}
		fields := make(map[string]string)
		for _, line := range strings.Split(info, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
				fields[k] = v
			}
		}
		if fields["cluster_state"] != "ok" {
			return &ClusterDegradedError{State: fields["cluster_state"], SlotsOK: fields["cluster_slots_ok"]}
		}
		return nil
	}
}
