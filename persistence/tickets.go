package persistence

import (
	"context"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// TicketStore stores single-use WebSocket tickets by the SHA-256 of the ticket.
type TicketStore struct{ db *DB }

// NewTicketStore returns the ticket store of db.
func NewTicketStore(db *DB) *TicketStore { return &TicketStore{db: db} }

// CreateTicket stores a ticket of the session sid that expires at expiresAt.
func (s *TicketStore) CreateTicket(ctx context.Context, ticketHash []byte, sid cg.SessionID, expiresAt time.Time) error {
	_, err := s.db.Pool.Exec(ctx, `INSERT INTO ws_tickets (ticket_hash, session_id, expires_at) VALUES ($1, $2, $3)`,
		ticketHash, sid, expiresAt)
	return wrap("create ticket", err)
}

// RedeemTicket marks the unused ticket with ticketHash that is unexpired at now as used, and
// returns its session if the session is still valid; unauthorized otherwise. One statement does
// both, so a ticket works once even when it is presented many times at once.
func (s *TicketStore) RedeemTicket(ctx context.Context, ticketHash []byte, now time.Time) (*cg.Session, error) {
	var ss cg.Session
	err := s.db.Pool.QueryRow(ctx, `
		WITH t AS (
			UPDATE ws_tickets SET used = true
			 WHERE ticket_hash = $1 AND used = false AND expires_at > $2
			RETURNING session_id)
		SELECT s.id, s.user_id, u.role, s.expires_at, s.last_used_at
		  FROM t JOIN sessions s ON s.id = t.session_id JOIN users u ON u.id = s.user_id
		 WHERE s.expires_at > $2`, ticketHash, now).
		Scan(&ss.ID, &ss.UserID, &ss.Role, &ss.ExpiresAt, &ss.LastUsed)
	if err != nil {
		return nil, notFound("redeem ticket", err, cg.EUNAUTHORIZED, "The ticket is not valid any more; ask for a new one.")
	}
	return &ss, nil
}
