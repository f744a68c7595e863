package api_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/commongrounds/commongrounds/api"
)

// messageCount returns the number of messages stored in class.
func (ts *testServer) messageCount(class string) int {
	ts.t.Helper()
	var n int
	if err := ts.DB.Pool.QueryRow(context.Background(), `SELECT count(*) FROM class_messages WHERE class_id = $1`, class).Scan(&n); err != nil {
		ts.t.Fatal(err)
	}
	return n
}

// TestStrictJSONBodies: a body whose text is not valid Unicode, or whose names differ in case
// from the contract's, is 400 invalid_json and stores nothing (encoding/json turned the first
// into U+FFFD and matched the second in any case).
func TestStrictJSONBodies(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t)
	token, _ := ts.signIn("strict1a@virginia.edu")
	class := ts.newRoomClass(token)
	path := "/api/v1/classes/" + class + "/messages"
	for _, tt := range []struct{ name, body string }{
		{"InvalidUTF8", "{\"content\":\"ab\xff\xfecd\"}"},
		{"InvalidUTF8InName", "{\"content\":\"x\",\"\xff\":1}"},
		{"LoneSurrogate", `{"content":"a\ud800b"}`},
		{"LoneLowSurrogate", `{"content":"a\udfffb"}`},
		{"ReversedPair", `{"content":"a\ude00\ud83d"}`},
		{"NameOtherCase", `{"Content":"x"}`},
		{"NameOtherCaseBesideRight", `{"content":"x","CONTENT":"y"}`},
		{"NameTwice", `{"content":"x","content":"y"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			resp, raw := ts.doRaw("POST", path, token, tt.body)
			wantProblem(t, resp, decodeJSON(t, raw), 400, "invalid_json")
			if n := ts.messageCount(class); n != 0 {
				t.Fatalf("%d messages stored, want none", n)
			}
		})
	}
	t.Run("EscapedPairOK", func(t *testing.T) {
		resp, body := ts.do("POST", path, token, `{"content":"\ud83d\ude00"}`)
		if resp.StatusCode != 201 || body["content"] != "\U0001F600" {
			t.Fatalf("Status=%d %v, want 201 with the emoji", resp.StatusCode, body)
		}
	})
	t.Run("MagicLinkNameOtherCase", func(t *testing.T) {
		resp, body := ts.do("POST", "/api/v1/auth/magic-link", "", `{"Email":"strict2b@virginia.edu"}`)
		wantProblem(t, resp, body, 400, "invalid_json")
		if n := len(env.outbox); n != 0 {
			t.Fatalf("%d mails sent, want none", n)
		}
	})
}

// TestJSONMediaType: a JSON route answers a body declared as anything but application/json (or
// not declared) with 415 unsupported_media_type, before doing anything. A browser sends a
// text/plain POST to another site without asking it first, so that any page could otherwise spend
// a victim's sign-in mails.
func TestJSONMediaType(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t)
	body := `{"email":"media1a@virginia.edu"}`
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "", "application/jsonx", "nonsense/"} {
		t.Run("Err"+ct, func(t *testing.T) {
			req, err := http.NewRequest("POST", ts.URL+"/api/v1/auth/magic-link", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			if ct != "" {
				req.Header.Set("Content-Type", ct)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var raw strings.Builder
			_, _ = bufio.NewReader(resp.Body).WriteTo(&raw)
			wantProblem(t, resp, decodeJSON(t, []byte(raw.String())), 415, "unsupported_media_type")
			if n := len(env.outbox); n != 0 {
				t.Fatalf("%d mails sent, want none", n)
			}
		})
	}
	t.Run("ErrPostMessageTextPlain", func(t *testing.T) {
		token, _ := ts.signIn("media2b@virginia.edu")
		class := ts.newRoomClass(token)
		resp, raw := send(t, "POST", ts.URL+"/api/v1/classes/"+class+"/messages",
			map[string]string{"Authorization": "Bearer " + token, "Content-Type": "text/plain"}, `{"content":"hi"}`)
		wantProblem(t, resp, decodeJSON(t, raw), 415, "unsupported_media_type")
		if n := ts.messageCount(class); n != 0 {
			t.Fatalf("%d messages stored, want none", n)
		}
	})
	t.Run("OKWithParameters", func(t *testing.T) {
		resp, raw := send(t, "POST", ts.URL+"/api/v1/auth/magic-link",
			map[string]string{"Content-Type": "Application/JSON; charset=utf-8"}, body)
		if resp.StatusCode != 202 {
			t.Fatalf("Status=%d %s, want 202", resp.StatusCode, raw)
		}
		env.nextMail(t)
	})
}

// TestBodyReadTimeout: a client that sends its body too slowly gets 408 request_timeout and
// its connection closed, instead of holding it as long as it keeps trickling.
func TestBodyReadTimeout(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t, func(d *api.Deps) { d.BodyReadTimeout = 200 * time.Millisecond })
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A bound on the whole test, far above the server's timeout: without one the server never
	// answers and the read below would wait forever.
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	head := "POST /api/v1/auth/magic-link HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"em"
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no reply to a stalled body: %v", err)
	}
	defer resp.Body.Close()
	var raw strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&raw)
	wantProblem(t, resp, decodeJSON(t, []byte(raw.String())), 408, "request_timeout")
	if !resp.Close {
		t.Fatal("the connection stays open after a body timeout")
	}
	if n := len(env.outbox); n != 0 {
		t.Fatalf("%d mails sent, want none", n)
	}
}

// TestMetricsNotPublic: the API does not serve /metrics; the server serves it on a listener of
// its own (METRICS_ADDR).
func TestMetricsNotPublic(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	resp, body := ts.do("GET", "/metrics", "", nil)
	wantProblem(t, resp, body, 404, "not_found")
}

// TestBodyReadTimeoutSparesWebSockets: the body deadline is not left on an upgraded connection: a
// socket idle for several times BodyReadTimeout still carries a message both ways.
func TestBodyReadTimeoutSparesWebSockets(t *testing.T) {
	t.Parallel()
	const timeout = 100 * time.Millisecond
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		typ, data, err := ws.Read(r.Context())
		if err != nil {
			return
		}
		_ = ws.Write(r.Context(), typ, data)
	})
	ts := newTestServer(t, func(d *api.Deps) { d.BodyReadTimeout = timeout; d.WebSocket = echo })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	// The time passing is what is tested: a deadline left on the connection would have passed.
	time.Sleep(5 * timeout)
	if err := ws.Write(ctx, websocket.MessageText, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if _, data, err := ws.Read(ctx); err != nil || string(data) != "still here" {
		t.Fatalf("echo=%q, %v; want the message back", data, err)
	}
}
