package hub_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/broker"
	"github.com/commongrounds/commongrounds/hub"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/rooms"
)

// BenchmarkPublishReply publishes replies into a thread of 20 participants, each with a socket
// open that drops what it reads, with the notifications off and on: what notifying costs the publish path (the
// notifications themselves are made by the notifier's worker, concurrently).
func BenchmarkPublishReply(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "notify=off"
		if on {
			name = "notify=on"
		}
		b.Run(name, func(b *testing.B) {
			db := testenv.MustOpenDB(b)
			var opts []envOption
			var start func(*env) func()
			if on {
				opt, st := withNotifier(db, nil)
				opts = append(opts, opt)
				start = func(e *env) func() {
					n := st(e)
					return func() {
						ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
						defer cancel()
						_ = n.Close(ctx)
					}
				}
			}
			opts = append(opts, func(_ *rooms.Service, o *hub.Options) { o.WriteDelay = -1 })
			e := newNode(b, db, broker.NewMemory(), opts...)
			stop := func() {}
			if start != nil {
				stop = start(e)
			}
			ctx := context.Background()
			class := e.newClass()
			author := e.newUser()
			e.enroll(class, author)
			root, _, err := e.store.CreateMessage(ctx, cg.NewMessage{Class: class, User: author.id, Content: "q"})
			if err != nil {
				b.Fatal(err)
			}
			for range 20 {
				u := e.newUser()
				e.enroll(class, u)
				if _, err := e.svc.Publish(ctx, u.id, class, "a", &root.ID, "", nil); err != nil {
					b.Fatal(err)
				}
				discard(b, e, u)
			}
			replier := e.newUser()
			e.enroll(class, replier)
			b.ResetTimer()
			for range b.N {
				if _, err := e.svc.Publish(ctx, replier.id, class, "an answer", &root.ID, "", nil); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			stop() // the notifications still queued are made outside the timing
		})
	}
}

// discard opens a socket as u that reads and drops every frame, until the benchmark ends.
func discard(b *testing.B, e *env, u *user) {
	ws, _, err := websocket.Dial(context.Background(), e.wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + u.token}}})
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	b.Cleanup(func() {
		ws.CloseNow()
		<-done
	})
}
