package persistence

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	cg "github.com/commongrounds/commongrounds"
)

// MagicLinkStore stores sign-in links by the SHA-256 of their token; the token itself is never
// stored.
type MagicLinkStore struct{ db *DB }

// NewMagicLinkStore returns the magic-link store of db.
func NewMagicLinkStore(db *DB) *MagicLinkStore { return &MagicLinkStore{db: db} }

// CreateMagicLink stores a link for email that expires at expiresAt.
func (s *MagicLinkStore) CreateMagicLink(ctx context.Context, email string, tokenHash []byte, expiresAt time.Time) error {
	_, err := s.db.Pool.Exec(ctx, `INSERT INTO magic_links (email, token_hash, expires_at) VALUES ($1, $2, $3)`,
		email, tokenHash, expiresAt)
	return wrap("create magic link", err)
}

// RedeemMagicLink marks the unused link with tokenHash that is unexpired at now as used, voids
// every other unused link of its address, and returns the address; invalid_token if there is no
// such link. Redemptions of one address's links take the address's unused links in one order,
// so of any number of concurrent redemptions of its links exactly one succeeds.
func (s *MagicLinkStore) RedeemMagicLink(ctx context.Context, tokenHash []byte, now time.Time) (string, error) {
	var email string
	err := pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT email FROM magic_links WHERE token_hash = $1`, tokenHash).Scan(&email)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT id FROM magic_links WHERE email = $1 AND used = false ORDER BY id FOR UPDATE`, email); err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, `
			UPDATE magic_links SET used = true, used_at = $2
			 WHERE token_hash = $1 AND used = false AND expires_at > $2
			RETURNING email`, tokenHash, now).Scan(&email); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE magic_links SET used = true, used_at = $2 WHERE email = $1 AND used = false`, email, now)
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return "", cg.Errorf(cg.EINVALIDTOKEN, "This sign-in link is not valid any more; ask for a new one.")
	}
	if err != nil {
		return "", wrap("redeem magic link", err)
	}
	return email, nil
}
