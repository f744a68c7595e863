package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"time"

	"github.com/nyaruka/phonenumbers"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/config"
)

// DefaultPhoneRegion is the region of numbers written without a country code.
const DefaultPhoneRegion = "US"

// maxPhoneLength bounds the text of one number before it is parsed.
const maxPhoneLength = 64

// NormalizePhone parses a phone number as people write it ("+1 434 555 0100", "(434) 555-0100")
// and returns it in E.164 form ("+14345550100"); invalid_phone when it is not a valid number.
// Numbers without a country code are taken to be in DefaultPhoneRegion.
func NormalizePhone(raw string) (string, error) {
	bad := cg.Errorf(cg.EINVALIDPHONE, "That is not a valid phone number.")
	if raw == "" || len(raw) > maxPhoneLength {
		return "", bad
	}
	n, err := phonenumbers.Parse(raw, DefaultPhoneRegion)
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return "", bad
	}
	return phonenumbers.Format(n, phonenumbers.E164), nil
}

// PhoneHasher computes the keyed hashes that stand for phone numbers in the database:
// HMAC-SHA256(pepper, E.164 number). The peppers are versioned, newest first: new hashes use the
// newest, and lookups try every version, so that peppers can rotate.
type PhoneHasher struct {
	versions []int
	peppers  [][]byte
}

// NewPhoneHasher returns a hasher of peppers, newest first; each ID is the pepper's version
// number and each secret at least config.MinKeyBytes long.
func NewPhoneHasher(peppers []config.Key) (*PhoneHasher, error) {
	if len(peppers) == 0 {
		return nil, errors.New("no phone peppers")
	}
	h := &PhoneHasher{}
	for _, p := range peppers {
		v, err := strconv.Atoi(p.ID)
		if err != nil {
			return nil, fmt.Errorf("phone pepper version %q is not a number", p.ID)
		}
		if len(p.Secret) < config.MinKeyBytes {
			return nil, fmt.Errorf("phone pepper %d has %d bytes, want at least %d", v, len(p.Secret), config.MinKeyBytes)
		}
		h.versions = append(h.versions, v)
		h.peppers = append(h.peppers, p.Secret)
	}
	return h, nil
}

func keyedHash(key []byte, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

// Hash returns the hash of an E.164 number under the newest pepper, and that pepper's version.
func (h *PhoneHasher) Hash(e164 string) ([]byte, int) {
	m := hmac.New(sha256.New, h.peppers[0])
	m.Write([]byte(e164))
	return m.Sum(nil), h.versions[0]
}

// HashAll returns the hashes of an E.164 number under every pepper, newest first.
func (h *PhoneHasher) HashAll(e164 string) [][]byte {
	out := make([][]byte, len(h.peppers))
	for i, p := range h.peppers {
		m := hmac.New(sha256.New, p)
		m.Write([]byte(e164))
		out[i] = m.Sum(nil)
	}
	return out
}

// codeHash returns the keyed hash of a verification code of user: what the database keeps,
// so that a copy of it does not give the pending codes away.
func (h *PhoneHasher) codeHash(user cg.UserID, code string) []byte {
	return keyedHash(h.peppers[0], "phone-code", string(user), code)
}

// PhoneStore keeps pending phone verifications.
type PhoneStore interface {
	// SavePhoneVerification replaces the pending verification of user.
	SavePhoneVerification(ctx context.Context, user cg.UserID, phoneHash []byte, pepperVersion int, codeHash []byte, expiresAt time.Time) error
	// VerifyPhoneCode checks codeHash against the pending verification of user at now. On a
	// match it gives the user the verified number (taking it from any other account that had
	// it) and ends the verification. Otherwise it counts a wrong try, voids the verification
	// after maxAttempts of them, and returns invalid_code, as it does when none is pending or it
	// has expired.
	VerifyPhoneCode(ctx context.Context, user cg.UserID, codeHash []byte, now time.Time, maxAttempts int) error
}

// The default limits of phone verification and contact matching.
var (
	DefaultPhoneCodesPerUser = Rate{Limit: 5, Window: time.Hour}
	DefaultContactsPerDay    = Rate{Limit: 10000, Window: 24 * time.Hour}
)

// Phones verifies users' phone numbers with a code sent by text message, and turns contact
// lists into hashes that can be matched against verified numbers. Phone numbers exist in clear
// only in memory, on their way to the hasher and the SMS sender: they are never stored or
// logged.
type Phones struct {
	Store   PhoneStore
	Hasher  *PhoneHasher
	SMS     SMSSender
	Limiter Limiter
	// Quotas, when set, counts codes and contact lookups per e-mail address, so that a deleted
	// and re-created account does not start afresh. Optional: without it they are counted per
	// user id in Limiter.
	Quotas *Quotas
	// CodeTTL is the lifetime of a code. Default: 10 minutes.
	CodeTTL time.Duration
	// MaxAttempts is the number of wrong tries that voids a code. Default: 5.
	MaxAttempts int
	// MaxContacts bounds the numbers of one contact lookup. Default: 2000.
	MaxContacts int
	// CodesPerUser limits the codes sent to one user; ContactsPerDay the numbers one user may
	// look up. Defaults: DefaultPhoneCodesPerUser and DefaultContactsPerDay. A zero Limit means
	// the default; a negative one, no limit.
	CodesPerUser, ContactsPerDay Rate
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

func (p *Phones) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// allow counts n events of action by user, per e-mail address when Quotas is set.
func (p *Phones) allow(ctx context.Context, user cg.UserID, action string, n int, rate Rate) error {
	if p.Quotas != nil {
		return p.Quotas.Allow(ctx, user, action, n, rate)
	}
	return p.Limiter.Allow(ctx, action+":user:"+string(user), n, rate)
}

// newCode returns six random decimal digits.
func newCode() (string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		return "", fmt.Errorf("random code: %w", err)
	}
	return fmt.Sprintf("%06d", n.Int64()), nil
}

// StartVerification sends a 6-digit code to the number raw, which user proves to own by
// handing the code to Verify. It returns invalid_phone, rate_limited, or unavailable when the
// text message cannot be sent.
func (p *Phones) StartVerification(ctx context.Context, user cg.UserID, raw string) error {
	e164, err := NormalizePhone(raw)
	if err != nil {
		return err
	}
	if err := p.allow(ctx, user, "phone", 1, orRate(p.CodesPerUser, DefaultPhoneCodesPerUser)); err != nil {
		return err
	}
	code, err := newCode()
	if err != nil {
		return err
	}
	ttl := p.CodeTTL
	if ttl == 0 {
		ttl = 10 * time.Minute
	}
	hash, version := p.Hasher.Hash(e164)
	if err := p.Store.SavePhoneVerification(ctx, user, hash, version, p.Hasher.codeHash(user, code), p.now().Add(ttl)); err != nil {
		return err
	}
	body := fmt.Sprintf("Your Common Grounds code is %s. It expires in %d minutes.", code, int(ttl.Minutes()))
	if err := p.SMS.SendSMS(ctx, e164, body); err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return &cg.Error{Code: cg.EUNAVAILABLE, Message: "The text message could not be sent; try again.", RetryAfterMs: 5000}
	}
	return nil
}

// Verify checks the code user received and, when it is right, marks the number verified. It
// returns invalid_code for a wrong, expired or voided code.
func (p *Phones) Verify(ctx context.Context, user cg.UserID, code string) error {
	if len(code) != 6 {
		return cg.Errorf(cg.EINVALIDCODE, "The code is six digits.")
	}
	for i := 0; i < len(code); i++ {
		if code[i] < '0' || code[i] > '9' {
			return cg.Errorf(cg.EINVALIDCODE, "The code is six digits.")
		}
	}
	maxAttempts := p.MaxAttempts
	if maxAttempts == 0 {
		maxAttempts = 5
	}
	return p.Store.VerifyPhoneCode(ctx, user, p.Hasher.codeHash(user, code), p.now(), maxAttempts)
}

// ContactHashes turns a contact list of user into the hashes of its valid numbers under every
// pepper version, skipping numbers that do not parse and repeats. It returns too_many_phones
// for a list over MaxContacts and rate_limited when the user's daily quota of numbers is spent.
func (p *Phones) ContactHashes(ctx context.Context, user cg.UserID, phones []string) ([][]byte, error) {
	maxContacts := p.MaxContacts
	if maxContacts == 0 {
		maxContacts = 2000
	}
	if len(phones) > maxContacts {
		return nil, cg.Errorf(cg.ETOOMANYPHONES, "At most %d numbers at a time.", maxContacts)
	}
	if len(phones) == 0 {
		return nil, nil
	}
	if err := p.allow(ctx, user, "contacts", len(phones), orRate(p.ContactsPerDay, DefaultContactsPerDay)); err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(phones))
	var hashes [][]byte
	for _, raw := range phones {
		e164, err := NormalizePhone(raw)
		if err != nil || seen[e164] {
			continue
		}
		seen[e164] = true
		hashes = append(hashes, p.Hasher.HashAll(e164)...)
	}
	return hashes, nil
}
