package api_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/commongrounds/commongrounds/api"
)

// TestClientConfig: GET /api/v1/config needs no session and says where sign-in links go.
func TestClientConfig(t *testing.T) {
	t.Parallel()
	get := func(t *testing.T, ts *testServer) api.ClientConfig {
		t.Helper()
		resp, err := http.Get(ts.URL + "/api/v1/config")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var c api.ClientConfig
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("Status=%d err=%v, want 200 and JSON", resp.StatusCode, err)
		}
		return c
	}
	t.Run("OKEmail", func(t *testing.T) {
		t.Parallel()
		if c := get(t, newTestServer(t)); c.SignInLinks != api.SignInLinksEmail {
			t.Fatalf("sign_in_links=%q, want %q", c.SignInLinks, api.SignInLinksEmail)
		}
	})
	t.Run("OKServerOutput", func(t *testing.T) {
		t.Parallel()
		ts := newTestServer(t, func(d *api.Deps) {
			d.ClientConfig = api.ClientConfig{EmailDomain: "virginia.edu", SignInLinks: api.SignInLinksServerOutput}
		})
		if c := get(t, ts); c.SignInLinks != api.SignInLinksServerOutput || c.EmailDomain != "virginia.edu" {
			t.Fatalf("config %+v, want server_output for virginia.edu", c)
		}
	})
}
