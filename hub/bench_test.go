package hub_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/commongrounds/commongrounds/hub"
	"github.com/commongrounds/commongrounds/rooms"
)

// BenchmarkFanOut1000 publishes messages into a room of 1000 local subscribers on real sockets
// and waits until every subscriber has every message. It reports deliveries per second.
func BenchmarkFanOut1000(b *testing.B) {
	const members = 1000
	e := newEnv(b)
	class := e.newClass()
	author := e.newUser()
	e.enroll(class, author)
	ctx := context.Background()
	var delivered atomic.Int64
	var wg sync.WaitGroup
	conns := make([]*websocket.Conn, members)
	u := author
	for i := range members {
		if i > 0 && i%10 == 0 { // 100 distinct users, 10 sockets each
			u = e.newUser()
			e.enroll(class, u)
		}
		ws, _, err := websocket.Dial(ctx, e.wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + u.token}}})
		if err != nil {
			b.Fatal(err)
		}
		conns[i] = ws
		if err := ws.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","room":"`+string(class)+`"}`)); err != nil {
			b.Fatal(err)
		}
		if _, _, err := ws.Read(ctx); err != nil { // subscribed
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				_, data, err := ws.Read(ctx)
				if err != nil {
					return
				}
				if len(data) > 20 && string(data[9:16]) == "message" {
					delivered.Add(1)
				}
			}
		}()
	}
	b.Cleanup(func() {
		for _, ws := range conns {
			ws.CloseNow()
		}
		wg.Wait()
	})
	content := fmt.Sprintf("%0100d", 0) // about 100 bytes
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if _, err := e.svc.Publish(ctx, author.id, class, content, nil, "", nil); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(b.N) * members
	for delivered.Load() < want {
		time.Sleep(time.Millisecond) // polling the counter
	}
	b.StopTimer()
	b.ReportMetric(float64(want)/time.Since(start).Seconds(), "deliveries/s")
}

// BenchmarkFrameRoundTrip sends a ping frame on each of n sockets and waits for its pong, over
// and over: the cost of a frame read by a socket that was idle, and answered. Writers start at
// once (no WriteDelay), so that the figure is the cost, not the gathering's wait.
func BenchmarkFrameRoundTrip(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprintf("sockets=%d", n), func(b *testing.B) {
			e := newEnv(b, func(_ *rooms.Service, o *hub.Options) { o.WriteDelay = -1 })
			ctx := context.Background()
			conns := make([]*websocket.Conn, n)
			for i := range conns {
				u := e.newUser()
				ws, _, err := websocket.Dial(ctx, e.wsURL, &websocket.DialOptions{HTTPHeader: http.Header{"Authorization": {"Bearer " + u.token}}})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { ws.CloseNow() })
				conns[i] = ws
			}
			ping := []byte(`{"type":"ping","ref":"r"}`)
			var left atomic.Int64 // round trips still to make, over all sockets
			left.Store(int64(b.N))
			var wg sync.WaitGroup
			b.ResetTimer()
			for _, ws := range conns {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						if err := ws.Write(ctx, websocket.MessageText, ping); err != nil {
							b.Error(err)
							return
						}
						if _, _, err := ws.Read(ctx); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
