// Package api is the HTTP side of Common Grounds: the JSON routes of the contract, the sign-in
// page, health and metrics, and the hand-off of /ws to the hub. Handlers decode, validate, call
// a store or service, and encode; nothing else.
package api

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/rooms"
)

// Deps are what the server needs. Every field is required unless its comment says otherwise.
type Deps struct {
	Logger   *slog.Logger
	DB       *persistence.DB
	Users    *persistence.UserStore
	Sessions *auth.Sessions
	// Rooms publishes, reads and moderates messages.
	Rooms *rooms.Service
	// MagicLinks signs users in by e-mail.
	MagicLinks *auth.MagicLinks
	// Tickets issues single-use WebSocket tickets.
	Tickets *auth.Tickets
	// Phones verifies phone numbers and hashes contact lists.
	Phones *auth.Phones
	// PhoneStore stores contact lists and finds the users in them.
	PhoneStore *persistence.PhoneStore
	// Revoker is told of ended sessions and deleted accounts, so that their sockets close on
	// every instance. Optional: without it there is nobody to tell.
	Revoker Revoker
	// Leaver is told when a user drops a class, so that their sockets leave its room on every
	// instance. Optional.
	Leaver Leaver
	// Classes, Enrollments and Friends store classes, enrollments and friendships. Optional:
	// each is built on DB when nil.
	Classes     *persistence.ClassStore
	Enrollments *persistence.EnrollmentStore
	Friends     *persistence.FriendStore
	// ClassReads serves class search and class details, reads that tolerate a replica's lag.
	// Optional: Classes.
	ClassReads ClassReader
	// TrustedProxies are the reverse proxies whose X-Forwarded-For is believed when finding a
	// client's address for rate limits. Optional: without them the peer address is the client.
	TrustedProxies []netip.Prefix
	// WebSocket serves GET /ws. Optional: without it /ws answers 404.
	WebSocket http.Handler
	// Ready reports whether the dependencies beyond Postgres (Redis) are reachable. Optional.
	Ready func(context.Context) error
	// Registerer takes the HTTP metrics. Optional: the default registerer.
	Registerer prometheus.Registerer
	// AllowedOrigins are the browser origins that get CORS headers.
	AllowedOrigins []string
	// PublicBaseURL is where users reach the server.
	PublicBaseURL string
	// ClientConfig is served at GET /api/v1/config. Optional: the zero value says links are
	// e-mailed.
	ClientConfig ClientConfig
	// Quotas counts enrollment changes and friend requests per e-mail address. Optional: counts
	// in this process under a random key.
	Quotas *auth.Quotas
	// EnrollRate limits a user's enrollment changes (enrolling and dropping). Default: 20 a day.
	EnrollRate auth.Rate
	// FriendRequestRate limits a user's friend requests. Default: 30 an hour.
	FriendRequestRate auth.Rate
	// EraseSpread is the time within which each message of a deleted account whose deletion
	// asked for erasure is erased, at an independent random moment. Default: 72 h.
	EraseSpread time.Duration
	// MaxBodyBytes bounds request bodies. Default: 1 MiB.
	MaxBodyBytes int64
	// BodyReadTimeout bounds the time a request's body may take to arrive, from the end of its
	// headers; a slower one is answered 408 request_timeout and its connection closed.
	// WebSocket upgrades carry no body and are not bounded. Default: DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

// The defaults of the limits in Deps.
var (
	DefaultEnrollRate        = auth.Rate{Limit: 20, Window: 24 * time.Hour}
	DefaultFriendRequestRate = auth.Rate{Limit: 30, Window: time.Hour}
)

// DefaultEraseSpread is the default of Deps.EraseSpread.
const DefaultEraseSpread = 72 * time.Hour

// Leaver ends a user's live subscriptions to a class's room.
type Leaver interface {
	// LeaveRoom ends the user's subscriptions to the class's room.
	LeaveRoom(ctx context.Context, user cg.UserID, class cg.ClassID) error
}

// Revoker ends the live connections of sessions that end: the hub closes their sockets, on
// every instance, with code 4001.
type Revoker interface {
	// RevokeSession closes the sockets of the session sid.
	RevokeSession(ctx context.Context, sid cg.SessionID) error
	// RevokeUser closes the sockets of every session of user.
	RevokeUser(ctx context.Context, user cg.UserID) error
}

// Server is the HTTP handler of the API.
type Server struct {
	Deps
	logger  *slog.Logger
	handler http.Handler
	metrics *httpMetrics
}

// NewServer returns the API with every route of the contract.
func NewServer(d Deps) *Server {
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.Classes == nil {
		d.Classes = persistence.NewClassStore(d.DB)
	}
	if d.ClassReads == nil {
		d.ClassReads = d.Classes
	}
	if d.Enrollments == nil {
		d.Enrollments = persistence.NewEnrollmentStore(d.DB)
	}
	if d.Friends == nil {
		d.Friends = persistence.NewFriendStore(d.DB)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.MaxBodyBytes == 0 {
		d.MaxBodyBytes = 1 << 20
	}
	if d.BodyReadTimeout == 0 {
		d.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if d.Quotas == nil {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		d.Quotas = &auth.Quotas{Limiter: auth.NewMemoryLimiter(d.Now), Users: d.Users, Key: key}
	}
	if d.EnrollRate.Limit == 0 {
		d.EnrollRate = DefaultEnrollRate
	}
	if d.FriendRequestRate.Limit == 0 {
		d.FriendRequestRate = DefaultFriendRequestRate
	}
	if d.EraseSpread == 0 {
		d.EraseSpread = DefaultEraseSpread
	}
	if d.Registerer == nil {
		d.Registerer = prometheus.DefaultRegisterer
	}
	s := &Server{Deps: d, logger: d.Logger, metrics: newHTTPMetrics(d.Registerer)}
	s.handler = s.recoverer(s.routes())
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "commongrounds_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "commongrounds_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"route"}),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration} {
		if err := reg.Register(c); err != nil {
			// A second server in one process (tests) shares the first one's collectors.
			if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
				switch c.(type) {
				case *prometheus.CounterVec:
					m.requests = are.ExistingCollector.(*prometheus.CounterVec)
				case *prometheus.HistogramVec:
					m.duration = are.ExistingCollector.(*prometheus.HistogramVec)
				}
			}
		}
	}
	return m
}

// statusWriter records the status of a reply.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (and the WebSocket upgrade) reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// DefaultBodyReadTimeout is how long a request's body may take to arrive by default: a body of
// the default 1 MiB limit needs about 0.6 Mbit/s, and the bodies of the contract are far smaller.
const DefaultBodyReadTimeout = 15 * time.Second

// instrument counts and times a route, and bounds the size of its requests' bodies and the time
// they take to arrive.
func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		if r.Body != nil {
			r.Body = http.MaxBytesReader(sw, r.Body, s.MaxBodyBytes)
			// A deadline for the body alone: the headers have ReadHeaderTimeout, and an upgrade
			// has no body (net/http clears deadlines when a WebSocket takes the connection over).
			if r.ContentLength != 0 && r.Header.Get("Upgrade") == "" {
				rc := http.NewResponseController(w)
				if rc.SetReadDeadline(time.Now().Add(s.BodyReadTimeout)) == nil {
					r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
				}
			}
		}
		h.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		s.metrics.requests.WithLabelValues(route, fmt.Sprint(sw.status)).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// deadlineBody is a request body read under a deadline, which it lifts once the body has been
// read: after its end the server reads the connection in the background, and a deadline that
// passed then would cancel the request's context.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !b.done {
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// recoverer turns a panic in a handler into a logged 500 instead of a dropped connection.
func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.ErrorContext(r.Context(), "panic in handler", "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeProblem(w, http.StatusInternalServerError, cg.EINTERNAL, "Internal error.")
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// cors adds CORS headers for allowed origins and answers preflight requests. Other origins get
// no CORS headers at all.
func (s *Server) cors(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && slices.Contains(s.AllowedOrigins, origin) {
			hdr := w.Header()
			hdr.Set("Access-Control-Allow-Origin", origin)
			hdr.Add("Vary", "Origin")
			hdr.Set("Access-Control-Expose-Headers", "Retry-After")
			if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
				hdr.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
				hdr.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
				hdr.Set("Access-Control-Max-Age", "600")
				w.WriteHeader(http.StatusNoContent)
				return
			}
		} else if origin != "" {
			w.Header().Add("Vary", "Origin")
		}
		h.ServeHTTP(w, r)
	})
}

type ctxKey int

const sessionKey ctxKey = 0

// requireSession lets a request through only with a valid, unrevoked session, which the handler
// reads with sessionOf.
func (s *Server) requireSession(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="commongrounds"`)
			writeProblem(w, http.StatusUnauthorized, cg.EUNAUTHORIZED, "Sign in first: send Authorization: Bearer <token>.")
			return
		}
		sess, err := s.Sessions.Authenticate(r.Context(), token)
		if err != nil {
			if cg.ErrorCode(err) == cg.EUNAUTHORIZED {
				w.Header().Set("WWW-Authenticate", `Bearer realm="commongrounds", error="invalid_token"`)
			}
			s.writeError(w, r, err)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sessionKey, sess)))
	})
}

// requireModerator lets through only sessions of moderators; the others get 403 forbidden.
func (s *Server) requireModerator(h http.Handler) http.Handler {
	return s.requireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if sessionOf(r).Role != cg.RoleModerator {
			writeProblem(w, http.StatusForbidden, cg.EFORBIDDEN, "Only moderators may do this.")
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// sessionOf returns the session of an authenticated request.
func sessionOf(r *http.Request) *cg.Session {
	return r.Context().Value(sessionKey).(*cg.Session)
}

// bearerToken returns the token of an Authorization: Bearer header.
func bearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// BearerToken returns the token of an Authorization: Bearer header, for the WebSocket handler.
func BearerToken(r *http.Request) (string, bool) { return bearerToken(r) }

func (s *Server) handleHealthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
}

func (s *Server) handleReadyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		checks := map[string]string{"postgres": "ok"}
		ready := true
		if err := s.DB.Ping(ctx); err != nil {
			checks["postgres"] = "unreachable"
			ready = false
		}
		if s.Ready != nil {
			checks["redis"] = "ok"
			if err := s.Ready(ctx); err != nil {
				checks["redis"] = "unreachable"
				// An error that knows more (a cluster with slots uncovered) says it.
				var st interface{ ReadyStatus() string }
				if errors.As(err, &st) {
					checks["redis"] = st.ReadyStatus()
				}
				ready = false
			}
		}
		status := http.StatusOK
		if !ready {
			status = http.StatusServiceUnavailable
		}
		writeJSON(w, status, map[string]any{"ready": ready, "checks": checks})
	})
}
