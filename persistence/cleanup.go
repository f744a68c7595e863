package persistence

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	cg "github.com/commongrounds/commongrounds"
)

// Advisory lock keys of the cleanup jobs, in the two-integer key space of pg_advisory_lock so
// that they cannot collide with single-bigint keys such as the migrator's.
const (
	lockClass       = 0x43470001 // "CG" and a version
	lockSignIns     = 1
	lockSessionsJob = 2
	lockErasures    = 3
	lockInboxJob    = 5
)

// CleanupStore runs the retention jobs of sign-in. Each job runs in one transaction that first
// takes a transaction-level advisory lock without waiting: when another instance holds it, the
// job is skipped, so instances sharing a database never run the same job at once.
type CleanupStore struct{ db *DB }

// NewCleanupStore returns the cleanup store of db.
func NewCleanupStore(db *DB) *CleanupStore { return &CleanupStore{db: db} }

// PurgeSignIns deletes the magic links that have expired by now or were used more than 7 days
// ago, and the WebSocket tickets and phone verifications that have expired by now. It reports
// the rows deleted and whether it ran (false when another instance was running it).
func (s *CleanupStore) PurgeSignIns(ctx context.Context, now time.Time) (int64, bool, error) {
	return s.locked(ctx, "purge sign-ins", lockSignIns, func(tx pgx.Tx) (int64, error) {
		var total int64
		for _, q := range []string{
			`DELETE FROM magic_links WHERE expires_at < $1 OR (used AND used_at < $1 - interval '7 days')`,
			`DELETE FROM ws_tickets WHERE expires_at < $1`,
			`DELETE FROM phone_verifications WHERE expires_at < $1`,
		} {
			tag, err := tx.Exec(ctx, q, now)
			if err != nil {
				return 0, err
			}
			total += tag.RowsAffected()
		}
		return total, nil
	})
}

// PurgeSessions deletes the sessions that have expired by now (their tickets go with them). It
// reports the rows deleted and whether it ran.
func (s *CleanupStore) PurgeSessions(ctx context.Context, now time.Time) (int64, bool, error) {
	return s.locked(ctx, "purge sessions", lockSessionsJob, func(tx pgx.Tx) (int64, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1`, now)
		if err != nil {
			return 0, err
		}
		return tag.RowsAffected(), nil
	})
}

// EraseDue tombstones up to limit messages of deleted accounts whose erasure time (drawn at the
// deletion, see UserStore.DeleteUser) is not after now, oldest time first, each an event of its
// room, and returns the events. It reports whether it ran (false when another instance was
// running it).
func (s *CleanupStore) EraseDue(ctx context.Context, now time.Time, limit int) ([]*cg.RoomEvent, bool, error) {
	var erased []*cg.RoomEvent
	_, ran, err := s.locked(ctx, "erase messages", lockErasures, func(tx pgx.Tx) (int64, error) {
		var err error
		erased, err = eraseDue(ctx, tx, now, limit)
		return int64(len(erased)), err
	})
	if err != nil || !ran {
		return nil, ran, err
	}
	return erased, true, nil
}

// locked runs job in a transaction holding the advisory lock key, if it can be had at once.
func (s *CleanupStore) locked(ctx context.Context, op string, key int32, job func(pgx.Tx) (int64, error)) (n int64, ran bool, err error) {
	tx, err := s.db.Pool.Begin(ctx)
	if err != nil {
		return 0, false, wrap(op+": begin", err)
	}
	defer func() {
		if rbErr := tx.Rollback(ctx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) && err == nil {
			err = wrap(op+": rollback", rbErr)
		}
	}()
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1, $2)`, int32(lockClass), key).Scan(&ran); err != nil {
		return 0, false, wrap(op+": lock", err)
	}
	if !ran {
		return 0, false, nil
	}
	if n, err = job(tx); err != nil {
		return 0, false, wrap(op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, false, wrap(op+": commit", err)
	}
	return n, true, nil
}
