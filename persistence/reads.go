package persistence

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// ReadRouter sends reads that tolerate lag (history, threads, class search and details) to a
// streaming replica while it answers and is at most MaxLag behind the primary, and to the
// primary otherwise. It checks the replica in the background; between two checks the replica
// may fall behind by up to one interval more. The live path (publishing, resuming, gap filling, access checks) never uses it.
type ReadRouter struct {
	primary, replica *DB
	maxLag           time.Duration

	useReplica atomic.Bool
	lag        atomic.Int64 // nanoseconds, as last measured; -1 when the replica did not answer

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewReadRouter returns a router between primary and replica that checks the replica every
// interval (and once before it returns). Close stops it.
func NewReadRouter(primary, replica *DB, maxLag, interval time.Duration) *ReadRouter {
	ctx, cancel := context.WithCancel(context.Background())
	r := &ReadRouter{primary: primary, replica: replica, maxLag: maxLag, cancel: cancel}
	r.Check(ctx)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				r.Check(ctx)
			}
		}
	}()
	return r
}

// Close stops the checks.
func (r *ReadRouter) Close() {
	r.cancel()
	r.wg.Wait()
}

// DB returns the database lag-tolerant reads should use now.
func (r *ReadRouter) DB() *DB {
	if r.useReplica.Load() {
		return r.replica
	}
	return r.primary
}

// UsesReplica reports whether reads go to the replica now.
func (r *ReadRouter) UsesReplica() bool { return r.useReplica.Load() }

// Lag returns the replica's lag as last measured, and false if it did not answer.
func (r *ReadRouter) Lag() (time.Duration, bool) {
	n := r.lag.Load()
	return time.Duration(n), n >= 0
}

// Check measures the replica's lag now and routes reads by it. The replica is caught up when
// it has replayed the primary's current WAL position; otherwise its lag is the age of the last
// transaction it replayed (which overstates it after the primary was idle: reads then go to the
// primary until the replica catches up, a moment later).
func (r *ReadRouter) Check(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	lag, err := r.measure(ctx)
	if err != nil {
		r.lag.Store(-1)
		r.useReplica.Store(false)
		return
	}
	r.lag.Store(int64(lag))
	r.useReplica.Store(lag <= r.maxLag)
}

func (r *ReadRouter) measure(ctx context.Context) (time.Duration, error) {
	var lsn string
	if err := r.primary.Pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&lsn); err != nil {
		return 0, err
	}
	var caughtUp bool
	var lagSeconds float64
	err := r.replica.Pool.QueryRow(ctx, `SELECT
			COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, false),
			COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0)::float8`, lsn).Scan(&caughtUp, &lagSeconds)
	if err != nil {
		return 0, err
	}
	if caughtUp {
		return 0, nil
	}
	return time.Duration(lagSeconds * float64(time.Second)), nil
}

// readOn runs f on replica when r says so, and on primary otherwise or when the replica
// fails with anything but an application error (unavailable or internal: it went down since
// the last check, and is then left alone until a check finds it back).
func readOn[S any](ctx context.Context, r *ReadRouter, primary, replica S, f func(S) error) error {
	if r.UsesReplica() {
		err := f(replica)
		if code := cg.ErrorCode(err); (code != cg.EINTERNAL && code != cg.EUNAVAILABLE) || ctx.Err() != nil {
			return err
		}
		r.useReplica.Store(false)
	}
	return f(primary)
}

// ReadMessages reads rooms' history and threads through a ReadRouter.
type ReadMessages struct {
	router           *ReadRouter
	primary, replica *MessageStore
}

// NewReadMessages returns the history reads of router.
func NewReadMessages(router *ReadRouter) *ReadMessages {
	return &ReadMessages{router: router, primary: NewMessageStore(router.primary), replica: NewMessageStore(router.replica)}
}

// ListMessages returns a page of the room's history, as MessageStore.ListMessages does.
func (m *ReadMessages) ListMessages(ctx context.Context, class cg.ClassID, f cg.MessageFilter) (msgs []*cg.Message, err error) {
	err = readOn(ctx, m.router, m.primary, m.replica, func(s *MessageStore) error {
		msgs, err = s.ListMessages(ctx, class, f)
		return err
	})
	return msgs, err
}

// Thread returns a message and its replies, as MessageStore.Thread does.
func (m *ReadMessages) Thread(ctx context.Context, class cg.ClassID, id cg.MessageID) (root *cg.Message, replies []*cg.Message, err error) {
	err = readOn(ctx, m.router, m.primary, m.replica, func(s *MessageStore) error {
		root, replies, err = s.Thread(ctx, class, id)
		return err
	})
	return root, replies, err
}

// ReadClasses reads class search and class details through a ReadRouter. A class's
// enrollment count may then trail the caller's own enrollment by up to the router's lag.
type ReadClasses struct {
	router           *ReadRouter
	primary, replica *ClassStore
}

// NewReadClasses returns the class reads of router.
func NewReadClasses(router *ReadRouter) *ReadClasses {
	return &ReadClasses{router: router, primary: NewClassStore(router.primary), replica: NewClassStore(router.replica)}
}

// ListClasses returns a page of classes, as ClassStore.ListClasses does.
func (c *ReadClasses) ListClasses(ctx context.Context, f ClassFilter) (classes []*cg.Class, next string, err error) {
	err = readOn(ctx, c.router, c.primary, c.replica, func(s *ClassStore) error {
		classes, next, err = s.ListClasses(ctx, f)
		return err
	})
	return classes, next, err
}

// FindClassWithCount returns a class and its enrollment count, as ClassStore.FindClassWithCount
// does.
func (c *ReadClasses) FindClassWithCount(ctx context.Context, id cg.ClassID) (class *cg.Class, n int, err error) {
	err = readOn(ctx, c.router, c.primary, c.replica, func(s *ClassStore) error {
		class, n, err = s.FindClassWithCount(ctx, id)
		return err
	})
	return class, n, err
}
