package auth

import (
	"context"
	"crypto/sha256"
	"time"

	"github.com/google/uuid"

	cg "github.com/commongrounds/commongrounds"
)

// SessionStore keeps sessions. FindSession returns unauthorized for a missing or expired session.
type SessionStore interface {
	CreateSession(ctx context.Context, id cg.SessionID, user cg.UserID, tokenHash []byte, expiresAt time.Time) error
	FindSession(ctx context.Context, id cg.SessionID, tokenHash []byte) (*cg.Session, error)
	TouchSession(ctx context.Context, id cg.SessionID) error
	DeleteSession(ctx context.Context, id cg.SessionID) error
}

// Sessions issues and checks session tokens. A token is a JWT naming a session row; the row must
// still exist, so a revoked session is refused at once.
type Sessions struct {
	Store  SessionStore
	Signer *Signer
	// TTL is the lifetime of a new session. Default: 30 days.
	TTL time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

func (s *Sessions) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// HashToken returns the SHA-256 of a token: what the database keeps instead of the token.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// Create starts a session for user and returns its token and expiry.
func (s *Sessions) Create(ctx context.Context, user cg.UserID) (token string, sid cg.SessionID, expiresAt time.Time, err error) {
	ttl := s.TTL
	if ttl == 0 {
		ttl = 30 * 24 * time.Hour
	}
	sid = cg.SessionID(uuid.NewString())
	expiresAt = s.now().Add(ttl).UTC().Truncate(time.Second)
	token, err = s.Signer.Sign(string(sid), string(user), expiresAt)
	if err != nil {
		return "", "", time.Time{}, err
	}
	if err := s.Store.CreateSession(ctx, sid, user, HashToken(token), expiresAt); err != nil {
		return "", "", time.Time{}, err
	}
	return token, sid, expiresAt, nil
}

// Authenticate checks a bearer token and returns its session; unauthorized for any token that
// is malformed, badly signed, expired or revoked.
func (s *Sessions) Authenticate(ctx context.Context, token string) (*cg.Session, error) {
	sid, sub, _, err := s.Signer.Verify(token)
	if err != nil {
		return nil, cg.Errorf(cg.EUNAUTHORIZED, "Sign in first.")
	}
	sess, err := s.Store.FindSession(ctx, cg.SessionID(sid), HashToken(token))
	if err != nil {
		return nil, err
	}
	if string(sess.UserID) != sub {
		return nil, cg.Errorf(cg.EUNAUTHORIZED, "Sign in first.")
	}
	if s.now().Sub(sess.LastUsed) > time.Minute {
		if err := s.Store.TouchSession(ctx, sess.ID); err != nil {
			return nil, err
		}
	}
	return sess, nil
}

// Revoke ends the session.
func (s *Sessions) Revoke(ctx context.Context, sid cg.SessionID) error {
	return s.Store.DeleteSession(ctx, sid)
}
