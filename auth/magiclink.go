package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/url"
	"strings"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// MagicLinkStore keeps magic links by the SHA-256 of their token.
type MagicLinkStore interface {
	// CreateMagicLink stores a link for email.
	CreateMagicLink(ctx context.Context, email string, tokenHash []byte, expiresAt time.Time) error
	// RedeemMagicLink marks the unused link with tokenHash, unexpired at now, as used and returns
	// its e-mail address, atomically; invalid_token when there is no such link.
	RedeemMagicLink(ctx context.Context, tokenHash []byte, now time.Time) (string, error)
}

// UserCreator finds or creates the account of a verified address.
type UserCreator interface {
	UpsertVerifiedUser(ctx context.Context, email, computingID string) (*cg.User, error)
}

// The default limits of sign-in.
var (
	DefaultMagicLinkPerEmail = Rate{Limit: 5, Window: 15 * time.Minute}
	DefaultMagicLinkPerIP    = Rate{Limit: 30, Window: 15 * time.Minute}
	DefaultVerifyPerIP       = Rate{Limit: 60, Window: 15 * time.Minute}
)

// MagicLinks signs users in with single-use links sent to their university address.
type MagicLinks struct {
	Store    MagicLinkStore
	Users    UserCreator
	Sessions *Sessions
	Mailer   Mailer
	Limiter  Limiter
	// Domain is the only e-mail domain accepted, such as virginia.edu.
	Domain string
	// BaseURL is the public address of the server; links point to BaseURL + "/auth/verify".
	BaseURL string
	// TTL is the lifetime of a link. Default: 15 minutes.
	TTL time.Duration
	// PerEmail, PerIP and VerifyPerIP limit link requests per address and per client, and
	// redemptions per client. Defaults: DefaultMagicLinkPerEmail, DefaultMagicLinkPerIP and
	// DefaultVerifyPerIP. A zero Limit means the default; a negative one, no limit.
	PerEmail, PerIP, VerifyPerIP Rate
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// SignIn is the result of a redeemed link: a session token and the signed-in user.
type SignIn struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      *cg.User  `json:"user"`
}

func (m *MagicLinks) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

func orRate(r, def Rate) Rate {
	if r.Limit == 0 {
		return def
	}
	return r
}

// limitKey returns a rate-limit key for a personal value without putting the value itself in
// the counter store.
func limitKey(kind, value string) string {
	h := sha256.Sum256([]byte(value))
	return kind + ":" + hex.EncodeToString(h[:16])
}

// newToken returns 32 random bytes, base64url-encoded without padding.
func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// wellFormedToken reports whether s could be a token of newToken, so that anything else is
// refused without a query.
func wellFormedToken(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

// Request sends a sign-in link to address, from a client at ip. It answers the same way, and
// does the same work, whether or not the address has an account: the account is created only
// when the link is used. It returns invalid_email for an address outside the domain,
// rate_limited, or unavailable when the mail cannot be queued.
func (m *MagicLinks) Request(ctx context.Context, address, ip string) error {
	email, err := NormalizeEmail(address, m.Domain)
	if err != nil {
		return err
	}
	if err := m.Limiter.Allow(ctx, limitKey("ml:ip", ip), 1, orRate(m.PerIP, DefaultMagicLinkPerIP)); err != nil {
		return err
	}
	if err := m.Limiter.Allow(ctx, limitKey("ml:email", email), 1, orRate(m.PerEmail, DefaultMagicLinkPerEmail)); err != nil {
		return err
	}
	token, err := newToken()
	if err != nil {
		return err
	}
	ttl := m.TTL
	if ttl == 0 {
		ttl = 15 * time.Minute
	}
	if err := m.Store.CreateMagicLink(ctx, email, HashToken(token), m.now().Add(ttl)); err != nil {
		return err
	}
	link := m.BaseURL + "/auth/verify?token=" + url.QueryEscape(token)
	msg, err := signInMail(email, link, ttl)
	if err != nil {
		return err
	}
	return m.Mailer.Enqueue(msg)
}

// Redeem uses the token of a link, from a client at ip: it creates the account on its first
// sign-in, marks the address verified and starts a session. It returns invalid_token for a
// token that is unknown, used or expired (only one of any number of concurrent redemptions of
// a token succeeds), and rate_limited.
func (m *MagicLinks) Redeem(ctx context.Context, token, ip string) (*SignIn, error) {
	if err := m.Limiter.Allow(ctx, limitKey("verify:ip", ip), 1, orRate(m.VerifyPerIP, DefaultVerifyPerIP)); err != nil {
		return nil, err
	}
	if !wellFormedToken(token) {
		return nil, cg.Errorf(cg.EINVALIDTOKEN, "This sign-in link is not valid; ask for a new one.")
	}
	email, err := m.Store.RedeemMagicLink(ctx, HashToken(token), m.now())
	if err != nil {
		return nil, err
	}
	user, err := m.Users.UpsertVerifiedUser(ctx, email, ComputingID(email))
	if err != nil {
		return nil, err
	}
	jwt, _, exp, err := m.Sessions.Create(ctx, user.ID)
	if err != nil {
		return nil, err
	}
	return &SignIn{Token: jwt, ExpiresAt: exp, User: user}, nil
}

var signInHTML = template.Must(template.New("mail").Parse(`<!doctype html>
<html><body style="font-family:sans-serif">
<p>Hello,</p>
<p><a href="{{.Link}}">Sign in to Common Grounds</a></p>
<p>Or copy this address into your browser:<br>{{.Link}}</p>
<p>The link works once and expires in {{.Minutes}} minutes. If you did not ask to sign in, ignore this e-mail.</p>
</body></html>
`))

// signInMail returns the e-mail carrying link.
func signInMail(to, link string, ttl time.Duration) (Mail, error) {
	minutes := int(ttl.Minutes())
	var html bytes.Buffer
	if err := signInHTML.Execute(&html, struct {
		Link    string
		Minutes int
	}{link, minutes}); err != nil {
		return Mail{}, fmt.Errorf("sign-in mail: %w", err)
	}
	text := strings.Join([]string{
		"Hello,",
		"",
		"Open this link to sign in to Common Grounds:",
		"",
		link,
		"",
		fmt.Sprintf("The link works once and expires in %d minutes. If you did not ask to sign in, ignore this e-mail.", minutes),
		"",
	}, "\n")
	return Mail{To: to, Subject: "Sign in to Common Grounds", Text: text, HTML: html.String()}, nil
}
