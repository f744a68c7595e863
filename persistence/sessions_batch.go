package persistence

import (
	"context"

	cg "github.com/commongrounds/commongrounds"
)

// SessionRequest and SessionResult are one call of FindSessions.
type SessionRequest struct {
	ID        cg.SessionID
	TokenHash []byte
}

type SessionResult struct {
	Session *cg.Session
	Err     error
}

// findSessionsSQL is FindSession for many sessions: a row for each request that names an
// unexpired session with its token hash.
const findSessionsSQL = `
SELECT r.ord, s.id, s.user_id, u.role, s.expires_at, s.last_used_at
  FROM unnest($1::text[], $2::bytea[]) WITH ORDINALITY AS r(id, token_hash, ord)
  JOIN sessions s ON s.id = r.id::uuid AND s.token_hash = r.token_hash AND s.expires_at > now()
  JOIN users u ON u.id = s.user_id`

// FindSessions is FindSession for many requests, looked up in one statement. Results are in the
// order of reqs.
func (s *SessionStore) FindSessions(ctx context.Context, reqs []SessionRequest) []SessionResult {
	out := make([]SessionResult, len(reqs))
	if len(reqs) == 1 {
		out[0].Session, out[0].Err = s.FindSession(ctx, reqs[0].ID, reqs[0].TokenHash)
		return out
	}
	var ids []string
	var hashes [][]byte
	var index []int // index[k] is the request of the statement's row k+1
	for i, r := range reqs {
		out[i].Err = errSignIn // until its row is found
		if cg.ValidUUID(string(r.ID)) {
			ids, hashes, index = append(ids, string(r.ID)), append(hashes, r.TokenHash), append(index, i)
		}
	}
	if len(index) == 0 {
		return out
	}
	var ss cg.Session
	err := s.db.eachByOrdinal(ctx, findSessionsSQL, []any{ids, hashes}, index, []any{&ss.ID, &ss.UserID, &ss.Role, &ss.ExpiresAt, &ss.LastUsed}, func(i int) {
		found := ss
		out[i] = SessionResult{Session: &found}
	})
	if err != nil {
		werr := wrap("find sessions", err)
		for _, i := range index {
			out[i] = SessionResult{Err: werr}
		}
	}
	return out
}

// TouchSessions is TouchSession for many sessions. A session that another transaction is
// changing at the moment is left to it (a touch that waited could only write the same time).
func (s *SessionStore) TouchSessions(ctx context.Context, ids []cg.SessionID) error {
	valid := make([]string, 0, len(ids))
	for _, id := range ids {
		if cg.ValidUUID(string(id)) {
			valid = append(valid, string(id))
		}
	}
	_, err := s.db.Pool.Exec(ctx, `
		WITH due AS (
			SELECT id FROM sessions
			 WHERE id = ANY($1::text[]::uuid[]) AND last_used_at < now() - interval '1 minute'
			 ORDER BY id FOR NO KEY UPDATE SKIP LOCKED)
		UPDATE sessions s SET last_used_at = now() FROM due WHERE s.id = due.id`, valid)
	return wrap("touch sessions", err)
}

// BatchingSessionStore is a SessionStore whose FindSession and TouchSession join concurrent
// calls into batches, as BatchingStore does for messages: every request and every socket
// authenticates, and after a restart thousands of sockets do at once.
type BatchingSessionStore struct {
	*SessionStore
	finds   *batcher[SessionRequest, SessionResult]
	touches *batcher[cg.SessionID, error]
}

// NewBatchingSessionStore starts workers workers for each kind of call, each taking up to max
// queued calls at a time. Close stops them.
func NewBatchingSessionStore(s *SessionStore, workers, max int) *BatchingSessionStore {
	return &BatchingSessionStore{
		SessionStore: s,
		finds: newBatcher(workers, max, s.FindSessions, func(err error) SessionResult {
			return SessionResult{Err: wrap("queue session lookup", err)}
		}),
		touches: newBatcher(workers, max, func(ctx context.Context, ids []cg.SessionID) []error {
			err := s.TouchSessions(ctx, ids)
			out := make([]error, len(ids))
			for i := range out {
				out[i] = err
			}
			return out
		}, func(err error) error { return wrap("queue session touch", err) }),
	}
}

// FindSession looks the session up in the next batch.
func (b *BatchingSessionStore) FindSession(ctx context.Context, id cg.SessionID, tokenHash []byte) (*cg.Session, error) {
	res, err := b.finds.do(ctx, SessionRequest{ID: id, TokenHash: tokenHash})
	if err != nil {
		return nil, err
	}
	return res.Session, res.Err
}

// TouchSession records the use of the session in the next batch.
func (b *BatchingSessionStore) TouchSession(ctx context.Context, id cg.SessionID) error {
	err, qerr := b.touches.do(ctx, id)
	if qerr != nil {
		return qerr
	}
	return err
}

// Close stops the workers after the batches under way.
func (b *BatchingSessionStore) Close() { closeTogether(b.finds.close, b.touches.close) }
