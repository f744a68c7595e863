package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gorilla/mux"
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

func TestMain(m *testing.M) {
	// Every request a test sends through the default client, and the server's reply, is checked
	// against openapi.yaml: a reply the document does not describe fails the request.
	http.DefaultClient.Transport = openAPITransport{next: http.DefaultTransport}
	testenv.Main(m)
}

// openAPIDoc and openAPIRouter are openapi.yaml, loaded and validated once.
var openAPIDoc, openAPIRouter = loadOpenAPI()

func loadOpenAPI() (*openapi3.T, routers.Router) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		panic(fmt.Sprintf("openapi.yaml: %v", err))
	}
	if err := doc.Validate(loader.Context); err != nil {
		panic(fmt.Sprintf("openapi.yaml: %v", err))
	}
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		panic(fmt.Sprintf("openapi.yaml: %v", err))
	}
	// Bodies that are not JSON are checked as strings.
	for _, ct := range []string{"text/html", "application/yaml", "text/javascript", "text/css"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
	return doc, r
}

// openAPITransport checks every exchange against openapi.yaml (CORS preflights aside): a
// request the document refuses must be refused by the server, and every reply must be one the
// document gives for its route and status. A mismatch is the request's error, which fails the
// test that sent it.
type openAPITransport struct{ next http.RoundTripper }

func (o openAPITransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodOptions {
		return o.next.RoundTrip(req)
	}
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := o.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// A WebSocket upgrade: the body is the connection, which the dialer takes as it is.
		if err := checkExchange(req, reqBody, resp, nil); err != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("openapi.yaml: %s %s answered %d: %w", req.Method, req.URL.RequestURI(), resp.StatusCode, err)
		}
		return resp, nil
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if err := checkExchange(req, reqBody, resp, respBody); err != nil {
		return nil, fmt.Errorf("openapi.yaml: %s %s answered %d: %w", req.Method, req.URL.RequestURI(), resp.StatusCode, err)
	}
	return resp, nil
}

// checkExchange checks one request and its reply against the document.
func checkExchange(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	ctx := context.Background()
	vreq := req.Clone(ctx)
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	route, params, err := openAPIRouter.FindRoute(vreq)
	if err != nil {
		// Not a route of the document: the server must not know it either.
		if (resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed) &&
			resp.Header.Get("Content-Type") == "application/problem+json" {
			return nil
		}
		return fmt.Errorf("no such route in the document (%v)", err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && resp.StatusCode < 400 {
		return fmt.Errorf("the document refuses the request (%v), the server did not", err)
	}
	return openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(respBody)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	})
}

// TestOpenAPIRoutes fails for a route of the router that openapi.yaml does not describe, and
// for an operation of the document that the router does not have.
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	srv := api.NewServer(api.Deps{WebSocket: http.NotFoundHandler(), Registerer: prometheus.NewRegistry()})
	served := map[string]bool{}
	err := srv.Router().Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		if path == "/static/" {
			path = "/static/{file}" // the prefix of the client's files
		}
		methods, _ := route.GetMethods()
		for _, m := range methods {
			if m == http.MethodOptions {
				continue
			}
			served[m+" "+path] = true
			item := openAPIDoc.Paths.Value(path)
			if item == nil || item.GetOperation(m) == nil {
				t.Errorf("%s %s is a route of the router but not in openapi.yaml", m, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range openAPIDoc.Paths.Map() {
		for m := range item.Operations() {
			if !served[m+" "+path] {
				t.Errorf("%s %s is in openapi.yaml but not a route of the router", m, path)
			}
		}
	}
	if len(served) < 40 {
		t.Fatalf("walked %d routes; the walk is broken", len(served))
	}
}

func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	resp, raw := ts.doRaw("GET", "/api/v1/openapi.yaml", "", nil)
	if resp.StatusCode != 200 || !bytes.Equal(raw, api.OpenAPI) || resp.Header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("Status=%d type=%q len=%d, want 200 application/yaml with the document", resp.StatusCode, resp.Header.Get("Content-Type"), len(raw))
	}
}

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
		Rooms:          &rooms.Service{Store: persistence.NewMessageStore(db), Markers: persistence.NewMarkerStore(db), Broker: broker.NewMemory(), FlagHideThreshold: 3, AnonymityK: 1},
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
