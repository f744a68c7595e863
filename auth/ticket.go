package auth

import (
	"context"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// TicketStore keeps WebSocket tickets by the SHA-256 of the ticket.
type TicketStore interface {
	// CreateTicket stores a ticket of the session sid.
	CreateTicket(ctx context.Context, ticketHash []byte, sid cg.SessionID, expiresAt time.Time) error
	// RedeemTicket marks the unused ticket, unexpired at now, as used and returns the session it
	// belongs to if that session is still valid, atomically; unauthorized otherwise.
	RedeemTicket(ctx context.Context, ticketHash []byte, now time.Time) (*cg.Session, error)
}

// Tickets issues single-use WebSocket tickets, for browsers, which cannot set an Authorization
// header on a WebSocket: a ticket stands for the session that asked for it, once, for a short
// time.
type Tickets struct {
	Store TicketStore
	// Limiter counts the tickets each session asks for. Optional: without it, none is counted.
	Limiter Limiter
	// PerSession limits the tickets a session may ask for. Default: DefaultTicketsPerSession. A
	// negative Limit means no limit.
	PerSession Rate
	// TTL is the lifetime of a ticket. Default: 60 s.
	TTL time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

func (t *Tickets) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// DefaultTicketsPerSession is how many tickets a session may ask for by default: a browser asks
// for one each time it opens its socket, so this allows a reconnection every two seconds.
var DefaultTicketsPerSession = Rate{Limit: 30, Window: time.Minute}

// Issue returns a new ticket of the session sid and its expiry; rate_limited past PerSession.
func (t *Tickets) Issue(ctx context.Context, sid cg.SessionID) (string, time.Time, error) {
	if t.Limiter != nil {
		if err := t.Limiter.Allow(ctx, "ticket:"+string(sid), 1, orRate(t.PerSession, DefaultTicketsPerSession)); err != nil {
			return "", time.Time{}, err
		}
	}
	ticket, err := newToken()
	if err != nil {
		return "", time.Time{}, err
	}
	ttl := t.TTL
	if ttl == 0 {
		ttl = time.Minute
	}
	exp := t.now().Add(ttl).UTC().Truncate(time.Millisecond)
	if err := t.Store.CreateTicket(ctx, HashToken(ticket), sid, exp); err != nil {
		return "", time.Time{}, err
	}
	return ticket, exp, nil
}

// Redeem uses a ticket and returns its session; unauthorized for a ticket that is unknown,
// used or expired, or whose session has ended.
func (t *Tickets) Redeem(ctx context.Context, ticket string) (*cg.Session, error) {
	if !wellFormedToken(ticket) {
		return nil, cg.Errorf(cg.EUNAUTHORIZED, "The ticket is not valid; ask for a new one.")
	}
	return t.Store.RedeemTicket(ctx, HashToken(ticket), t.now())
}
