package api

import (
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// handleMagicLink sends a sign-in link. The reply is the same whether or not the address has an
// account.
func (s *Server) handleMagicLink() http.Handler {
	type request struct {
		Email string `json:"email"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.MagicLinks.Request(r.Context(), req.Email, s.clientIP(r)); err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "sent"})
	})
}

// handleVerify redeems the token of a sign-in link for a session.
func (s *Server) handleVerify() http.Handler {
	type request struct {
		Token string `json:"token"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		signIn, err := s.MagicLinks.Redeem(r.Context(), req.Token, s.clientIP(r))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, signIn)
	})
}

// handleLogout ends the caller's session and has its sockets closed.
func (s *Server) handleLogout() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sess := sessionOf(r)
		if err := s.Sessions.Revoke(r.Context(), sess.ID); err != nil {
			s.writeError(w, r, err)
			return
		}
		if s.Revoker != nil {
			// The session is gone already, so the reply stays 204: a retry would only get 401.
			if err := s.Revoker.RevokeSession(r.Context(), sess.ID); err != nil {
				s.logger.ErrorContext(r.Context(), "revoke session sockets", "err", err)
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleWSTicket issues a single-use ticket that opens a WebSocket for the caller's session.
func (s *Server) handleWSTicket() http.Handler {
	type reply struct {
		Ticket    string    `json:"ticket"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ticket, exp, err := s.Tickets.Issue(r.Context(), sessionOf(r).ID)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, reply{Ticket: ticket, ExpiresAt: exp})
	})
}

// verifyPage is the page a sign-in link opens. It uses nothing up by itself (mail scanners fetch
// every link): its script hands the token to the app at "/" in the address's fragment, which
// never reaches a server, and replaces this page in the history, so that Back does not return
// to a used link. The app redeems the token (POST /api/v1/auth/verify) and shows the student
// signed in. The token is read by the script and never echoed by the server.
var verifyPage = template.Must(template.New("verify").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>Sign in to Common Grounds</title>
<style nonce="{{.Nonce}}">
body { font-family: system-ui, sans-serif; max-width: 34rem; margin: 4rem auto; padding: 0 1rem; line-height: 1.5; }
</style>
</head>
<body>
<main>
<h1>Sign in to Common Grounds</h1>
<p id="msg">Signing you in…</p>
<noscript><p>Common Grounds needs JavaScript: turn it on and open the link again.</p></noscript>
</main>
<script nonce="{{.Nonce}}">
(function () {
  var token = new URLSearchParams(window.location.search).get("token") || "";
  if (!token) {
    document.getElementById("msg").textContent = "This link has no sign-in token. Ask for a new sign-in link.";
    return;
  }
  window.location.replace("/#sign_in=" + encodeURIComponent(token));
})();
</script>
</body>
</html>
`))

// handleVerifyPage shows the page of a sign-in link. It never reads or uses the token.
func (s *Server) handleVerifyPage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		nonce := base64.StdEncoding.EncodeToString(b)
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; style-src 'nonce-"+nonce+
			"'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		w.WriteHeader(http.StatusOK)
		if err := verifyPage.Execute(w, struct{ Nonce string }{nonce}); err != nil {
			s.logger.DebugContext(r.Context(), "write verify page", "err", err)
		}
	})
}

// clientIP returns the address that rate limits count a request against: the peer's address,
// or, when the peer is a trusted proxy, the right-most address of X-Forwarded-For that is not
// itself a trusted proxy. IPv6 clients count by their /64, which one subscriber usually holds
// whole.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return r.RemoteAddr
	}
	addr = addr.Unmap()
	if s.trustedProxy(addr) {
		hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(hops) - 1; i >= 0; i-- {
			hop, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
			if err != nil {
				break
			}
			addr = hop.Unmap()
			if !s.trustedProxy(addr) {
				break
			}
		}
	}
	if addr.Is6() {
		if p, err := addr.Prefix(64); err == nil {
			return p.String()
		}
	}
	return addr.String()
}

func (s *Server) trustedProxy(addr netip.Addr) bool {
	for _, p := range s.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
