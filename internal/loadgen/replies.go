package loadgen

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"
)

// threads are the thread roots that replies go to, by room: each started by an offline user (a
// user of the seed with no socket during the run), so that every reply notifies someone with no
// socket open, whom Web Push then reaches.
type threads struct {
	mu    sync.Mutex
	roots map[string][]string // guarded by mu
	next  map[string]int      // guarded by mu
	made  atomic.Int64        // roots started
}

// parent returns the next thread root of room to reply to, "" when it has none.
func (t *threads) parent(room string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	roots := t.roots[room]
	if len(roots) == 0 {
		return ""
	}
	p := roots[t.next[room]%len(roots)]
	t.next[room]++
	return p
}

func (t *threads) add(room, root string) {
	t.mu.Lock()
	if t.roots == nil {
		t.roots, t.next = make(map[string][]string), make(map[string]int)
	}
	t.roots[room] = append(t.roots[room], root)
	t.mu.Unlock()
	t.made.Add(1)
}

// isOffline reports whether the seed's user i opens no socket during the run: the last
// Config.Offline users are.
func (c *Config) isOffline(i int) bool { return i >= len(c.Seed.Users)-c.Offline }

// prepareOffline has each offline user of this process, over a socket of its own that it then
// closes, start a thread in each of its rooms and, with Config.PushEndpoint, store a browser
// push subscription (fresh keys; the push service need not decrypt anything).
func (r *runner) prepareOffline(ctx context.Context) error {
	for i, user := range r.cfg.Seed.Users {
		if !r.cfg.isOffline(i) || i%r.cfg.Workers != r.cfg.Worker {
			continue
		}
		if r.cfg.PushEndpoint != "" {
			if err := r.subscribePush(ctx, user.Token, r.cfg.PushEndpoint+"/cgload/"+r.cfg.RunID+"-"+strconv.Itoa(i)); err != nil {
				return fmt.Errorf("offline user %d: %w", i, err)
			}
		}
		if err := r.startThreads(ctx, i, user); err != nil {
			return fmt.Errorf("offline user %d: %w", i, err)
		}
	}
	return nil
}

// startThreads publishes a thread root in each room of user over a socket, then closes it.
func (r *runner) startThreads(ctx context.Context, i int, user SeedUser) error {
	ws, _, err := websocket.Dial(ctx, r.cfg.URLs[i%len(r.cfg.URLs)], &websocket.DialOptions{
		HTTPClient: r.apiClient,
		HTTPHeader: http.Header{"Authorization": {"Bearer " + user.Token}},
	})
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer ws.CloseNow()
	for k, room := range user.Rooms {
		ref := fmt.Sprintf("%s-root-%d-%d", r.cfg.RunID, i, k)
		frame, _ := json.Marshal(map[string]string{"type": "publish", "ref": ref, "room": room, "client_msg_id": ref, "content": "a question " + ref})
		if err := ws.Write(ctx, websocket.MessageText, frame); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		for {
			_, data, err := ws.Read(ctx)
			if err != nil {
				return fmt.Errorf("waiting for the ack: %w", err)
			}
			var f struct {
				Type, Ref, Code string
				Message         struct{ ID string }
			}
			if json.Unmarshal(data, &f) != nil || f.Ref != ref {
				continue
			}
			if f.Type != "ack" {
				return fmt.Errorf("publish: %s %s", f.Type, f.Code)
			}
			r.threads.add(room, f.Message.ID)
			break
		}
	}
	return ws.Close(websocket.StatusNormalClosure, "")
}

// subscribePush stores a push subscription at endpoint for the session of token.
func (r *runner) subscribePush(ctx context.Context, token, endpoint string) error {
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	b64 := base64.RawURLEncoding.EncodeToString
	body, _ := json.Marshal(map[string]any{"endpoint": endpoint, "expirationTime": nil,
		"keys": map[string]string{"p256dh": b64(priv.PublicKey().Bytes()), "auth": b64(auth)}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.apiBase+"/api/v1/me/push-subscriptions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.apiClient.Do(req)
	if err != nil {
		return fmt.Errorf("push subscription: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var p struct{ Code string }
		_ = json.NewDecoder(resp.Body).Decode(&p)
		return fmt.Errorf("push subscription: %d %s", resp.StatusCode, strings.TrimSpace(p.Code))
	}
	return nil
}
