// Package auth signs people in: magic links, sessions carried as JWTs, WebSocket tickets, phone
// verification and the rate limits that guard them. It depends on the domain and on persistence
// only through the store types it is given.
package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/commongrounds/commongrounds/config"
)

// Token claims, checked on every request.
const (
	tokenType = "session"
	issuer    = "commongrounds"
	audience  = "commongrounds-api"
)

// ErrInvalidToken is returned by Verify for every token it refuses, whatever the reason.
var ErrInvalidToken = errors.New("invalid token")

// claims are the claims of a session token. sid names the session row, which must still exist.
type claims struct {
	Type      string `json:"typ"`
	SessionID string `json:"sid"`
	jwt.RegisteredClaims
}

// Signer signs session tokens with the newest key and verifies them with any configured key.
type Signer struct {
	keys   []config.Key
	parser *jwt.Parser
	now    func() time.Time
}

// NewSigner returns a signer for keys, newest first. Every key must be at least
// config.MinKeyBytes long.
func NewSigner(keys []config.Key, now func() time.Time) (*Signer, error) {
	if len(keys) == 0 {
		return nil, errors.New("no JWT keys")
	}
	for _, k := range keys {
		if len(k.Secret) < config.MinKeyBytes {
			return nil, fmt.Errorf("JWT key %q has %d bytes, want at least %d", k.ID, len(k.Secret), config.MinKeyBytes)
		}
	}
	if now == nil {
		now = time.Now
	}
	return &Signer{
		keys: keys,
		now:  now,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithAudience(audience),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithTimeFunc(now),
			jwt.WithLeeway(5*time.Second),
		),
	}, nil
}

// Sign returns a token for the session sid of user sub, valid until exp.
func (s *Signer) Sign(sid, sub string, exp time.Time) (string, error) {
	now := s.now()
	t := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		Type:      tokenType,
		SessionID: sid,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	})
	t.Header["kid"] = s.keys[0].ID
	signed, err := t.SignedString(s.keys[0].Secret)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return signed, nil
}

// Verify checks the token's algorithm, signature, key id and claims, and returns the session id
// and the subject.
func (s *Signer) Verify(token string) (sid, sub string, exp time.Time, err error) {
	var c claims
	_, err = s.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		for _, k := range s.keys {
			if k.ID == kid {
				return k.Secret, nil
			}
		}
		return nil, errors.New("unknown key id")
	})
	if err != nil {
		return "", "", time.Time{}, ErrInvalidToken
	}
	if c.Type != tokenType || c.SessionID == "" || c.Subject == "" || c.IssuedAt == nil {
		return "", "", time.Time{}, ErrInvalidToken
	}
	return c.SessionID, c.Subject, c.ExpiresAt.Time, nil
}
