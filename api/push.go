package api

import (
	"net/http"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// WebPush is the Web Push service as the routes see it.
type WebPush interface {
	// PublicKey returns the VAPID public key, base64url: the applicationServerKey browsers
	// subscribe with.
	PublicKey() string
	// ParseSubscription checks a browser's subscription. Errors: invalid_endpoint,
	// endpoint_not_allowed, invalid_push_key, invalid.
	ParseSubscription(endpoint, p256dh, auth string, expirationTime *float64) (*cg.PushSubscription, error)
}

// pushSubscription is a subscription as its owner sees it: without its keys.
type pushSubscription struct {
	Endpoint       string     `json:"endpoint"`
	ExpirationTime *time.Time `json:"expiration_time"`
	CreatedAt      time.Time  `json:"created_at"`
}

func viewSubscription(s *cg.PushSubscription) pushSubscription {
	return pushSubscription{Endpoint: s.Endpoint, ExpirationTime: s.ExpiresAt, CreatedAt: s.CreatedAt}
}

// errPushDisabled answers the routes that need Web Push when the server has none.
func errPushDisabled() error {
	return cg.Errorf(cg.EPUSHDISABLED, "This server does not send Web Push notifications.")
}

// handlePushKey returns the VAPID public key browsers subscribe with.
func (s *Server) handlePushKey() http.Handler {
	type reply struct {
		PublicKey string `json:"public_key"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Push == nil {
			s.writeError(w, r, errPushDisabled())
			return
		}
		writeJSON(w, http.StatusOK, reply{PublicKey: s.Push.PublicKey()})
	})
}

// handleSavePushSubscription stores the browser subscription in the body, as
// PushSubscription.toJSON() gives it, for the caller's session.
func (s *Server) handleSavePushSubscription() http.Handler {
	type request struct {
		Endpoint       string   `json:"endpoint"`
		ExpirationTime *float64 `json:"expirationTime"`
		Keys           struct {
			P256dh string `json:"p256dh"`
			Auth   string `json:"auth"`
		} `json:"keys"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.Push == nil {
			s.writeError(w, r, errPushDisabled())
			return
		}
		var req request
		if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		sub, err := s.Push.ParseSubscription(req.Endpoint, req.Keys.P256dh, req.Keys.Auth, req.ExpirationTime)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		sess := sessionOf(r)
		if err := s.PushSubscriptions.SavePushSubscription(r.Context(), sess.UserID, sess.ID, sub, cg.MaxPushSubscriptions); err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, viewSubscription(sub))
	})
}

// handleListPushSubscriptions returns the caller's subscriptions, without their keys.
func (s *Server) handleListPushSubscriptions() http.Handler {
	type reply struct {
		Subscriptions []pushSubscription `json:"subscriptions"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		subs, err := s.PushSubscriptions.ListPushSubscriptions(r.Context(), sessionOf(r).UserID)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out := reply{Subscriptions: make([]pushSubscription, 0, len(subs))}
		for _, sub := range subs {
			out.Subscriptions = append(out.Subscriptions, viewSubscription(sub))
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// handleDeletePushSubscription deletes the caller's subscription whose endpoint is the query's
// endpoint parameter.
func (s *Server) handleDeletePushSubscription() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endpoint := r.URL.Query().Get("endpoint")
		if endpoint == "" || !cg.StorableText(endpoint) {
			s.writeError(w, r, cg.Errorf(cg.EINVALIDENDPOINT, "Name the subscription to delete: ?endpoint=<its endpoint, URL-encoded>."))
			return
		}
		if err := s.PushSubscriptions.DeletePushSubscription(r.Context(), sessionOf(r).UserID, endpoint); err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	})
}
