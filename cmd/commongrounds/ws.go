package main

import (
	"net/http"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/api"
	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/hub"
)

// wsAuthenticator authenticates a socket by its bearer token or, for browsers that cannot set
// headers on a WebSocket, by a single-use ticket.
func wsAuthenticator(sessions *auth.Sessions, tickets *auth.Tickets) hub.Authenticator {
	return func(r *http.Request) (*cg.Session, error) {
		if token, ok := api.BearerToken(r); ok {
			return sessions.Authenticate(r.Context(), token)
		}
		if ticket := r.URL.Query().Get("ticket"); ticket != "" {
			return tickets.Redeem(r.Context(), ticket)
		}
		return nil, cg.Errorf(cg.EUNAUTHORIZED, "Authenticate with Authorization: Bearer <token> or ?ticket=<ws-ticket>.")
	}
}
