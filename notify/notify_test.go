package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/broker"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/notify"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/rooms"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// handler keeps the user events a broker delivers.
type handler struct {
	mu     sync.Mutex
	frames map[cg.UserID][]string // guarded by mu
}

func (h *handler) HandleRoomEvent(cg.ClassID, []byte) {}
func (h *handler) HandleControl([]byte)               {}
func (h *handler) HandleResync()                      {}
func (h *handler) HandleUserEvent(user cg.UserID, p []byte) {
	e, err := rooms.DecodeUserEvent(p)
	if err != nil {
		panic(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.frames[user] = append(h.frames[user], string(e.Frame))
}

type pusher struct {
	mu     sync.Mutex
	pushed []cg.UserID // guarded by mu
}

func (p *pusher) Push(user cg.UserID, _ *cg.Notification) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pushed = append(p.pushed, user)
}

// TestRedisDown: with Redis unreachable a reply's notifications are still stored, this
// instance's sockets of a recipient still get theirs, and a recipient with no socket anywhere
// is handed to the Pusher, and only they are.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	ctx := context.Background()
	dead := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { dead.Close() })
	b := broker.NewRedis(dead, broker.RedisOptions{Prefix: "cgtest:" + testenv.RandomHex(6) + ":", SubscribeTimeout: 100 * time.Millisecond})
	t.Cleanup(func() { b.Close() })
	h := &handler{frames: map[cg.UserID][]string{}}
	b.SetHandler(h)

	var class cg.ClassID
	if err := db.Pool.QueryRow(ctx, `INSERT INTO classes (subject, catalog_number, term, sis_class_number) VALUES ('CS','1','1', gen_random_uuid()::text) RETURNING id`).Scan(&class); err != nil {
		t.Fatal(err)
	}
	users := make([]cg.UserID, 3)
	for i := range users {
		if err := db.Pool.QueryRow(ctx, `INSERT INTO users (email) VALUES ($1) RETURNING id`, fmt.Sprintf("n%d%s@virginia.edu", i, testenv.RandomHex(4))).Scan(&users[i]); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Pool.Exec(ctx, `INSERT INTO user_classes (user_id, class_id) VALUES ($1, $2)`, users[i], class); err != nil {
			t.Fatal(err)
		}
	}
	author, early, replier := users[0], users[1], users[2]
	store := persistence.NewMessageStore(db)
	notes := persistence.NewNotificationStore(db)
	root, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: class, User: author, Content: "question"})
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: class, User: early, Content: "first", ParentID: &root.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := notes.NotifyReplies(ctx, []cg.MessageID{first.ID}); err != nil {
		t.Fatal(err)
	}

	// The author has a socket here: this instance subscribed them (Redis does not confirm).
	_ = b.SubscribeUser(ctx, author)
	p := &pusher{}
	svc := &rooms.Service{Store: store, Broker: b, BrokerTimeout: 200 * time.Millisecond}
	n := &notify.Notifier{
		Store: notes, Service: svc, Pusher: p,
		Online: func(_ context.Context, u cg.UserID) bool { return u == author },
	}
	svc.Replies = n
	n.Start()
	reply, err := svc.Publish(ctx, replier, class, "the answer", &root.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx5, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := n.Close(ctx5); err != nil {
		t.Fatal(err)
	}

	for _, u := range []cg.UserID{author, early} {
		page, _, _, err := notes.ListNotifications(ctx, u, cg.NotificationFilter{Limit: 1})
		if err != nil || len(page) != 1 || page[0].MessageID != reply.ID {
			t.Fatalf("inbox of %s: %v, %v; want the reply", u, page, err)
		}
	}
	h.mu.Lock()
	frames := h.frames[author]
	h.mu.Unlock()
	if len(frames) != 1 {
		t.Fatalf("the author's local frames: %q, want one notification", frames)
	}
	var f struct {
		Type         string          `json:"type"`
		Notification cg.Notification `json:"notification"`
	}
	if err := json.Unmarshal([]byte(frames[0]), &f); err != nil || f.Type != "notification" || f.Notification.MessageID != reply.ID || f.Notification.Excerpt != "the answer" {
		t.Fatalf("frame %s, %v", frames[0], err)
	}
	if p.pushed == nil || len(p.pushed) != 1 || p.pushed[0] != early {
		t.Fatalf("pushed to %v, want the offline early replier only", p.pushed)
	}
}
