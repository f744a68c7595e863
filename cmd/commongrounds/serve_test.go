package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
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

// TestFrameStrictText: over a real socket, a publish whose content holds an escaped lone
// surrogate, or whose content is named in another case, is refused and stores nothing: the next
// good publish is the room's first message.
func TestFrameStrictText(t *testing.T) {
	t.Parallel()
	env := seedEnv(t)
	s := seed(t, env, "--users", "1", "--rooms", "1")
	base := startServer(t, env)
	room := s.Users[0].Rooms[0]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + s.Users[0].Token}}})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	// reply sends frame and returns the reply carrying ref.
	reply := func(frame, ref string) map[string]any {
		t.Helper()
		if err := ws.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
			t.Fatal(err)
		}
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				t.Fatalf("waiting for the reply to %s: %v", ref, err)
			}
			var f map[string]any
			if err := json.Unmarshal(data, &f); err != nil {
				t.Fatalf("frame %q: %v", data, err)
			}
			if f["ref"] == ref {
				return f
			}
		}
	}
	for ref, frame := range map[string]string{
		"surrogate":  `{"type":"publish","ref":"surrogate","room":"` + room + `","content":"a\ud800b","client_msg_id":"c-1"}`,
		"other-case": `{"type":"publish","ref":"other-case","room":"` + room + `","Content":"x","client_msg_id":"c-2"}`,
	} {
		if f := reply(frame, ref); f["type"] != "error" || f["code"] != "invalid_content" {
			t.Fatalf("%s: reply %v, want an invalid_content error", ref, f)
		}
	}
	f := reply(`{"type":"publish","ref":"good","room":"`+room+`","content":"\ud83d\ude00","client_msg_id":"c-3"}`, "good")
	msg, _ := f["message"].(map[string]any)
	if f["type"] != "ack" || msg["seq"] != float64(1) || msg["content"] != "\U0001F600" {
		t.Fatalf("good publish: %v, want the ack of the room's first message", f)
	}
}
