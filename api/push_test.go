package api_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/api"
	"github.com/commongrounds/commongrounds/push"
)

// withPush gives the server a Web Push service that allows push.example.test.
func withPush(t *testing.T) (func(*api.Deps), *push.Service) {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	svc, err := push.New(nil, push.Options{
		PrivateKey: key, Subject: "mailto:ops@commongrounds.example",
		AllowedHosts: []string{"push.example.test", "*.wns.example.test"},
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)), Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	return func(d *api.Deps) { d.Push = svc }, svc
}

// browserSub is a subscription as a browser's PushSubscription.toJSON() gives it.
func browserSub(t *testing.T, endpoint string) map[string]any {
	t.Helper()
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	return map[string]any{
		"endpoint":       endpoint,
		"expirationTime": nil,
		"keys": map[string]any{
			"p256dh": base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
			"auth":   base64.RawURLEncoding.EncodeToString(auth),
		},
	}
}

func listEndpoints(t *testing.T, ts *testServer, token string) []string {
	t.Helper()
	resp, body := ts.do("GET", "/api/v1/me/push-subscriptions", token, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("list: Status=%d %v", resp.StatusCode, body)
	}
	var out []string
	for _, s := range body["subscriptions"].([]any) {
		m := s.(map[string]any)
		if _, ok := m["keys"]; ok {
			t.Fatalf("the list shows keys: %v", m)
		}
		out = append(out, m["endpoint"].(string))
	}
	return out
}

func TestPushKey(t *testing.T) {
	t.Parallel()
	t.Run("ErrPushDisabled", func(t *testing.T) {
		ts := newTestServer(t)
		resp, body := ts.do("GET", "/api/v1/push/key", "", nil)
		wantProblem(t, resp, body, 404, cg.EPUSHDISABLED)
	})
	t.Run("OK", func(t *testing.T) {
		opt, svc := withPush(t)
		ts := newTestServer(t, opt)
		resp, body := ts.do("GET", "/api/v1/push/key", "", nil)
		if resp.StatusCode != 200 || body["public_key"] != svc.PublicKey() {
			t.Fatalf("Status=%d %v, want 200 with %s", resp.StatusCode, body, svc.PublicKey())
		}
	})
}

func TestPushSubscriptions(t *testing.T) {
	t.Parallel()
	opt, _ := withPush(t)
	ts := newTestServer(t, opt)
	token, _ := ts.signIn("pushsub1@virginia.edu")
	const endpoint = "https://push.example.test/wpush/v2/abc"

	t.Run("OK", func(t *testing.T) {
		sub := browserSub(t, endpoint)
		sub["expirationTime"] = 1893456000000
		resp, body := ts.do("POST", "/api/v1/me/push-subscriptions", token, sub)
		if resp.StatusCode != 200 || body["endpoint"] != endpoint || body["expiration_time"] != "2030-01-01T00:00:00Z" {
			t.Fatalf("Status=%d %v, want 200 with the endpoint and expiration", resp.StatusCode, body)
		}
		created := body["created_at"]
		// Again, with new keys: the same subscription, replaced.
		resp, body = ts.do("POST", "/api/v1/me/push-subscriptions", token, browserSub(t, endpoint))
		if resp.StatusCode != 200 || body["created_at"] != created || body["expiration_time"] != nil {
			t.Fatalf("Status=%d %v, want 200 with created_at %v kept", resp.StatusCode, body, created)
		}
		if got := listEndpoints(t, ts, token); len(got) != 1 || got[0] != endpoint {
			t.Fatalf("list %v, want [%s]", got, endpoint)
		}
	})

	good := browserSub(t, "https://push.example.test/x")
	keys := good["keys"].(map[string]any)
	withKeys := func(p256dh, auth string) map[string]any {
		return map[string]any{"endpoint": "https://push.example.test/x", "keys": map[string]any{"p256dh": p256dh, "auth": auth}}
	}
	offCurve := make([]byte, 65)
	offCurve[0] = 4
	offCurve[64] = 1
	for _, tc := range []struct {
		name string
		body any
		code string
	}{
		{"ErrHTTPEndpoint", browserSub(t, "http://push.example.test/x"), cg.EINVALIDENDPOINT},
		{"ErrRelativeEndpoint", browserSub(t, "/wpush/x"), cg.EINVALIDENDPOINT},
		{"ErrUserInfo", browserSub(t, "https://me:pw@push.example.test/x"), cg.EINVALIDENDPOINT},
		{"ErrLongEndpoint", browserSub(t, "https://push.example.test/"+strings.Repeat("a", 3000)), cg.EINVALIDENDPOINT},
		{"ErrDisallowedHost", browserSub(t, "https://169.254.169.254/latest/meta-data"), cg.EENDPOINTNOTALLOWED},
		{"ErrLookalikeHost", browserSub(t, "https://push.example.test.evil.example/x"), cg.EENDPOINTNOTALLOWED},
		{"ErrOtherPort", browserSub(t, "https://push.example.test:8443/x"), cg.EENDPOINTNOTALLOWED},
		{"ErrBareWildcardDomain", browserSub(t, "https://wns.example.test/x"), cg.EENDPOINTNOTALLOWED},
		{"ErrBadBase64", withKeys("not*base64!", keys["auth"].(string)), cg.EINVALIDPUSHKEY},
		{"ErrShortP256dh", withKeys(base64.RawURLEncoding.EncodeToString(make([]byte, 64)), keys["auth"].(string)), cg.EINVALIDPUSHKEY},
		{"ErrOffCurve", withKeys(base64.RawURLEncoding.EncodeToString(offCurve), keys["auth"].(string)), cg.EINVALIDPUSHKEY},
		{"ErrHugeKey", withKeys(strings.Repeat("A", 100000), keys["auth"].(string)), cg.EINVALIDPUSHKEY},
		{"ErrShortAuth", withKeys(keys["p256dh"].(string), base64.RawURLEncoding.EncodeToString(make([]byte, 15))), cg.EINVALIDPUSHKEY},
		{"ErrNoKeys", map[string]any{"endpoint": "https://push.example.test/x"}, cg.EINVALIDPUSHKEY},
		{"ErrNegativeExpiration", map[string]any{"endpoint": "https://push.example.test/x", "expirationTime": -1, "keys": keys}, cg.EINVALID},
		{"ErrUnknownField", map[string]any{"endpoint": "https://push.example.test/x", "keys": keys, "options": 1}, cg.EINVALIDJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := ts.do("POST", "/api/v1/me/push-subscriptions", token, tc.body)
			wantProblem(t, resp, body, 400, tc.code)
		})
	}
	t.Run("SubdomainOfWildcard", func(t *testing.T) {
		tok, _ := ts.signIn("pushsub5@virginia.edu")
		resp, body := ts.do("POST", "/api/v1/me/push-subscriptions", tok, browserSub(t, "https://wns2-by3p.wns.example.test/w/?token=abc"))
		if resp.StatusCode != 200 {
			t.Fatalf("Status=%d %v, want 200", resp.StatusCode, body)
		}
	})

	t.Run("ErrTooMany", func(t *testing.T) {
		tok, _ := ts.signIn("pushsub2@virginia.edu")
		for i := range cg.MaxPushSubscriptions {
			resp, body := ts.do("POST", "/api/v1/me/push-subscriptions", tok, browserSub(t, fmt.Sprintf("https://push.example.test/many/%d", i)))
			if resp.StatusCode != 200 {
				t.Fatalf("subscription %d: Status=%d %v", i+1, resp.StatusCode, body)
			}
		}
		resp, body := ts.do("POST", "/api/v1/me/push-subscriptions", tok, browserSub(t, "https://push.example.test/many/eleventh"))
		wantProblem(t, resp, body, 400, cg.ETOOMANYSUBSCRIPTIONS)
		// One of the ten again is a replacement, not an eleventh.
		resp, body = ts.do("POST", "/api/v1/me/push-subscriptions", tok, browserSub(t, "https://push.example.test/many/3"))
		if resp.StatusCode != 200 {
			t.Fatalf("re-posting: Status=%d %v, want 200", resp.StatusCode, body)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		tok, _ := ts.signIn("pushsub3@virginia.edu")
		other, _ := ts.signIn("pushsub3b@virginia.edu")
		const ep = "https://push.example.test/delete/me?x=1&y=2"
		if resp, body := ts.do("POST", "/api/v1/me/push-subscriptions", tok, browserSub(t, ep)); resp.StatusCode != 200 {
			t.Fatalf("Status=%d %v", resp.StatusCode, body)
		}
		path := "/api/v1/me/push-subscriptions?endpoint=" + url.QueryEscape(ep)
		resp, body := ts.do("DELETE", path, other, nil)
		wantProblem(t, resp, body, 404, cg.ENOTFOUND)
		if resp, _ := ts.do("DELETE", path, tok, nil); resp.StatusCode != 204 {
			t.Fatalf("Status=%d, want 204", resp.StatusCode)
		}
		resp, body = ts.do("DELETE", path, tok, nil)
		wantProblem(t, resp, body, 404, cg.ENOTFOUND)
		resp, body = ts.do("DELETE", "/api/v1/me/push-subscriptions", tok, nil)
		wantProblem(t, resp, body, 400, cg.EINVALIDENDPOINT)
	})

	t.Run("EndpointChangesHands", func(t *testing.T) {
		first, _ := ts.signIn("pushsub4a@virginia.edu")
		second, _ := ts.signIn("pushsub4b@virginia.edu")
		const ep = "https://push.example.test/shared-computer"
		for _, tok := range []string{first, second} {
			if resp, body := ts.do("POST", "/api/v1/me/push-subscriptions", tok, browserSub(t, ep)); resp.StatusCode != 200 {
				t.Fatalf("Status=%d %v", resp.StatusCode, body)
			}
		}
		if got := listEndpoints(t, ts, first); len(got) != 0 {
			t.Fatalf("the first account still holds %v, want the browser's subscription moved", got)
		}
		if got := listEndpoints(t, ts, second); len(got) != 1 {
			t.Fatalf("the second account holds %v, want the browser's subscription", got)
		}
	})

	t.Run("EndsWithSession", func(t *testing.T) {
		stays, u := ts.signIn("pushsub6@virginia.edu")
		leaves, _, _, err := ts.Sessions.Create(context.Background(), u.ID)
		if err != nil {
			t.Fatal(err)
		}
		ts.do("POST", "/api/v1/me/push-subscriptions", stays, browserSub(t, "https://push.example.test/stays"))
		ts.do("POST", "/api/v1/me/push-subscriptions", leaves, browserSub(t, "https://push.example.test/leaves"))
		if resp, _ := ts.do("POST", "/api/v1/auth/logout", leaves, nil); resp.StatusCode != 204 {
			t.Fatalf("logout: Status=%d", resp.StatusCode)
		}
		if got := listEndpoints(t, ts, stays); len(got) != 1 || got[0] != "https://push.example.test/stays" {
			t.Fatalf("left %v, want only the subscription of the session still signed in", got)
		}
		if resp, _ := ts.do("DELETE", "/api/v1/me", stays, nil); resp.StatusCode != 204 {
			t.Fatalf("delete account: Status=%d", resp.StatusCode)
		}
		var n int
		if err := ts.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM push_subscriptions WHERE user_id = $1`, u.ID).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d subscriptions (%v) left of a deleted account", n, err)
		}
	})
}

func TestPushSubscriptionsWithoutPush(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	token, _ := ts.signIn("pushoff1@virginia.edu")
	resp, body := ts.do("POST", "/api/v1/me/push-subscriptions", token, browserSub(t, "https://fcm.googleapis.com/fcm/send/x"))
	wantProblem(t, resp, body, 404, cg.EPUSHDISABLED)
	if got := listEndpoints(t, ts, token); len(got) != 0 {
		t.Fatalf("list %v, want none", got)
	}
}
