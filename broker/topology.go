package broker

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// reloadTopology has a cluster client read the cluster's slots again after a failed command.
// go-redis reads them on its own only on a MOVED, ASK or READONLY reply, or once a minute; a
// master that died answers nothing, so subscriptions and pipelines routed to it would keep
// dialling it for up to a minute after its replica took over. The reload runs in the
// background and coalesces with others under way; on a single server it does nothing.
func reloadTopology(client redis.UniversalClient, err error) {
	if err == nil {
		return
	}
	if cc, ok := client.(*redis.ClusterClient); ok {
		cc.ReloadState(context.Background())
	}
}
