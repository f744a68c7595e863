package rooms

import (
	"context"
	"log/slog"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// EraseStore erases the messages of deleted accounts whose erasure time has come.
type EraseStore interface {
	// EraseDue tombstones up to limit messages whose erasure time is not after now and returns
	// them; ran is false when another instance was running the job.
	// Each erasure is an event of its room.
	EraseDue(ctx context.Context, now time.Time, limit int) (erased []*cg.RoomEvent, ran bool, err error)
}

// Eraser runs the erasure job: each message a deletion asked to erase becomes a tombstone at its
// own random time (drawn at the deletion), an event of its room (a message_erased frame).
// Since the times are spread, the erasures of one account come one by one, not as a batch that
// would show which pseudonyms were its.
type Eraser struct {
	Store   EraseStore
	Service *Service
	// Every is the period of the job. Default: 1 minute.
	Every time.Duration
	// Batch is the most messages erased in one transaction. Default: 500.
	Batch int
	// Now is the clock. Default: time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Run runs the job at once and then every Every, until ctx ends.
func (e *Eraser) Run(ctx context.Context) {
	every := e.Every
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if _, err := e.RunOnce(ctx); err != nil && ctx.Err() == nil {
			e.logger().Log(ctx, cg.LogLevel(err), "erase messages", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// RunOnce erases every message due by now, a batch at a time, and tells each room; it returns
// how many it erased.
func (e *Eraser) RunOnce(ctx context.Context) (int, error) {
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	batch := e.Batch
	if batch <= 0 {
		batch = 500
	}
	total := 0
	for {
		erased, ran, err := e.Store.EraseDue(ctx, now(), batch)
		if err != nil || !ran {
			return total, err
		}
		for _, ev := range erased {
			e.Service.Announce(ev)
		}
		total += len(erased)
		if len(erased) < batch {
			return total, nil
		}
	}
}

func (e *Eraser) logger() *slog.Logger {
	if e.Logger != nil {
		return e.Logger
	}
	return slog.Default()
}
