package hub_test

import (
	"context"
	"sync"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/hub"
	"github.com/commongrounds/commongrounds/notify"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/rooms"
)

// pingPong sends a ping and waits for its pong: the socket is then subscribed to its user's
// events (the hub subscribes before it reads the first frame).
func (c *client) pingPong() {
	c.t.Helper()
	c.send(map[string]any{"type": "ping", "ref": "p"})
	c.expect("pong")
}

// markRead sends a read frame and returns the reply.
func (c *client) markRead(room cg.ClassID, seq int64) frame {
	c.t.Helper()
	c.send(map[string]any{"type": "read", "ref": "r", "room": room, "seq": seq})
	return c.expect("read", "error")
}

// TestReadMarkers: a read frame is answered with where the marker stands, clamped to the room's
// last position and never moved back; the user's other socket, subscribed to nothing, hears
// of each move and of nothing else.
func TestReadMarkers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	class := e.newClass()
	u, other := e.newUser(), e.newUser()
	e.enroll(class, u, other)
	pub := e.dial(other)
	pub.subscribe(class, nil)
	pub.send(map[string]any{"type": "publish", "ref": "m", "room": class, "content": "hello"})
	pub.expect("ack")
	laptop, phone := e.dial(u), e.dial(u)
	phone.pingPong()

	t.Run("Clamped", func(t *testing.T) {
		f := laptop.markRead(class, 1000)
		if f.Type != "read" || f.Ref != "r" || f.Room != class || f.Seq != 1 {
			t.Fatalf("reply %s, want read of seq 1 with ref r", f.raw)
		}
		if f := phone.expect("read"); f.Ref != "" || f.Room != class || f.Seq != 1 {
			t.Fatalf("other socket got %s, want read of seq 1 without ref", f.raw)
		}
	})
	t.Run("NeverBack", func(t *testing.T) {
		if f := laptop.markRead(class, 0); f.Type != "read" || f.Seq != 1 {
			t.Fatalf("reply %s, want read of seq 1", f.raw)
		}
		// Nothing moved: the other socket hears nothing before its pong.
		phone.pingPong()
	})
	t.Run("ErrNotEnrolled", func(t *testing.T) {
		outside := e.newClass()
		if f := laptop.markRead(outside, 1); f.Type != "error" || f.Code != cg.ENOTENROLLED {
			t.Fatalf("reply %s, want error not_enrolled", f.raw)
		}
	})
	t.Run("ErrNotFound", func(t *testing.T) {
		if f := laptop.markRead("11111111-1111-4111-8111-111111111111", 1); f.Type != "error" || f.Code != cg.ENOTFOUND {
			t.Fatalf("reply %s, want error not_found", f.raw)
		}
	})
	t.Run("ErrInvalidFrame", func(t *testing.T) {
		for _, bad := range []string{
			`{"type":"read","ref":"b","room":"` + string(class) + `"}`,
			`{"type":"read","ref":"b","room":"` + string(class) + `","seq":-1}`,
			`{"type":"read","ref":"b","room":"` + string(class) + `","seq":null}`,
			`{"type":"read","ref":"b","room":"` + string(class) + `","seq":"1"}`,
		} {
			laptop.send(bad)
			if f := laptop.expect("error"); f.Code != rooms.EINVALIDFRAME || f.Ref != "b" {
				t.Fatalf("%s: reply %s, want invalid_frame", bad, f.raw)
			}
		}
	})
}

// TestClusterReadMarkers: a marker set on one instance reaches the user's socket on another.
func TestClusterReadMarkers(t *testing.T) {
	onBackends(t, func(t *testing.T, be backend) {
		c := newClusterOn(t, be, "", 2)
		a, b := c.nodes[0], c.nodes[1]
		class := a.newClass()
		u := a.newUser()
		a.enroll(class, u)
		if _, _, err := a.store.CreateMessage(context.Background(), cg.NewMessage{Class: class, User: u.id, Content: "x"}); err != nil {
			t.Fatal(err)
		}
		laptop, phone := a.dial(u), b.dial(u)
		phone.pingPong()
		if f := laptop.markRead(class, 1); f.Seq != 1 {
			t.Fatalf("reply %s, want seq 1", f.raw)
		}
		if f := phone.expect("read"); f.Room != class || f.Seq != 1 || f.Ref != "" {
			t.Fatalf("other instance's socket got %s, want read of seq 1", f.raw)
		}
	})
}

// fakePusher records the notifications pushed, as a Web Push sender would be handed them.
type fakePusher struct {
	mu     sync.Mutex
	pushed map[cg.UserID][]*cg.Notification // guarded by mu
}

func (p *fakePusher) Push(user cg.UserID, n *cg.Notification) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pushed == nil {
		p.pushed = map[cg.UserID][]*cg.Notification{}
	}
	p.pushed[user] = append(p.pushed[user], n)
}

func (p *fakePusher) users() map[cg.UserID]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[cg.UserID]int{}
	for u, ns := range p.pushed {
		out[u] = len(ns)
	}
	return out
}

// withNotifier is the option of a node whose replies are notified; start starts the notifier
// once the node's hub exists.
func withNotifier(db *persistence.DB, pusher cg.Pusher) (envOption, func(e *env) *notify.Notifier) {
	n := &notify.Notifier{Store: persistence.NewNotificationStore(db), Pusher: pusher}
	opt := func(svc *rooms.Service, _ *hub.Options) { svc.Replies = n }
	start := func(e *env) *notify.Notifier {
		n.Service, n.Online = e.svc, e.hub.Online
		n.Start()
		e.t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = n.Close(ctx)
		})
		return n
	}
	return opt, start
}

// TestClusterNotifications: a reply published on instance A reaches the thread's root author's
// socket on instance B, which is subscribed to no room; the replier, the unenrolled, those who
// muted the thread or the room and those blocked either way get nothing; an earlier replier with
// no socket open anywhere is handed to the Pusher, and nobody else is.
func TestClusterNotifications(t *testing.T) {
	onBackends(t, func(t *testing.T, be backend) {
		c := newClusterOn(t, be, "", 1)
		pusher := &fakePusher{}
		opt, start := withNotifier(c.db, pusher)
		a := c.addNode(c.db, opt)
		notifier := start(a)
		b := c.nodes[0]
		ctx := context.Background()
		class := a.newClass()
		root, replier, offline, mutedThread, mutedRoom, blocked, blocker, gone := a.newUser(), a.newUser(), a.newUser(), a.newUser(), a.newUser(), a.newUser(), a.newUser(), a.newUser()
		a.enroll(class, root, replier, offline, mutedThread, mutedRoom, blocked, blocker, gone)
		post := func(u *user, parent *cg.MessageID) *cg.Message {
			t.Helper()
			m, _, err := a.store.CreateMessage(ctx, cg.NewMessage{Class: class, User: u.id, Content: "earlier", ParentID: parent})
			if err != nil {
				t.Fatal(err)
			}
			return m
		}
		thread := post(root, nil)
		notes := persistence.NewNotificationStore(c.db)
		for _, u := range []*user{offline, mutedThread, mutedRoom, blocked, blocker, gone} {
			// Stored as the notifier stores them, which records the repliers of the thread.
			if _, err := notes.NotifyReplies(ctx, []cg.MessageID{post(u, &thread.ID).ID}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := notes.Mute(ctx, mutedThread.id, "", thread.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := notes.Mute(ctx, mutedRoom.id, class, ""); err != nil {
			t.Fatal(err)
		}
		for _, blk := range [][2]cg.UserID{{replier.id, blocked.id}, {blocker.id, replier.id}} {
			if _, err := c.db.Pool.Exec(ctx, `INSERT INTO user_blocks (blocker_id, blocked_id) VALUES ($1, $2)`, blk[0], blk[1]); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.db.Pool.Exec(ctx, `DELETE FROM user_classes WHERE user_id = $1`, gone.id); err != nil {
			t.Fatal(err)
		}

		// Every socket but the replier's is on instance B, subscribed to no room.
		silent := map[*user]*client{}
		for _, u := range []*user{replier, mutedThread, mutedRoom, blocked, blocker, gone} {
			silent[u] = b.dial(u)
			silent[u].pingPong()
		}
		author := b.dial(root)
		author.pingPong()
		replying := a.dial(replier)
		replying.send(map[string]any{"type": "publish", "ref": "reply", "room": class, "content": "an answer", "parent_id": thread.ID})
		ack := replying.expect("ack")

		f := author.expect("notification")
		n := f.Notification
		if n.Room != class || n.ThreadID != thread.ID || n.MessageID != ack.Message.ID || n.AnonID != *ack.Message.AnonID || n.Excerpt != "an answer" || n.Read {
			t.Fatalf("notification %s does not describe the reply", f.raw)
		}

		// Every announcement of the reply is made once the notifier has stopped; then a frame
		// sent after them on each silent user's channel is the first such socket hears.
		ctx5, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := notifier.Close(ctx5); err != nil {
			t.Fatal(err)
		}
		for u, cl := range silent {
			a.svc.AnnounceUser(u.id, rooms.UserEvent{Frame: rooms.ReadFrame("", class, 0)})
			if f := cl.expect("read", "notification"); f.Type != "read" {
				t.Fatalf("a silent user's socket got %s", f.raw)
			}
		}
		if got := pusher.users(); len(got) != 1 || got[offline.id] != 1 {
			t.Fatalf("pushed to %v, want the offline replier once", got)
		}
		page, _, _, err := notes.ListNotifications(ctx, offline.id, cg.NotificationFilter{Limit: 1})
		if err != nil || len(page) != 1 || page[0].MessageID != ack.Message.ID {
			t.Fatalf("offline user's inbox = %d, %v; want the reply first", len(page), err)
		}
	})
}
