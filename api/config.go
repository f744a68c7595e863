package api

import "net/http"

// Where sign-in links go, in ClientConfig.SignInLinks.
const (
	// SignInLinksEmail: links are e-mailed.
	SignInLinksEmail = "email"
	// SignInLinksServerOutput: there is no mail server (development); the server prints each
	// link in its output.
	SignInLinksServerOutput = "server_output"
)

// ClientConfig is what a client may know of the server before signing in: GET /api/v1/config.
type ClientConfig struct {
	// EmailDomain is the domain users sign in from, such as virginia.edu.
	EmailDomain string `json:"email_domain"`
	// SignInLinks is SignInLinksEmail or SignInLinksServerOutput. Default: SignInLinksEmail.
	SignInLinks string `json:"sign_in_links"`
}

// handleConfig answers the client configuration; it needs no session.
func (s *Server) handleConfig() http.Handler {
	c := s.ClientConfig
	if c.SignInLinks == "" {
		c.SignInLinks = SignInLinksEmail
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		writeJSON(w, http.StatusOK, c)
	})
}
