package commongrounds

import (
	"context"
	"time"
)

// Codes of Web Push subscriptions.
const (
	EPUSHDISABLED         = "push_disabled"          // the server has no Web Push (no VAPID key, or PUSH_ENABLED=false)
	EINVALIDENDPOINT      = "invalid_endpoint"       // a subscription endpoint that is not an absolute https URL of sane length
	EENDPOINTNOTALLOWED   = "endpoint_not_allowed"   // an endpoint on a host outside PUSH_ALLOWED_HOSTS
	EINVALIDPUSHKEY       = "invalid_push_key"       // keys.p256dh or keys.auth that is not what the Push API gives
	ETOOMANYSUBSCRIPTIONS = "too_many_subscriptions" // a user's subscriptions at the limit
)

// MaxPushSubscriptions is how many Web Push subscriptions (browsers, devices) a user may hold.
const MaxPushSubscriptions = 10

// PushSubscription is a browser's Web Push subscription, as the Push API's PushSubscription
// gives it: the push service's URL for the browser, and the keys that encrypt what is sent to it
// (RFC 8291). The endpoint is a capability: whoever knows it and the keys can reach the device.
type PushSubscription struct {
	Endpoint string
	// P256dh is the browser's P-256 public key, a 65-byte uncompressed point.
	P256dh []byte
	// Auth is the 16-byte authentication secret.
	Auth []byte
	// ExpiresAt is when the browser said the subscription ends; nil when it did not say.
	ExpiresAt *time.Time
	CreatedAt time.Time
}

// PushSubscriptionStore keeps the Web Push subscriptions of users. A subscription belongs to
// the session that registered it, and ends with it (sign-out, expiry, account deletion).
type PushSubscriptionStore interface {
	// SavePushSubscription stores sub for the user's session and sets its CreatedAt (kept when
	// the user saves the endpoint again). An endpoint already stored is
	// replaced, whoever registered it: a browser has one subscription per server, and the
	// account signed in last is the one it is for. Errors: too_many_subscriptions, when the user
	// already holds max other subscriptions.
	SavePushSubscription(ctx context.Context, user UserID, session SessionID, sub *PushSubscription, max int) error
	// ListPushSubscriptions returns the user's subscriptions, oldest first.
	ListPushSubscriptions(ctx context.Context, user UserID) ([]*PushSubscription, error)
	// DeletePushSubscription deletes the user's subscription with the endpoint.
	// Errors: not_found.
	DeletePushSubscription(ctx context.Context, user UserID, endpoint string) error
	// RemovePushSubscription deletes the subscription with the endpoint and the key p256dh,
	// whoever holds it: its push service said it is gone. A subscription registered again
	// with new keys in the meantime stays.
	RemovePushSubscription(ctx context.Context, endpoint string, p256dh []byte) error
}
