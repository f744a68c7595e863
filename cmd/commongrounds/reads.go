package main

import (
	"context"
	"fmt"
	"time"

	cg "github.com/commongrounds/commongrounds"
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
func (h historyFrom) ListMessages(ctx context.Context, class cg.ClassID, f cg.MessageFilter) (*cg.MessagePage, error) {
	return h.reads.ListMessages(ctx, class, f)
}

// Thread reads a thread through the router.
func (h historyFrom) Thread(ctx context.Context, class cg.ClassID, id cg.MessageID) (*cg.Message, []*cg.Message, error) {
	return h.reads.Thread(ctx, class, id)
}

// roomStore returns the store of the rooms service: store itself, or with DATABASE_READ_URL,
// store with its lag-tolerant reads on the replica. close stops the router.
func roomStore(cfg *config.Config, primary *persistence.DB, store cg.MessageStore) (s cg.MessageStore, closeFn func(), err error) {
	if cfg.DatabaseReadURL == "" {
		return store, func() {}, nil
	}
	// Opening does not connect: a replica down at start is routed around like one that fails later.
	replica, err := persistence.Open(context.Background(), cfg.DatabaseReadURL, persistence.Options{}, false, false)
	if err != nil {
		return nil, nil, fmt.Errorf("DATABASE_READ_URL: %w", err)
	}
	router := persistence.NewReadRouter(primary, replica, cfg.ReadMaxLag, min(cfg.ReadMaxLag/2, time.Second))
	return historyFrom{MessageStore: store, reads: persistence.NewReadMessages(router)}, func() {
		router.Close()
		replica.Close()
	}, nil
}
