package push_test

import (
	"context"
	"log"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/push"
)

// noSubscriptions is a store without subscriptions, for the example.
type noSubscriptions struct{ cg.PushSubscriptionStore }

func (noSubscriptions) ListPushSubscriptions(context.Context, cg.UserID) ([]*cg.PushSubscription, error) {
	return nil, nil
}

// The notifications of a reply go to the pusher for each recipient without a socket open;
// Push returns at once whatever the push services do.
func Example() {
	vapidKey := make([]byte, 32) // config.Push.VAPIDKey
	vapidKey[31] = 1
	svc, err := push.New(noSubscriptions{}, push.Options{PrivateKey: vapidKey, Subject: "mailto:ops@example.edu"})
	if err != nil {
		log.Fatal(err)
	}
	defer svc.Close() // after the HTTP server and the hub have stopped

	var pusher cg.Pusher = svc
	pusher.Push("0b0f3c1e-8a52-4a53-9d0e-2c1f4f9b8a11", &cg.Notification{
		Room: "4b1c2d3e-0000-4000-8000-000000000001", ThreadID: "8e0a1b2c-0000-4000-8000-000000000002",
		MessageID: "c2f1d3e4-0000-4000-8000-000000000003", AnonID: "Anon_a3f2e1",
		Excerpt: "Is the midterm open book?", CreatedAt: time.Now(),
	})
}
