package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/commongrounds/commongrounds/internal/pushtest"
)

// TestReplyNotificationPush, through the server as it is wired: the root author A with no socket
// open gets B's reply as a Web Push, encrypted for A's browser and signed with the server's VAPID
// key, whose payload is the notification and nothing else; while A has a socket open, A gets a
// notification frame and no push; A's inbox lists every notification.
func TestReplyNotificationPush(t *testing.T) {
	t.Parallel()
	const subject = "mailto:ops@commongrounds.example"
	env := seedEnv(t)
	s := seed(t, env, "--users", "2", "--rooms", "1", "--members-per-room", "2")
	a, b := s.Users[0], s.Users[1]
	room := a.Rooms[0]
	fake := pushtest.New(t)
	caFile := filepath.Join(t.TempDir(), "push-ca.pem")
	if err := os.WriteFile(caFile, fake.CertificatePEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	env["PUSH_ALLOWED_HOSTS"] = fake.Host()
	env["PUSH_CA_FILE"] = caFile
	env["VAPID_SUBJECT"] = subject
	base, logs := startServerLogs(t, env)
	metrics := "http://" + asideAddr(t, logs, "METRICS_ADDR") + "/metrics"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var key struct {
		PublicKey string `json:"public_key"`
	}
	call(t, "GET", base+"/api/v1/push/key", "", nil, 200, &key)
	fake.SetVAPID(key.PublicKey, subject)

	aws := dialAs(ctx, t, base, a.Token)
	root1 := aws.publish(ctx, room, "", "which lab room is the midterm review in?")
	root2 := aws.publish(ctx, room, "", "is problem 3 due on Friday?")
	dev := fake.NewDevice("a-phone")
	call(t, "POST", base+"/api/v1/me/push-subscriptions", a.Token,
		map[string]any{"endpoint": dev.Endpoint, "expirationTime": nil, "keys": map[string]string{"p256dh": dev.P256dh(), "auth": dev.Auth()}}, 200, nil)
	aws.close()
	bws := dialAs(ctx, t, base, b.Token)
	waitConns(ctx, t, metrics, 1) // B's socket alone: A has none

	// A has no socket: a push, and only the notification in it.
	reply1 := bws.publish(ctx, room, root1["id"].(string), "room 204, at 6")
	push1 := nextPush(ctx, t, fake)
	if push1.Device != dev.Name || push1.Payload["message_id"] != reply1["id"] {
		t.Fatalf("push to %s: %v, want one to %s of reply %v", push1.Device, push1.Payload, dev.Name, reply1)
	}
	if reply1["anon_id"] == root1["anon_id"] || reply1["anon_id"] == "" {
		t.Fatalf("B's pseudonym %v, A's %v: want two of them", reply1["anon_id"], root1["anon_id"])
	}

	// A has a socket open: a notification frame, no push (the next push is of a later reply).
	aws = dialAs(ctx, t, base, a.Token)
	waitConns(ctx, t, metrics, 2)
	reply2 := bws.publish(ctx, room, root2["id"].(string), "yes, by midnight")
	frame := aws.next(ctx, "notification")
	note, _ := frame["notification"].(map[string]any)
	aws.close()
	waitConns(ctx, t, metrics, 1)
	reply3 := bws.publish(ctx, room, root2["id"].(string), "and on paper")
	if got := nextPush(ctx, t, fake); got.Payload["message_id"] != reply3["id"] {
		t.Fatalf("push %v after A's socket closed, want the one of reply %s (none of %s, sent while A was online)", got.Payload, reply3["id"], reply2["id"])
	}

	// The inbox has all three, newest first.
	var inbox struct {
		Notifications []map[string]any `json:"notifications"`
		Unread        int              `json:"unread"`
	}
	call(t, "GET", base+"/api/v1/me/notifications", a.Token, nil, 200, &inbox)
	var ids []any
	for _, n := range inbox.Notifications {
		ids = append(ids, n["message_id"])
	}
	if want := []any{reply3["id"], reply2["id"], reply1["id"]}; !reflect.DeepEqual(ids, want) || inbox.Unread != 3 {
		t.Fatalf("inbox of %v, %d unread; want replies %v, 3 unread", ids, inbox.Unread, want)
	}
	// The push is the notification, its fields and nothing else: B's pseudonym, not B or A.
	first := inbox.Notifications[2]
	want := map[string]any{"room": room, "thread_id": root1["id"], "message_id": reply1["id"],
		"anon_id": reply1["anon_id"], "excerpt": "room 204, at 6", "created_at": first["created_at"]}
	if !reflect.DeepEqual(push1.Payload, want) || first["id"] == nil || first["read"] != false {
		t.Fatalf("push %v, inbox entry %v; want the push to be exactly %v", push1.Payload, first, want)
	}
	delete(first, "id")
	delete(first, "read")
	if !reflect.DeepEqual(first, want) {
		t.Fatalf("inbox entry %v, want %v and an id", first, want)
	}
	// The frame is the inbox's notification.
	if !reflect.DeepEqual(note, inbox.Notifications[1]) || note["anon_id"] != reply2["anon_id"] || note["excerpt"] != "yes, by midnight" {
		t.Fatalf("notification frame %v, want the inbox's %v, of reply %v", note, inbox.Notifications[1], reply2)
	}
	bws.close()
}

// call makes a request with token (none when empty) and body as JSON, wants status, and
// decodes the answer into out when not nil.
func call(t *testing.T, method, url, token string, body any, status int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: %d %s, want %d", method, url, resp.StatusCode, data, status)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: %q: %v", method, url, data, err)
		}
	}
}

// client is a student's socket.
type client struct {
	t    *testing.T
	ws   *websocket.Conn
	refs int
}

func dialAs(ctx context.Context, t *testing.T, base, token string) *client {
	t.Helper()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(base, "http")+"/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.CloseNow() })
	return &client{t: t, ws: ws}
}

func (c *client) close() {
	c.t.Helper()
	if err := c.ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		c.t.Fatalf("close: %v", err)
	}
}

// next returns the next frame of type typ, skipping others.
func (c *client) next(ctx context.Context, typ string) map[string]any {
	c.t.Helper()
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for a %s frame: %v", typ, err)
		}
		var f map[string]any
		if err := json.Unmarshal(data, &f); err != nil {
			c.t.Fatalf("frame %q: %v", data, err)
		}
		if f["type"] == typ {
			return f
		}
	}
}

// publish publishes content in room (a reply when parent is not empty) and returns the message
// of its ack.
func (c *client) publish(ctx context.Context, room, parent, content string) map[string]any {
	c.t.Helper()
	c.refs++
	ref := fmt.Sprintf("p%d", c.refs)
	f := map[string]any{"type": "publish", "ref": ref, "room": room, "content": content}
	if parent != "" {
		f["parent_id"] = parent
	}
	b, _ := json.Marshal(f)
	if err := c.ws.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
	for {
		reply := c.next(ctx, "ack")
		if reply["ref"] == ref {
			msg, _ := reply["message"].(map[string]any)
			return msg
		}
	}
}

// nextPush returns the next push the push service took.
func nextPush(ctx context.Context, t *testing.T, fake *pushtest.Server) pushtest.Received {
	t.Helper()
	select {
	case got := <-fake.Got:
		return got
	case <-ctx.Done():
		t.Fatal("no push")
		return pushtest.Received{}
	}
}

// waitConns waits until the server's metrics say it holds n sockets.
func waitConns(ctx context.Context, t *testing.T, metrics string, n int) {
	t.Helper()
	want := fmt.Sprintf("\ncommongrounds_ws_connections %d\n", n)
	for {
		resp, err := http.Get(metrics)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if bytes.Contains(body, []byte(want)) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the server never held %d sockets", n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}
