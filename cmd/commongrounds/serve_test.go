package main

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestWebSocketRefusals: GET /ws answers every refusal before the upgrade as problem+json: a
// foreign Origin 403 whether or not the request has a token (the origin is checked first), and a
// request that does not ask for an upgrade 426 upgrade_required.
func TestWebSocketRefusals(t *testing.T) {
	t.Parallel()
	env := seedEnv(t)
	token := seed(t, env, "--users", "1", "--rooms", "1").Users[0].Token
	base := startServer(t, env)
	upgrade := map[string]string{
		"Connection": "Upgrade", "Upgrade": "websocket",
		"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
	}
	for _, tt := range []struct {
		name    string
		headers map[string]string
		status  int
		code    string
	}{
		{"ErrForeignOriginNoToken", map[string]string{"Origin": "https://evil.example"}, 403, "forbidden"},
		{"ErrForeignOriginNoTokenUpgrade", merge(upgrade, map[string]string{"Origin": "https://evil.example"}), 403, "forbidden"},
		{"ErrNoUpgrade", nil, 426, "upgrade_required"},
		{"ErrNoUpgradeWithToken", map[string]string{"Authorization": "Bearer " + token}, 426, "upgrade_required"},
		{"ErrForeignOriginWithToken", merge(upgrade, map[string]string{"Origin": "https://evil.example", "Authorization": "Bearer " + token}), 403, "forbidden"},
		{"ErrNoToken", upgrade, 401, "unauthorized"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", base+"/ws", nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tt.status || resp.Header.Get("Content-Type") != "application/problem+json" || body["code"] != tt.code {
				t.Fatalf("Status=%d type=%q body=%v, want %d %s problem+json", resp.StatusCode, resp.Header.Get("Content-Type"), body, tt.status, tt.code)
			}
		})
	}
}

// merge returns the headers of a and b together, b's winning.
func merge(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
