package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/api"
	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/broker"
	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/rooms"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// testServer is the API on a fresh database, served over real HTTP.
type testServer struct {
	t        *testing.T
	URL      string
	DB       *persistence.DB
	Users    *persistence.UserStore
	Sessions *auth.Sessions
}

// testKey is a 32-byte JWT key for tests.
var testKey = config.Key{ID: "test", Secret: []byte("0123456789abcdef0123456789abcdef")}

// newTestServer starts the API on a fresh database. Options may adjust the dependencies before
// the server is built.
func newTestServer(t *testing.T, opts ...func(*api.Deps)) *testServer {
	t.Helper()
	db := testenv.MustOpenDB(t)
	signer, err := auth.NewSigner([]config.Key{testKey}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{
		t:        t,
		DB:       db,
		Users:    persistence.NewUserStore(db),
		Sessions: &auth.Sessions{Store: persistence.NewSessionStore(db), Signer: signer},
	}
	reg := prometheus.NewRegistry()
	deps := api.Deps{
		DB:             db,
		Users:          ts.Users,
		Sessions:       ts.Sessions,
		Rooms:          &rooms.Service{Store: persistence.NewMessageStore(db), Broker: broker.NewMemory(), FlagHideThreshold: 3, AnonymityK: 1},
		Registerer:     reg,
		AllowedOrigins: []string{"https://app.example"},
		PublicBaseURL:  "https://commongrounds.example",
	}
	setAuthDeps(t, &deps)
	for _, o := range opts {
		o(&deps)
	}
	srv := httptest.NewServer(api.NewServer(deps))
	t.Cleanup(srv.Close)
	ts.URL = srv.URL
	return ts
}

// signIn creates (or finds) the user with email and returns a session token and the user.
func (ts *testServer) signIn(email string) (string, *cg.User) {
	ts.t.Helper()
	ctx := context.Background()
	u, err := ts.Users.UpsertVerifiedUser(ctx, email, strings.SplitN(email, "@", 2)[0])
	if err != nil {
		ts.t.Fatalf("upsert user: %v", err)
	}
	token, _, _, err := ts.Sessions.Create(ctx, u.ID)
	if err != nil {
		ts.t.Fatalf("create session: %v", err)
	}
	return token, u
}

// do sends a request with an optional bearer token and JSON body (a string is sent as it is) and
// returns the reply with its body decoded into a map (nil when the body is not a JSON object).
func (ts *testServer) do(method, path, token string, body any) (*http.Response, map[string]any) {
	ts.t.Helper()
	resp, raw := ts.doRaw(method, path, token, body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp, m
}

// doRaw is do without decoding.
func (ts *testServer) doRaw(method, path, token string, body any) (*http.Response, []byte) {
	ts.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, ts.URL+path, r)
	if err != nil {
		ts.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp, raw
}

// wantProblem fails the test unless resp is a problem+json with status and code.
func wantProblem(t *testing.T, resp *http.Response, body map[string]any, status int, code string) {
	t.Helper()
	if resp.StatusCode != status || body["code"] != code || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("Status=%d code=%v type=%q, want %d %s problem+json (body %v)", resp.StatusCode, body["code"], resp.Header.Get("Content-Type"), status, code, body)
	}
}

func TestCommon(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	token, _ := ts.signIn("comm1a@virginia.edu")
	t.Run("ErrNoToken", func(t *testing.T) {
		resp, body := ts.do("GET", "/api/v1/me/classes", "", nil)
		wantProblem(t, resp, body, 401, "unauthorized")
	})
	t.Run("ErrBadToken", func(t *testing.T) {
		resp, body := ts.do("GET", "/api/v1/me/classes", token+"x", nil)
		wantProblem(t, resp, body, 401, "unauthorized")
	})
	t.Run("ErrRevoked", func(t *testing.T) {
		tok, _ := ts.signIn("comm2b@virginia.edu")
		sid, _, _, err := ts.Sessions.Signer.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.Sessions.Revoke(context.Background(), cg.SessionID(sid)); err != nil {
			t.Fatal(err)
		}
		resp, body := ts.do("GET", "/api/v1/me/classes", tok, nil)
		wantProblem(t, resp, body, 401, "unauthorized")
	})
	t.Run("CORSPreflight", func(t *testing.T) {
		req, _ := http.NewRequest("OPTIONS", ts.URL+"/api/v1/me", nil)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example" {
			t.Fatalf("Status=%d ACAO=%q, want 204 with the origin", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("CORSOtherOrigin", func(t *testing.T) {
		req, _ := http.NewRequest("OPTIONS", ts.URL+"/api/v1/me", nil)
		req.Header.Set("Origin", "https://evil.example")
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("ACAO=%q for a foreign origin, want none", resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})
	t.Run("ErrUnknownRoute", func(t *testing.T) {
		resp, body := ts.do("GET", "/api/v1/nope", token, nil)
		wantProblem(t, resp, body, 404, "not_found")
	})
}
