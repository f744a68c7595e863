package auth

import (
	"context"
	"encoding/hex"
	"strings"

	cg "github.com/commongrounds/commongrounds"
)

// UserFinder finds accounts by id.
type UserFinder interface {
	// FindUserByID returns the user with id; user_not_found if there is none.
	FindUserByID(ctx context.Context, id cg.UserID) (*cg.User, error)
}

// Quotas counts what a user does against limits kept per e-mail address rather than per
// account: the key of a count is a keyed hash of the normalized (lower-case) address, so that
// deleting an account and signing in again with the same address starts where the old account
// stopped. The counts live in the Limiter for their window, whatever happens to the account, and
// the hash keeps the addresses themselves out of it.
type Quotas struct {
	Limiter Limiter
	Users   UserFinder
	// Key keys the address hashes: at least config.MinKeyBytes of secret.
	Key []byte
}

// EmailKey returns the quota key of an e-mail address: hex HMAC-SHA256(Key, address).
func (q *Quotas) EmailKey(email string) string {
	return hex.EncodeToString(keyedHash(q.Key, "quota-email", strings.ToLower(strings.TrimSpace(email))))
}

// Allow records n events of action by user if they fit within rate under the user's address.
// It returns rate_limited when they do not, user_not_found for an unknown user, and unavailable
// when the counters cannot be reached.
func (q *Quotas) Allow(ctx context.Context, user cg.UserID, action string, n int, rate Rate) error {
	u, err := q.Users.FindUserByID(ctx, user)
	if err != nil {
		return err
	}
	return q.Limiter.Allow(ctx, action+":email:"+q.EmailKey(u.Email), n, rate)
}
