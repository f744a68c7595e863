package web_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/commongrounds/commongrounds/web"
)

// get serves one request through the client's handler.
func get(t *testing.T, method, target string, header http.Header) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.Host = "chat.example.edu:8080"
	for k, v := range header {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	web.Handler().ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return string(b)
}

func TestHandler(t *testing.T) {
	t.Parallel()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		res := get(t, http.MethodGet, "/", nil)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("StatusCode=%d, want %d", res.StatusCode, http.StatusOK)
		}
		if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/html") {
			t.Fatalf("Content-Type=%q, want text/html", got)
		}
		csp := res.Header.Get("Content-Security-Policy")
		for _, want := range []string{
			"default-src 'none'",
			"script-src 'self'",
			"style-src 'self'",
			"frame-ancestors 'none'",
			"connect-src 'self' ws://chat.example.edu:8080 wss://chat.example.edu:8080",
		} {
			if !strings.Contains(csp, want) {
				t.Fatalf("Content-Security-Policy=%q, want it to contain %q", csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Fatalf("Content-Security-Policy=%q allows inline code", csp)
		}
		if got := res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Fatalf("Cache-Control=%q, want no-cache", got)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Fatalf("X-Content-Type-Options=%q, want nosniff", got)
		}
		b := body(t, res)
		for _, want := range []string{`<script type="module" src="/static/app.js"></script>`, `href="/static/style.css"`} {
			if !strings.Contains(b, want) {
				t.Fatalf("index.html lacks %q", want)
			}
		}
		// The policy forbids inline code, so the page must have none.
		for _, bad := range []string{"<script>", "<style", " style=", " onclick="} {
			if strings.Contains(b, bad) {
				t.Fatalf("index.html contains inline code %q, which the policy blocks", bad)
			}
		}
	})

	t.Run("OKStatic", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			path, contentType, contains string
		}{
			{"/static/app.js", "javascript", `from "./cg.js"`},
			{"/static/cg.js", "javascript", "ticket="},
			{"/static/style.css", "text/css", ".messages"},
			{"/static/index.html", "text/html", "<!doctype html>"},
			{"/sw.js", "javascript", `addEventListener("fetch"`},
			{"/static/manifest.webmanifest", "application/manifest+json", `"start_url"`},
			{"/static/icon.svg", "image/svg+xml", "<svg"},
		}
		for _, tt := range tests {
			res := get(t, http.MethodGet, tt.path, nil)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("%s: StatusCode=%d, want %d", tt.path, res.StatusCode, http.StatusOK)
			}
			if got := res.Header.Get("Content-Type"); !strings.Contains(got, tt.contentType) {
				t.Fatalf("%s: Content-Type=%q, want %s", tt.path, got, tt.contentType)
			}
			if res.Header.Get("Content-Security-Policy") == "" {
				t.Fatalf("%s: no Content-Security-Policy", tt.path)
			}
			if b := body(t, res); !strings.Contains(b, tt.contains) {
				t.Fatalf("%s: body lacks %q", tt.path, tt.contains)
			}
		}
	})

	t.Run("OKRevalidate", func(t *testing.T) {
		t.Parallel()
		etag := get(t, http.MethodGet, "/static/app.js", nil).Header.Get("ETag")
		if etag == "" {
			t.Fatal("no ETag")
		}
		res := get(t, http.MethodGet, "/static/app.js", http.Header{"If-None-Match": {etag}})
		if res.StatusCode != http.StatusNotModified {
			t.Fatalf("StatusCode=%d, want %d", res.StatusCode, http.StatusNotModified)
		}
		if other := get(t, http.MethodGet, "/static/style.css", nil).Header.Get("ETag"); other == etag {
			t.Fatalf("two files share the ETag %s", etag)
		}
	})

	t.Run("OKHostOutsidePolicy", func(t *testing.T) {
		t.Parallel()
		for _, host := range []string{"", "evil.example; script-src *", "a b", "x'y"} {
			csp := web.ContentSecurityPolicy(host)
			if !strings.HasSuffix(csp, "connect-src 'self'") {
				t.Fatalf("ContentSecurityPolicy(%q)=%q, want connect-src 'self' only", host, csp)
			}
		}
	})

	t.Run("ErrNotFound", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/static/", "/static/missing.js", "/index.html", "/static/../web.go", "/app"} {
			res := get(t, http.MethodGet, path, nil)
			if res.StatusCode != http.StatusNotFound {
				t.Fatalf("%s: StatusCode=%d, want %d", path, res.StatusCode, http.StatusNotFound)
			}
			wantProblem(t, res, "not_found")
		}
	})

	t.Run("ErrMethodNotAllowed", func(t *testing.T) {
		t.Parallel()
		res := get(t, http.MethodPost, "/", nil)
		if res.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("StatusCode=%d, want %d", res.StatusCode, http.StatusMethodNotAllowed)
		}
		wantProblem(t, res, "method_not_allowed")
	})
}

// wantProblem checks that res is a problem+json reply with the code.
func wantProblem(t *testing.T, res *http.Response, code string) {
	t.Helper()
	if got := res.Header.Get("Content-Type"); got != "application/problem+json" {
		t.Fatalf("Content-Type=%q, want application/problem+json", got)
	}
	var p struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
	}
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatalf("decode problem: %v", err)
	}
	if p.Code != code || p.Status != res.StatusCode {
		t.Fatalf("problem code=%q status=%d, want %q %d", p.Code, p.Status, code, res.StatusCode)
	}
}
