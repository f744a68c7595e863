package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/api"
	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/auth/authtest"
	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

// testPepper is the phone pepper (version 1) of test servers.
var testPepper = config.Key{ID: "1", Secret: []byte("pepper-pepper-pepper-pepper-0001")}

// discardMailer accepts mail and drops it: the default of test servers that send none.
type discardMailer struct{}

func (discardMailer) Enqueue(auth.Mail) error { return nil }

// setAuthDeps gives a test server its sign-in services on its own database: links are dropped,
// text messages go nowhere, limits are generous. Tests of sign-in replace these through options
// (see newAuthServer).
func setAuthDeps(t *testing.T, d *api.Deps) {
	t.Helper()
	hasher, err := auth.NewPhoneHasher([]config.Key{testPepper})
	if err != nil {
		t.Fatal(err)
	}
	limiter := auth.NewMemoryLimiter(nil)
	generous := auth.Rate{Limit: 100000, Window: 15 * time.Minute}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	d.MagicLinks = &auth.MagicLinks{
		Store:       persistence.NewMagicLinkStore(d.DB),
		Users:       d.Users,
		Sessions:    d.Sessions,
		Mailer:      discardMailer{},
		Limiter:     limiter,
		Domain:      "virginia.edu",
		BaseURL:     d.PublicBaseURL,
		PerEmail:    generous,
		PerIP:       generous,
		VerifyPerIP: generous,
	}
	d.Tickets = &auth.Tickets{Store: persistence.NewTicketStore(d.DB), Limiter: limiter, PerSession: generous}
	d.PhoneStore = persistence.NewPhoneStore(d.DB)
	d.Phones = &auth.Phones{
		Store:          d.PhoneStore,
		Hasher:         hasher,
		SMS:            auth.LogSMS{Logger: quiet},
		Limiter:        limiter,
		CodesPerUser:   generous,
		ContactsPerDay: auth.Rate{Limit: 100000, Window: 24 * time.Hour},
	}
}

// testClock is real time plus an offset that tests move forward.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration // guarded by mu
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// revocations records what the server asked the hub to close.
type revocations struct {
	mu       sync.Mutex
	sessions []cg.SessionID // guarded by mu
	users    []cg.UserID    // guarded by mu
}

func (r *revocations) RevokeSession(_ context.Context, sid cg.SessionID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sessions = append(r.sessions, sid)
	return nil
}

func (r *revocations) RevokeUser(_ context.Context, user cg.UserID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.users = append(r.users, user)
	return nil
}

func (r *revocations) snapshot() ([]cg.SessionID, []cg.UserID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]cg.SessionID(nil), r.sessions...), append([]cg.UserID(nil), r.users...)
}

// authEnv is the outside world of one sign-in test server: its outbox, its SMS webhook, its
// clock, what it revoked, its logs, and the dependencies it was built with.
type authEnv struct {
	outbox  chan auth.Mail
	sms     *authtest.SMSWebhook
	clock   *testClock
	revoked *revocations
	logs    *testenv.SyncBuffer
	deps    api.Deps
}

// Enqueue implements auth.Mailer: the mail goes to the outbox.
func (e *authEnv) Enqueue(m auth.Mail) error {
	select {
	case e.outbox <- m:
		return nil
	default:
		return fmt.Errorf("test outbox full")
	}
}

// nextMail returns the next mail of the outbox.
func (e *authEnv) nextMail(t *testing.T) auth.Mail {
	t.Helper()
	select {
	case m := <-e.outbox:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no mail was sent")
		return auth.Mail{}
	}
}

// newAuthServer starts a test server whose mail goes to an outbox, whose text messages go to
// a real SMS webhook, and whose clock the test can move.
func newAuthServer(t *testing.T, opts ...func(*api.Deps)) (*testServer, *authEnv) {
	t.Helper()
	env := &authEnv{
		outbox:  make(chan auth.Mail, 1000),
		sms:     authtest.StartSMSWebhook(t),
		clock:   &testClock{},
		revoked: &revocations{},
		logs:    &testenv.SyncBuffer{},
	}
	setup := func(d *api.Deps) {
		d.Logger = slog.New(slog.NewTextHandler(env.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		d.MagicLinks.Mailer = env
		d.MagicLinks.Now = env.clock.Now
		d.Tickets.Now = env.clock.Now
		d.Phones.SMS = &auth.WebhookSMS{URL: env.sms.URL}
		d.Phones.Now = env.clock.Now
		d.Revoker = env.revoked
	}
	capture := func(d *api.Deps) { env.deps = *d }
	all := append(append([]func(*api.Deps){setup}, opts...), capture)
	return newTestServer(t, all...), env
}

// twin starts a second instance of ts's server, on the same database, with its own copies of
// the sign-in services, which change may adjust.
func (e *authEnv) twin(t *testing.T, ts *testServer, change func(*api.Deps)) *testServer {
	t.Helper()
	d := e.deps
	ml, ph := *d.MagicLinks, *d.Phones
	d.MagicLinks, d.Phones = &ml, &ph
	if change != nil {
		change(&d)
	}
	srv := httptest.NewServer(api.NewServer(d))
	t.Cleanup(srv.Close)
	return &testServer{t: t, URL: srv.URL, DB: ts.DB, Users: ts.Users, Sessions: ts.Sessions}
}

// requestLink asks for a sign-in link for email and returns the token of the mail it sent.
func (e *authEnv) requestLink(t *testing.T, ts *testServer, email string) string {
	t.Helper()
	resp, body := ts.do("POST", "/api/v1/auth/magic-link", "", map[string]string{"email": email})
	if resp.StatusCode != 202 {
		t.Fatalf("magic-link %s: status %d %v", email, resp.StatusCode, body)
	}
	m := e.nextMail(t)
	_, token := authtest.Link(m.Text)
	if token == "" {
		t.Fatalf("no link in the mail: %q", m.Text)
	}
	return token
}

// signInByMail signs email in through the magic-link flow and returns the session token and
// the user of the reply.
func (e *authEnv) signInByMail(t *testing.T, ts *testServer, email string) (string, map[string]any) {
	t.Helper()
	token := e.requestLink(t, ts, email)
	resp, body := ts.do("POST", "/api/v1/auth/verify", "", map[string]string{"token": token})
	if resp.StatusCode != 200 {
		t.Fatalf("verify: status %d %v", resp.StatusCode, body)
	}
	user, _ := body["user"].(map[string]any)
	jwt, _ := body["token"].(string)
	return jwt, user
}

// send sends a request with extra headers and returns the reply with its raw body.
func send(t *testing.T, method, url string, headers map[string]string, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, raw
}

// wantRetryAfter fails the test unless resp is 429 rate_limited with a positive Retry-After.
func wantRetryAfter(t *testing.T, resp *http.Response, body map[string]any) {
	t.Helper()
	wantProblem(t, resp, body, 429, "rate_limited")
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("Retry-After=%q, want a positive number of seconds", resp.Header.Get("Retry-After"))
	}
}

func TestMagicLink(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t)

	t.Run("OK", func(t *testing.T) {
		resp, raw := ts.doRaw("POST", "/api/v1/auth/magic-link", "", map[string]string{"email": "  MLok1A@Virginia.EDU "})
		if resp.StatusCode != 202 || strings.TrimSpace(string(raw)) != `{"status":"sent"}` {
			t.Fatalf("Status=%d body=%s, want 202 {\"status\":\"sent\"}", resp.StatusCode, raw)
		}
		m := env.nextMail(t)
		if m.To != "mlok1a@virginia.edu" {
			t.Fatalf("mail to %q, want the lower-case address", m.To)
		}
		for _, part := range []string{m.Text, m.HTML} {
			link, token := authtest.Link(part)
			if link != "https://commongrounds.example/auth/verify?token="+token || len(token) != 43 {
				t.Fatalf("link %q in %q, want PUBLIC_BASE_URL/auth/verify?token=<43 characters>", link, part)
			}
		}
	})
	t.Run("OKHostHeaderIgnored", func(t *testing.T) {
		resp, _ := send(t, "POST", ts.URL+"/api/v1/auth/magic-link", map[string]string{
			"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http", "Forwarded": "host=evil.example",
		}, `{"email":"mlhost@virginia.edu"}`)
		if resp.StatusCode != 202 {
			t.Fatalf("Status=%d", resp.StatusCode)
		}
		m := env.nextMail(t)
		if strings.Contains(m.Text+m.HTML, "evil.example") || !strings.Contains(m.Text, "https://commongrounds.example/auth/verify?token=") {
			t.Fatalf("mail built from the request's host: %q", m.Text)
		}
	})
	t.Run("OKNoEnumeration", func(t *testing.T) {
		_, _ = env.signInByMail(t, ts, "mlold1@virginia.edu")
		var replies []string
		for _, email := range []string{"mlold1@virginia.edu", "mlnew1@virginia.edu"} {
			resp, raw := send(t, "POST", ts.URL+"/api/v1/auth/magic-link", nil, `{"email":"`+email+`"}`)
			resp.Header.Del("Date")
			var hdr bytes.Buffer
			if err := resp.Header.Write(&hdr); err != nil {
				t.Fatal(err)
			}
			replies = append(replies, fmt.Sprintf("%d\n%s\n%s", resp.StatusCode, hdr.String(), raw))
			env.nextMail(t) // both get a mail
		}
		if replies[0] != replies[1] {
			t.Fatalf("an existing and a new address get different replies:\n%s\n---\n%s", replies[0], replies[1])
		}
	})
	t.Run("OKNoAccountBeforeSignIn", func(t *testing.T) {
		env.requestLink(t, ts, "mlnoacct@virginia.edu")
		if _, err := ts.Users.FindUserByEmail(context.Background(), "mlnoacct@virginia.edu"); cg.ErrorCode(err) != cg.EUSERNOTFOUND {
			t.Fatalf("asking for a link created an account (err %v)", err)
		}
	})
	for _, email := range []string{
		"someone@gmail.com", "a@virginia.edu.evil.com", "virginia.edu@evil.com", `"a@b"@virginia.edu`,
		"аbc@virginia.edu", "abc+x@virginia.edu", "abc", "", "a@virginia.edu\r\nBcc: x@evil.com",
	} {
		t.Run("ErrInvalidEmail_"+email, func(t *testing.T) {
			resp, body := ts.do("POST", "/api/v1/auth/magic-link", "", map[string]string{"email": email})
			wantProblem(t, resp, body, 400, "invalid_email")
		})
	}
	t.Run("ErrInvalidJSON", func(t *testing.T) {
		for _, b := range []string{`{"email":`, `["a@virginia.edu"]`, `{"email":1}`, `{"email":"a@virginia.edu","x":1}`} {
			resp, body := ts.do("POST", "/api/v1/auth/magic-link", "", b)
			wantProblem(t, resp, body, 400, "invalid_json")
		}
	})
	t.Run("OKDatabaseHoldsOnlyHash", func(t *testing.T) {
		token := env.requestLink(t, ts, "mlhash@virginia.edu")
		var n, raw int
		if err := ts.DB.Pool.QueryRow(context.Background(), `
			SELECT count(*) FILTER (WHERE token_hash = $1 AND expires_at > now() + interval '14 minutes' AND expires_at <= now() + interval '15 minutes'),
			       count(*) FILTER (WHERE position($2 in t::text) > 0)
			  FROM magic_links t`, auth.HashToken(token), token).Scan(&n, &raw); err != nil {
			t.Fatal(err)
		}
		if n != 1 || raw != 0 {
			t.Fatalf("%d rows with the token's hash expiring in 15 min (want 1), %d with the raw token (want 0)", n, raw)
		}
	})
}

func TestMagicLinkRateLimits(t *testing.T) {
	t.Parallel()
	t.Run("ErrPerEmail", func(t *testing.T) {
		t.Parallel()
		ts, _ := newAuthServer(t, func(d *api.Deps) { d.MagicLinks.PerEmail = auth.Rate{Limit: 2, Window: 15 * time.Minute} })
		for _, email := range []string{"rl1@virginia.edu", "RL1@virginia.edu"} {
			if resp, body := ts.do("POST", "/api/v1/auth/magic-link", "", map[string]string{"email": email}); resp.StatusCode != 202 {
				t.Fatalf("Status=%d %v", resp.StatusCode, body)
			}
		}
		resp, body := ts.do("POST", "/api/v1/auth/magic-link", "", map[string]string{"email": "rl1@Virginia.edu"})
		wantRetryAfter(t, resp, body)
		if resp, _ := ts.do("POST", "/api/v1/auth/magic-link", "", map[string]string{"email": "rl2@virginia.edu"}); resp.StatusCode != 202 {
			t.Fatalf("another address: Status=%d, want 202", resp.StatusCode)
		}
	})
	t.Run("ErrPerIP", func(t *testing.T) {
		t.Parallel()
		ts, _ := newAuthServer(t, func(d *api.Deps) { d.MagicLinks.PerIP = auth.Rate{Limit: 3, Window: 15 * time.Minute} })
		for i := range 3 {
			// X-Forwarded-For is not believed from a peer that is not a trusted proxy.
			resp, _ := send(t, "POST", ts.URL+"/api/v1/auth/magic-link", map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i)},
				fmt.Sprintf(`{"email":"ip%d@virginia.edu"}`, i))
			if resp.StatusCode != 202 {
				t.Fatalf("request %d: Status=%d", i+1, resp.StatusCode)
			}
		}
		resp, body := ts.do("POST", "/api/v1/auth/magic-link", "", map[string]string{"email": "ip9@virginia.edu"})
		wantRetryAfter(t, resp, body)
	})
	t.Run("OKTrustedProxy", func(t *testing.T) {
		t.Parallel()
		ts, _ := newAuthServer(t, func(d *api.Deps) {
			d.MagicLinks.PerIP = auth.Rate{Limit: 1, Window: 15 * time.Minute}
			d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
		})
		post := func(xff string) int {
			resp, _ := send(t, "POST", ts.URL+"/api/v1/auth/magic-link", map[string]string{"X-Forwarded-For": xff}, `{"email":"proxy@virginia.edu"}`)
			return resp.StatusCode
		}
		// The client is the right-most address that is not a trusted proxy; what it claims
		// further left is not believed.
		if got := post("198.51.100.7, 10.1.2.3"); got != 202 {
			t.Fatalf("first client: Status=%d, want 202", got)
		}
		if got := post("192.0.2.1, 198.51.100.8"); got != 202 {
			t.Fatalf("second client: Status=%d, want 202", got)
		}
		if got := post("192.0.2.99, 198.51.100.7"); got != 429 {
			t.Fatalf("first client again, with a forged hop: Status=%d, want 429", got)
		}
	})
}

// TestRateLimitsAcrossInstances runs two servers on one database and one Redis: the limits
// hold across both.
func TestRateLimitsAcrossInstances(t *testing.T) {
	t.Parallel()
	client, prefix := testenv.MustRedis(t)
	ts, env := newAuthServer(t, func(d *api.Deps) {
		d.MagicLinks.Limiter = auth.NewRedisLimiter(client, prefix)
		d.MagicLinks.PerEmail = auth.Rate{Limit: 3, Window: 15 * time.Minute}
		d.MagicLinks.PerIP = auth.Rate{Limit: 6, Window: 15 * time.Minute}
		d.MagicLinks.VerifyPerIP = auth.Rate{Limit: 4, Window: 15 * time.Minute}
	})
	other, _ := testenv.MustRedis(t) // a client of its own, as another process would have
	twin := env.twin(t, ts, func(d *api.Deps) {
		d.MagicLinks.Limiter = auth.NewRedisLimiter(other, prefix)
	})
	post := func(s *testServer, path, body string) (*http.Response, map[string]any) {
		return s.do("POST", path, "", body)
	}
	// Per e-mail: 3 in all, alternating instances; the 4th is refused by either.
	for i, s := range []*testServer{ts, twin, ts} {
		if resp, body := post(s, "/api/v1/auth/magic-link", `{"email":"twin1@virginia.edu"}`); resp.StatusCode != 202 {
			t.Fatalf("request %d: Status=%d %v", i+1, resp.StatusCode, body)
		}
	}
	resp, body := post(twin, "/api/v1/auth/magic-link", `{"email":"twin1@virginia.edu"}`)
	wantRetryAfter(t, resp, body)
	resp, body = post(ts, "/api/v1/auth/magic-link", `{"email":"twin1@virginia.edu"}`)
	wantRetryAfter(t, resp, body)
	// Per IP: 6 in all; the two requests refused per e-mail counted, so one more passes.
	if resp, body := post(twin, "/api/v1/auth/magic-link", `{"email":"twin2@virginia.edu"}`); resp.StatusCode != 202 {
		t.Fatalf("6th request from the IP: Status=%d %v", resp.StatusCode, body)
	}
	resp, body = post(ts, "/api/v1/auth/magic-link", `{"email":"twin3@virginia.edu"}`)
	wantRetryAfter(t, resp, body)
	// Verify attempts per IP: 4 in all.
	for i, s := range []*testServer{ts, twin, ts, twin} {
		if resp, _ := post(s, "/api/v1/auth/verify", `{"token":"nope"}`); resp.StatusCode != 401 {
			t.Fatalf("verify %d: Status=%d, want 401", i+1, resp.StatusCode)
		}
	}
	resp, body = post(ts, "/api/v1/auth/verify", `{"token":"nope"}`)
	wantRetryAfter(t, resp, body)
}

func TestVerify(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t)
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		token := env.requestLink(t, ts, "Vok1A@virginia.edu")
		resp, body := ts.do("POST", "/api/v1/auth/verify", "", map[string]string{"token": token})
		if resp.StatusCode != 200 {
			t.Fatalf("Status=%d %v", resp.StatusCode, body)
		}
		jwt, _ := body["token"].(string)
		exp, err := time.Parse(time.RFC3339, fmt.Sprint(body["expires_at"]))
		if jwt == "" || err != nil || exp.Before(time.Now().Add(29*24*time.Hour)) {
			t.Fatalf("token %q expires_at %v (%v)", jwt, body["expires_at"], err)
		}
		user, _ := body["user"].(map[string]any)
		if user["email"] != "vok1a@virginia.edu" || user["computing_id"] != "vok1a" || user["email_verified"] != true || user["phone_verified"] != false || !cg.ValidUUID(fmt.Sprint(user["id"])) {
			t.Fatalf("user %v", user)
		}
		resp, me := ts.do("GET", "/api/v1/me", jwt, nil)
		if resp.StatusCode != 200 || me["id"] != user["id"] {
			t.Fatalf("GET /me with the new session: %d %v", resp.StatusCode, me)
		}
		// Signing in again finds the same account.
		_, again := env.signInByMail(t, ts, "vok1a@virginia.edu")
		if again["id"] != user["id"] {
			t.Fatalf("second sign-in: user %v, want %v", again["id"], user["id"])
		}
	})
	t.Run("ErrReused", func(t *testing.T) {
		token := env.requestLink(t, ts, "vreuse@virginia.edu")
		if resp, _ := ts.do("POST", "/api/v1/auth/verify", "", map[string]string{"token": token}); resp.StatusCode != 200 {
			t.Fatalf("first use: %d", resp.StatusCode)
		}
		resp, body := ts.do("POST", "/api/v1/auth/verify", "", map[string]string{"token": token})
		wantProblem(t, resp, body, 401, "invalid_token")
	})
	t.Run("OKFiftyConcurrentRedemptionsOneWins", func(t *testing.T) {
		token := env.requestLink(t, ts, "vrace@virginia.edu")
		statuses := make(chan int, 50)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				statuses <- verifyStatus(ts, token)
			}()
		}
		close(start)
		wg.Wait()
		close(statuses)
		count := map[int]int{}
		for s := range statuses {
			count[s]++
		}
		if count[200] != 1 || count[401] != 49 {
			t.Fatalf("statuses %v, want one 200 and 49 401", count)
		}
		var sessions int
		if err := ts.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM sessions s JOIN users u ON u.id = s.user_id WHERE u.email = 'vrace@virginia.edu'`).Scan(&sessions); err != nil || sessions != 1 {
			t.Fatalf("%d sessions (%v), want 1", sessions, err)
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		token := env.requestLink(t, ts, "vexp@virginia.edu")
		env.clock.Advance(15*time.Minute + time.Second)
		resp, body := ts.do("POST", "/api/v1/auth/verify", "", map[string]string{"token": token})
		wantProblem(t, resp, body, 401, "invalid_token")
	})
	t.Run("OKJustBeforeExpiry", func(t *testing.T) {
		token := env.requestLink(t, ts, "vjust@virginia.edu")
		env.clock.Advance(14 * time.Minute)
		if resp, body := ts.do("POST", "/api/v1/auth/verify", "", map[string]string{"token": token}); resp.StatusCode != 200 {
			t.Fatalf("after 14 minutes: %d %v, want 200", resp.StatusCode, body)
		}
	})
	for name, token := range map[string]string{
		"ErrUnknown":   strings.Repeat("A", 43),
		"ErrMalformed": "not-a-token",
		"ErrEmpty":     "",
		"ErrTooLong":   strings.Repeat("A", 4000),
	} {
		t.Run(name, func(t *testing.T) {
			resp, body := ts.do("POST", "/api/v1/auth/verify", "", map[string]string{"token": token})
			wantProblem(t, resp, body, 401, "invalid_token")
		})
	}
	t.Run("ErrRateLimited", func(t *testing.T) {
		t.Parallel()
		ts, _ := newAuthServer(t, func(d *api.Deps) { d.MagicLinks.VerifyPerIP = auth.Rate{Limit: 2, Window: 15 * time.Minute} })
		for range 2 {
			resp, body := ts.do("POST", "/api/v1/auth/verify", "", map[string]string{"token": strings.Repeat("B", 43)})
			wantProblem(t, resp, body, 401, "invalid_token")
		}
		resp, body := ts.do("POST", "/api/v1/auth/verify", "", map[string]string{"token": strings.Repeat("B", 43)})
		wantRetryAfter(t, resp, body)
	})
}

func TestVerifyPage(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t)
	token := env.requestLink(t, ts, "page1a@virginia.edu")

	t.Run("OKGetDoesNotConsume", func(t *testing.T) {
		for range 3 { // a mail scanner, a preview, the user
			resp, raw := send(t, "GET", ts.URL+"/auth/verify?token="+token, nil, "")
			page := string(raw)
			if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Fatalf("Status=%d type=%q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if !strings.Contains(page, `window.location.replace("/#sign_in=" + encodeURIComponent(token))`) || strings.Contains(page, "fetch(") {
				t.Fatalf("the page does not hand the token to the app in the fragment, or redeems it itself: %s", page)
			}
			if strings.Contains(page, token) {
				t.Fatal("the page echoes the token")
			}
			for h, want := range map[string]string{"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Frame-Options": "DENY"} {
				if resp.Header.Get(h) != want {
					t.Fatalf("%s=%q, want %q", h, resp.Header.Get(h), want)
				}
			}
			csp := resp.Header.Get("Content-Security-Policy")
			if !strings.Contains(csp, "script-src 'nonce-") || !strings.Contains(page, `<script nonce="`) || strings.Contains(csp, "unsafe-inline") {
				t.Fatalf("CSP %q: want nonce-only scripts", csp)
			}
		}
		if resp, body := ts.do("POST", "/api/v1/auth/verify", "", map[string]string{"token": token}); resp.StatusCode != 200 {
			t.Fatalf("POST after three GETs: %d %v, want 200", resp.StatusCode, body)
		}
	})
	t.Run("OKWithoutToken", func(t *testing.T) {
		if resp, _ := send(t, "GET", ts.URL+"/auth/verify", nil, ""); resp.StatusCode != 200 {
			t.Fatalf("Status=%d", resp.StatusCode)
		}
	})
}

// TestSignInOverSMTP is the whole flow over a real SMTP server: the link arrives in both parts
// of the message and signs in.
func TestSignInOverSMTP(t *testing.T) {
	t.Parallel()
	smtpd := authtest.StartSMTP(t, authtest.SMTPOptions{TLS: "starttls", Username: "cg", Password: "mail-secret"})
	ts, _ := newAuthServer(t, func(d *api.Deps) {
		sender, err := auth.NewSMTPSender(smtpd.URL, "no-reply@virginia.edu", auth.SMTPOptions{TLSConfig: smtpd.ClientTLS})
		if err != nil {
			t.Fatal(err)
		}
		q := auth.NewMailQueue(sender, auth.MailQueueOptions{Logger: d.Logger})
		t.Cleanup(func() {
			if err := q.Close(context.Background()); err != nil {
				t.Error(err)
			}
		})
		d.MagicLinks.Mailer = q
	})
	if resp, body := ts.do("POST", "/api/v1/auth/magic-link", "", map[string]string{"email": "smtp1a@virginia.edu"}); resp.StatusCode != 202 {
		t.Fatalf("Status=%d %v", resp.StatusCode, body)
	}
	msg := smtpd.Next(t)
	if len(msg.To) != 1 || msg.To[0] != "smtp1a@virginia.edu" || msg.From != "no-reply@virginia.edu" {
		t.Fatalf("envelope %q → %v", msg.From, msg.To)
	}
	text, html, err := msg.Parts()
	if err != nil {
		t.Fatal(err)
	}
	textLink, textToken := authtest.Link(text)
	htmlLink, htmlToken := authtest.Link(html)
	if textToken == "" || textToken != htmlToken || textLink != htmlLink || !strings.HasPrefix(textLink, "https://commongrounds.example/auth/verify?token=") {
		t.Fatalf("links text=%q html=%q", textLink, htmlLink)
	}
	if !strings.Contains(html, `href="`+htmlLink+`"`) {
		t.Fatalf("the HTML part has no clickable link: %s", html)
	}
	resp, body := ts.do("POST", "/api/v1/auth/verify", "", map[string]string{"token": textToken})
	if resp.StatusCode != 200 {
		t.Fatalf("verify: %d %v", resp.StatusCode, body)
	}
}

func TestLogout(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t)
	twin := env.twin(t, ts, nil)

	t.Run("OK", func(t *testing.T) {
		token, _ := env.signInByMail(t, ts, "out1a@virginia.edu")
		sid, _, _, err := ts.Sessions.Signer.Verify(token)
		if err != nil {
			t.Fatal(err)
		}
		other, _ := env.signInByMail(t, ts, "out1a@virginia.edu") // another device
		resp, raw := ts.doRaw("POST", "/api/v1/auth/logout", token, nil)
		if resp.StatusCode != 204 || len(raw) != 0 {
			t.Fatalf("Status=%d body=%q, want 204 and nothing", resp.StatusCode, raw)
		}
		for _, s := range []*testServer{ts, twin} {
			resp, body := s.do("GET", "/api/v1/me", token, nil)
			wantProblem(t, resp, body, 401, "unauthorized")
		}
		if resp, _ := ts.do("GET", "/api/v1/me", other, nil); resp.StatusCode != 200 {
			t.Fatalf("the other device's session: %d, want 200", resp.StatusCode)
		}
		sessions, _ := env.revoked.snapshot()
		if len(sessions) != 1 || sessions[0] != cg.SessionID(sid) {
			t.Fatalf("revoked sockets of %v, want [%s]", sessions, sid)
		}
		resp, body := ts.do("POST", "/api/v1/auth/logout", token, nil)
		wantProblem(t, resp, body, 401, "unauthorized")
	})
	t.Run("ErrNoToken", func(t *testing.T) {
		resp, body := ts.do("POST", "/api/v1/auth/logout", "", nil)
		wantProblem(t, resp, body, 401, "unauthorized")
	})
}

func TestWSTicket(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t)
	ctx := context.Background()
	tickets := env.deps.Tickets

	issue := func(t *testing.T, token string) string {
		t.Helper()
		resp, body := ts.do("POST", "/api/v1/auth/ws-ticket", token, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("Status=%d %v", resp.StatusCode, body)
		}
		exp, err := time.Parse(time.RFC3339, fmt.Sprint(body["expires_at"]))
		if d := time.Until(exp); err != nil || d > 61*time.Second+env.clockOffset() || d < 50*time.Second+env.clockOffset() {
			t.Fatalf("expires_at %v (%v), want in 60 s", body["expires_at"], err)
		}
		return fmt.Sprint(body["ticket"])
	}

	t.Run("OKOnce", func(t *testing.T) {
		token, user := env.signInByMail(t, ts, "tick1a@virginia.edu")
		sid, _, _, _ := ts.Sessions.Signer.Verify(token)
		ticket := issue(t, token)
		sess, err := tickets.Redeem(ctx, ticket)
		if err != nil || sess.ID != cg.SessionID(sid) || string(sess.UserID) != user["id"] {
			t.Fatalf("Redeem=%+v,%v, want the session %s", sess, err, sid)
		}
		if _, err := tickets.Redeem(ctx, ticket); cg.ErrorCode(err) != cg.EUNAUTHORIZED {
			t.Fatalf("second Redeem: code=%q, want unauthorized", cg.ErrorCode(err))
		}
		var raw int
		if err := ts.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM ws_tickets t WHERE position($1 in t::text) > 0`, ticket).Scan(&raw); err != nil || raw != 0 {
			t.Fatalf("%d rows hold the raw ticket (%v)", raw, err)
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		token, _ := env.signInByMail(t, ts, "tick2b@virginia.edu")
		ticket := issue(t, token)
		env.clock.Advance(61 * time.Second)
		if _, err := tickets.Redeem(ctx, ticket); cg.ErrorCode(err) != cg.EUNAUTHORIZED {
			t.Fatalf("code=%q, want unauthorized", cg.ErrorCode(err))
		}
	})
	t.Run("ErrAfterLogout", func(t *testing.T) {
		token, _ := env.signInByMail(t, ts, "tick3c@virginia.edu")
		ticket := issue(t, token)
		if resp, _ := ts.do("POST", "/api/v1/auth/logout", token, nil); resp.StatusCode != 204 {
			t.Fatal("logout failed")
		}
		if _, err := tickets.Redeem(ctx, ticket); cg.ErrorCode(err) != cg.EUNAUTHORIZED {
			t.Fatalf("code=%q, want unauthorized", cg.ErrorCode(err))
		}
	})
	t.Run("ErrGarbage", func(t *testing.T) {
		for _, ticket := range []string{"", "x", strings.Repeat("A", 43)} {
			if _, err := tickets.Redeem(ctx, ticket); cg.ErrorCode(err) != cg.EUNAUTHORIZED {
				t.Fatalf("Redeem(%q): code=%q, want unauthorized", ticket, cg.ErrorCode(err))
			}
		}
	})
	t.Run("ErrNoSession", func(t *testing.T) {
		resp, body := ts.do("POST", "/api/v1/auth/ws-ticket", "", nil)
		wantProblem(t, resp, body, 401, "unauthorized")
	})
}

// TestWSTicketRateLimit: a session mints at most PerSession tickets a window; other sessions,
// the same user's included, have limits of their own.
func TestWSTicketRateLimit(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t, func(d *api.Deps) { d.Tickets.PerSession = auth.Rate{Limit: 3, Window: time.Minute} })
	token, _ := env.signInByMail(t, ts, "tickrl1a@virginia.edu")
	for i := range 3 {
		if resp, body := ts.do("POST", "/api/v1/auth/ws-ticket", token, nil); resp.StatusCode != 200 {
			t.Fatalf("ticket %d: %d %v", i, resp.StatusCode, body)
		}
	}
	resp, body := ts.do("POST", "/api/v1/auth/ws-ticket", token, nil)
	wantRetryAfter(t, resp, body)
	var n int
	if err := ts.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM ws_tickets`).Scan(&n); err != nil || n != 3 {
		t.Fatalf("%d tickets stored (%v), want 3", n, err)
	}
	other, _ := env.signInByMail(t, ts, "tickrl1a@virginia.edu")
	if resp, body := ts.do("POST", "/api/v1/auth/ws-ticket", other, nil); resp.StatusCode != 200 {
		t.Fatalf("another session: %d %v", resp.StatusCode, body)
	}
}

// verifyStatus redeems token and returns the status of the reply, 0 when there was none. It is
// safe to call from several goroutines.
func verifyStatus(ts *testServer, token string) int {
	req, _ := http.NewRequest("POST", ts.URL+"/api/v1/auth/verify", strings.NewReader(`{"token":"`+token+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestNewerLinkVoidsOlder: signing in with one link voids the address's other outstanding
// links, older and newer, and no other address's.
func TestNewerLinkVoidsOlder(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t)
	older := env.requestLink(t, ts, "void1a@virginia.edu")
	used := env.requestLink(t, ts, "void1a@virginia.edu")
	newer := env.requestLink(t, ts, "void1a@virginia.edu")
	someoneElse := env.requestLink(t, ts, "void2b@virginia.edu")
	if resp, body := ts.do("POST", "/api/v1/auth/verify", "", map[string]string{"token": used}); resp.StatusCode != 200 {
		t.Fatalf("verify: %d %v", resp.StatusCode, body)
	}
	for name, token := range map[string]string{"older": older, "newer": newer} {
		resp, body := ts.do("POST", "/api/v1/auth/verify", "", map[string]string{"token": token})
		if resp.StatusCode != 401 || body["code"] != "invalid_token" {
			t.Fatalf("the %s link after another was used: %d %v, want 401 invalid_token", name, resp.StatusCode, body)
		}
	}
	if resp, body := ts.do("POST", "/api/v1/auth/verify", "", map[string]string{"token": someoneElse}); resp.StatusCode != 200 {
		t.Fatalf("another address's link: %d %v", resp.StatusCode, body)
	}

	// Two links of one address used at once: one signs in, the other is void (and neither
	// waits on the other forever or fails as an internal error).
	for round := range 5 {
		links := []string{env.requestLink(t, ts, "void3c@virginia.edu"), env.requestLink(t, ts, "void3c@virginia.edu")}
		statuses := make(chan int, len(links))
		for _, token := range links {
			go func() { statuses <- verifyStatus(ts, token) }()
		}
		got := map[int]int{}
		for range links {
			got[<-statuses]++
		}
		if got[200] != 1 || got[401] != 1 {
			t.Fatalf("round %d: statuses %v, want one 200 and one 401", round, got)
		}
	}
}

// clockOffset returns how far the test clock is ahead of real time.
func (e *authEnv) clockOffset() time.Duration {
	return time.Until(e.clock.Now()).Round(time.Second)
}

// decodeJSON decodes raw into a map, failing the test on error.
func decodeJSON(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("body %q: %v", raw, err)
	}
	return m
}
