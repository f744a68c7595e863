package main

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/api"
	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/persistence"
)

// historyFrom is the rooms service's store with history and threads read through a read
// router; everything else (publishing, access checks) stays on the primary, and the hub, which
// resumes and fills gaps, is given the primary's store directly.
type historyFrom struct {
	cg.MessageStore
	reads *persistence.ReadMessages
}

// ListMessages reads a page of history through the router.
func (h historyFrom) ListMessages(ctx context.Context, class cg.ClassID, f cg.MessageFilter) ([]*cg.Message, error) {
	return h.reads.ListMessages(ctx, class, f)
}

// Thread reads a thread through the router.
func (h historyFrom) Thread(ctx context.Context, class cg.ClassID, id cg.MessageID) (*cg.Message, []*cg.Message, error) {
	return h.reads.Thread(ctx, class, id)
}

// readRouter returns a router between primary and the replica of DATABASE_READ_URL, with its
// lag as metrics, or nil when DATABASE_READ_URL is unset. close stops it.
func readRouter(cfg *config.Config, primary *persistence.DB, reg prometheus.Registerer) (r *persistence.ReadRouter, closeFn func(), err error) {
	if cfg.DatabaseReadURL == "" {
		return nil, func() {}, nil
	}
	// Opening does not connect: a replica down at start is routed around like one that fails later.
	replica, err := persistence.Open(context.Background(), cfg.DatabaseReadURL, persistence.Options{}, false, false)
	if err != nil {
		return nil, nil, fmt.Errorf("DATABASE_READ_URL: %w", err)
	}
	r = persistence.NewReadRouter(primary, replica, cfg.ReadMaxLag, min(cfg.ReadMaxLag/2, time.Second))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "commongrounds_read_replica_lag_seconds",
		Help: "The read replica's lag behind the primary as last measured; -1 while it does not answer.",
	}, func() float64 {
		lag, ok := r.Lag()
		if !ok {
			return -1
		}
		return lag.Seconds()
	}), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "commongrounds_read_replica_used",
		Help: "1 while lag-tolerant reads go to the read replica, 0 while they go to the primary.",
	}, func() float64 {
		if r.UsesReplica() {
			return 1
		}
		return 0
	}))
	return r, func() {
		r.Close()
		replica.Close()
	}, nil
}

// roomStore returns the store of the rooms service: store itself, or with a read router,
// store with its lag-tolerant reads on the router.
func roomStore(router *persistence.ReadRouter, store cg.MessageStore) cg.MessageStore {
	if router == nil {
		return store
	}
	return historyFrom{MessageStore: store, reads: persistence.NewReadMessages(router)}
}

// classReads returns what serves class search and details: nil (the API's own class store on
// the primary), or the router's.
func classReads(router *persistence.ReadRouter) api.ClassReader {
	if router == nil {
		return nil
	}
	return persistence.NewReadClasses(router)
}
