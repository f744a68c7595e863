package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	cg "github.com/commongrounds/commongrounds"
)

// ServeHTTP upgrades GET /ws to a socket after checking, before the upgrade, the origin, the
// session and the user's socket count; refusals are problem+json replies.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin != "" && !slices.Contains(h.opts.AllowedOrigins, strings.TrimRight(origin, "/")) {
		problem(w, http.StatusForbidden, cg.EFORBIDDEN, "This origin may not open sockets.", 0)
		return
	}
	if !headerHasToken(r.Header, "Connection", "upgrade") || !headerHasToken(r.Header, "Upgrade", "websocket") {
		// The library would answer this in text/plain, after the session's lookup.
		w.Header().Set("Connection", "Upgrade")
		w.Header().Set("Upgrade", "websocket")
		problem(w, http.StatusUpgradeRequired, "upgrade_required", "GET /ws opens a WebSocket: send Connection: Upgrade and Upgrade: websocket.", 0)
		return
	}
	sess, err := h.auth(r)
	if err != nil {
		code := cg.ErrorCode(err)
		switch code {
		case cg.EUNAVAILABLE:
			h.opts.Logger.Warn("authenticate socket", "err", err)
		case cg.EINTERNAL:
			h.opts.Logger.Error("authenticate socket", "err", err)
		default:
			code = cg.EUNAUTHORIZED
		}
		problem(w, cg.HTTPStatus(code), code, cg.ErrorMessage(err), 0)
		return
	}
	id := newSocketID()
	if err := h.reserve(r.Context(), sess, id); err != nil {
		var appErr *cg.Error
		errors.As(err, &appErr) // rate_limited or unavailable
		problem(w, cg.HTTPStatus(appErr.Code), appErr.Code, appErr.Message, appErr.RetryAfterMs)
		return
	}
	tcp := corkOf(r.Context())
	if h.opts.DisableParking {
		tcp = nil
	}
	rw, sb := withSmallBuffers(w, tcp != nil)
	c := &socket{id: id} // its transport is set before the library reads anything
	ws, err := websocket.Accept(rw, r, &websocket.AcceptOptions{
		// scheme://host patterns, which the library matches exactly.
		OriginPatterns:  h.opts.AllowedOrigins,
		CompressionMode: websocket.CompressionDisabled,
		// Pongs the parked reader does not take (park.go) reach the library's reader.
		OnPongReceived: func(context.Context, []byte) { c.t.pong() },
	})
	if err != nil {
		h.unreserve(sess.UserID, id)
		return // Accept has answered the request
	}
	c.t.hub, c.t.ws, c.t.tcp, c.t.expires, c.t.recv = h, ws, tcp, sess.ExpiresAt, c
	c.s.t, c.s.deps, c.s.auth = &c.t, h.sessions, sess
	if !h.opts.DisableParking {
		c.t.br = sb.Reader() // peeked at and swapped beneath the library (wsinternals.go)
	}
	if tcp != nil {
		tcp.setTimeout(h.opts.WriteTimeout)
		c.t.raw = rawConnOf(tcp.Conn)
	}
	if !h.add(c) {
		h.unreserve(sess.UserID, id)
		_ = ws.Close(CloseServiceRestart, "server restart")
		return
	}
	h.metrics.connects.Inc()
	// The socket's reader runs on goroutines of its own and this one, with the HTTP server's
	// deeper stack under it, ends: an idle socket then holds one small stack.
	go c.t.run(true)
}

// problem writes an RFC 9457 problem reply.
func problem(w http.ResponseWriter, status int, code, detail string, retryAfterMs int64) {
	w.Header().Set("Content-Type", "application/problem+json")
	if retryAfterMs > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt((retryAfterMs+999)/1000, 10))
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "about:blank", "title": http.StatusText(status), "status": status, "code": code, "detail": detail,
	})
}

// headerHasToken reports whether a comma-separated header has token, in any case.
func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// newSocketID returns a random id for a socket.
func newSocketID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
