package persistence

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	cg "github.com/commongrounds/commongrounds"
)

// PushSubscriptionStore stores Web Push subscriptions.
type PushSubscriptionStore struct{ db *DB }

var _ cg.PushSubscriptionStore = (*PushSubscriptionStore)(nil)

// NewPushSubscriptionStore returns the push subscription store of db.
func NewPushSubscriptionStore(db *DB) *PushSubscriptionStore { return &PushSubscriptionStore{db: db} }

// pushLockSQL makes the saves of one user ($1) take turns, until commit, so that two at once
// cannot both pass the count.
const pushLockSQL = `SELECT pg_advisory_xact_lock(hashtextextended('push:' || $1::text, 0))`

// SavePushSubscription implements cg.PushSubscriptionStore. A session that ended meanwhile is
// unauthorized.
func (s *PushSubscriptionStore) SavePushSubscription(ctx context.Context, user cg.UserID, session cg.SessionID, sub *cg.PushSubscription, max int) (err error) {
	tx, err := s.db.Pool.Begin(ctx)
	if err != nil {
		return wrap("save push subscription: begin", err)
	}
	defer func() {
		if rbErr := tx.Rollback(ctx); rbErr != nil && !errors.Is(rbErr, pgx.ErrTxClosed) && err == nil {
			err = wrap("save push subscription: rollback", rbErr)
		}
	}()
	if _, err := tx.Exec(ctx, pushLockSQL, user); err != nil {
		return wrap("save push subscription: lock", err)
	}
	var others int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM push_subscriptions WHERE user_id = $1 AND endpoint <> $2`,
		user, sub.Endpoint).Scan(&others); err != nil {
		return wrap("save push subscription: count", err)
	}
	if others >= max {
		return cg.Errorf(cg.ETOOMANYSUBSCRIPTIONS, "You have %d devices with notifications on, the most there may be; turn them off on one (DELETE /api/v1/me/push-subscriptions) first.", others)
	}
	err = tx.QueryRow(ctx, `
		INSERT INTO push_subscriptions (user_id, session_id, endpoint, p256dh, auth, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (endpoint) DO UPDATE
		   SET user_id = EXCLUDED.user_id, session_id = EXCLUDED.session_id,
		       p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth, expires_at = EXCLUDED.expires_at,
		       created_at = CASE WHEN push_subscriptions.user_id = EXCLUDED.user_id
		                         THEN push_subscriptions.created_at ELSE now() END,
		       updated_at = now()
		RETURNING created_at`,
		user, session, sub.Endpoint, sub.P256dh, sub.Auth, sub.ExpiresAt).Scan(&sub.CreatedAt)
	if isCode(err, "23503") { // foreign_key_violation: the session (or account) is gone
		return cg.Errorf(cg.EUNAUTHORIZED, "The session has ended; sign in again.")
	}
	if err != nil {
		return wrap("save push subscription", err)
	}
	return wrap("save push subscription: commit", tx.Commit(ctx))
}

// ListPushSubscriptions implements cg.PushSubscriptionStore.
func (s *PushSubscriptionStore) ListPushSubscriptions(ctx context.Context, user cg.UserID) ([]*cg.PushSubscription, error) {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT endpoint, p256dh, auth, expires_at, created_at
		  FROM push_subscriptions WHERE user_id = $1 ORDER BY created_at, endpoint`, user)
	if err != nil {
		return nil, wrap("list push subscriptions", err)
	}
	subs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*cg.PushSubscription, error) {
		sub := new(cg.PushSubscription)
		err := row.Scan(&sub.Endpoint, &sub.P256dh, &sub.Auth, &sub.ExpiresAt, &sub.CreatedAt)
		return sub, err
	})
	return subs, wrap("list push subscriptions", err)
}

// DeletePushSubscription implements cg.PushSubscriptionStore.
func (s *PushSubscriptionStore) DeletePushSubscription(ctx context.Context, user cg.UserID, endpoint string) error {
	tag, err := s.db.Pool.Exec(ctx, `DELETE FROM push_subscriptions WHERE user_id = $1 AND endpoint = $2`, user, endpoint)
	if err != nil {
		return wrap("delete push subscription", err)
	}
	if tag.RowsAffected() == 0 {
		return cg.Errorf(cg.ENOTFOUND, "You have no subscription with this endpoint.")
	}
	return nil
}

// RemovePushSubscription implements cg.PushSubscriptionStore.
func (s *PushSubscriptionStore) RemovePushSubscription(ctx context.Context, endpoint string, p256dh []byte) error {
	_, err := s.db.Pool.Exec(ctx, `DELETE FROM push_subscriptions WHERE endpoint = $1 AND p256dh = $2`, endpoint, p256dh)
	return wrap("remove push subscription", err)
}
