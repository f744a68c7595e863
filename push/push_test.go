package push_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/pushtest"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/push"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const testSubject = "mailto:ops@commongrounds.example"

// env is a push service under test on a fresh database, with the fake push services it may
// send to.
type env struct {
	t      *testing.T
	db     *persistence.DB
	store  *persistence.PushSubscriptionStore
	svc    *push.Service
	events chan push.Event
}

// newEnv starts a Service allowed to send to the fakes, with opts adjusted by adjust.
func newEnv(t *testing.T, adjust func(*push.Options), fakes ...*pushtest.Server) *env {
	t.Helper()
	db := testenv.MustOpenDB(t)
	e := &env{t: t, db: db, store: persistence.NewPushSubscriptionStore(db), events: make(chan push.Event, 8192)}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	opts := push.Options{
		PrivateKey:     key,
		Subject:        testSubject,
		Client:         pushtest.TrustingClient(fakes...),
		RetryBase:      10 * time.Millisecond,
		CoalesceWindow: -1,
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer:     prometheus.NewRegistry(),
	}
	for _, f := range fakes {
		opts.AllowedHosts = append(opts.AllowedHosts, f.Host())
	}
	if adjust != nil {
		adjust(&opts)
	}
	svc, err := push.New(e.store, opts)
	if err != nil {
		t.Fatal(err)
	}
	push.SetObserver(svc, func(ev push.Event) { e.events <- ev })
	t.Cleanup(svc.Close)
	e.svc = svc
	for _, f := range fakes {
		f.SetVAPID(svc.PublicKey(), testSubject)
	}
	return e
}

// user creates a signed-in user whose devices are subscribed.
func (e *env) user(email string, devices ...*pushtest.Device) cg.UserID {
	e.t.Helper()
	ctx := context.Background()
	u, err := persistence.NewUserStore(e.db).UpsertVerifiedUser(ctx, email, strings.Split(email, "@")[0])
	if err != nil {
		e.t.Fatal(err)
	}
	sid := cg.SessionID(uuid.NewString())
	if err := persistence.NewSessionStore(e.db).CreateSession(ctx, sid, u.ID, []byte(sid), time.Now().Add(time.Hour)); err != nil {
		e.t.Fatal(err)
	}
	for _, d := range devices {
		sub, err := e.svc.ParseSubscription(d.Endpoint, d.P256dh(), d.Auth(), nil)
		if err != nil {
			e.t.Fatalf("ParseSubscription(%s): %v", d.Name, err)
		}
		if err := e.store.SavePushSubscription(ctx, u.ID, sid, sub, cg.MaxPushSubscriptions); err != nil {
			e.t.Fatal(err)
		}
	}
	return u.ID
}

// waitEvent returns the next event of kind, failing on an event of a kind in fail.
func (e *env) waitEvent(kind push.EventKind, fail ...push.EventKind) push.Event {
	e.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-e.events:
			if ev.Kind == kind {
				return ev
			}
			for _, k := range fail {
				if ev.Kind == k {
					e.t.Fatalf("event %+v while waiting for kind %d", ev, kind)
				}
			}
		case <-timeout:
			e.t.Fatalf("no event of kind %d in 30 s", kind)
		}
	}
}

// waitPush returns the next push the fake took.
func waitPush(t *testing.T, f *pushtest.Server) pushtest.Received {
	t.Helper()
	select {
	case r := <-f.Got:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("no push in 30 s")
		return pushtest.Received{}
	}
}

func notification(thread cg.MessageID, excerpt string) *cg.Notification {
	return &cg.Notification{
		ID:        cg.NotificationID(uuid.NewString()),
		Room:      cg.ClassID(uuid.NewString()),
		ThreadID:  thread,
		MessageID: cg.MessageID(uuid.NewString()),
		AnonID:    "Anon_a3f2e1",
		Excerpt:   excerpt,
		CreatedAt: time.Date(2026, 12, 8, 1, 2, 3, 0, time.UTC),
	}
}

func TestDelivery(t *testing.T) {
	t.Parallel()
	f := pushtest.New(t)
	phone, laptop := f.NewDevice("phone"), f.NewDevice("laptop")
	e := newEnv(t, nil, f)
	alice := e.user("deliv1a@virginia.edu", phone, laptop)
	e.user("deliv2b@virginia.edu") // no subscriptions

	thread := cg.MessageID(uuid.NewString())
	n := notification(thread, "Is the midterm open book? <yes> & \"no\"")
	e.svc.Push(alice, n)
	seen := map[string]bool{}
	for range 2 {
		r := waitPush(t, f)
		seen[r.Device] = true
		want := map[string]any{
			"room": string(n.Room), "thread_id": string(n.ThreadID), "message_id": string(n.MessageID),
			"anon_id": string(n.AnonID), "excerpt": n.Excerpt, "created_at": "2026-12-08T01:02:03Z",
		}
		if len(r.Payload) != len(want) {
			t.Errorf("%s: payload %v, want exactly the fields %v", r.Device, r.Payload, want)
		}
		for k, v := range want {
			if r.Payload[k] != v {
				t.Errorf("%s: payload[%q]=%v, want %v", r.Device, k, r.Payload[k], v)
			}
		}
		if got, want := r.Headers.Get("Topic"), strings.ReplaceAll(string(thread), "-", ""); got != want {
			t.Errorf("Topic=%q, want %q", got, want)
		}
		if r.Headers.Get("TTL") != "86400" || r.Headers.Get("Urgency") != "normal" {
			t.Errorf("TTL=%q Urgency=%q, want 86400 normal", r.Headers.Get("TTL"), r.Headers.Get("Urgency"))
		}
		if r.Size != 2048 {
			t.Errorf("body of %d bytes, want every push padded to 2048", r.Size)
		}
	}
	if !seen["phone"] || !seen["laptop"] {
		t.Fatalf("pushed to %v, want both devices", seen)
	}
	for range 2 {
		e.waitEvent(push.EventSent, push.EventFailed, push.EventRetry)
	}
}

func TestLongExcerptFits(t *testing.T) {
	t.Parallel()
	for _, excerpt := range []string{strings.Repeat("é", 3000), strings.Repeat("\"<\x01", 1000), strings.Repeat("x", 1900)} {
		b := push.EncodePayload(notification(cg.MessageID(uuid.NewString()), excerpt))
		if len(b) > push.MaxPayload {
			t.Fatalf("payload of %d bytes, want at most %d", len(b), push.MaxPayload)
		}
		if !strings.Contains(string(b), "…") {
			t.Fatalf("payload %q: want the excerpt shortened with an ellipsis", b)
		}
	}
}

func TestGoneRemovesSubscription(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusGone, http.StatusNotFound} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			f := pushtest.New(t)
			gone, kept := f.NewDevice("gone"), f.NewDevice("kept")
			f.SetScript(func(d *pushtest.Device, _ int) pushtest.Reply {
				if d == gone {
					return pushtest.Reply{Status: status}
				}
				return pushtest.Reply{Status: http.StatusCreated}
			})
			e := newEnv(t, nil, f)
			u := e.user(fmt.Sprintf("gone%d@virginia.edu", status), gone, kept)
			e.svc.Push(u, notification(cg.MessageID(uuid.NewString()), "hi"))
			ev := e.waitEvent(push.EventRemoved, push.EventRetry, push.EventFailed)
			if ev.Endpoint != gone.Endpoint {
				t.Fatalf("removed %s, want %s", ev.Endpoint, gone.Endpoint)
			}
			subs, err := e.store.ListPushSubscriptions(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			if len(subs) != 1 || subs[0].Endpoint != kept.Endpoint {
				t.Fatalf("left %d subscriptions, want only %s", len(subs), kept.Endpoint)
			}
		})
	}
}

// A subscription past the expirationTime its browser gave is removed without a request.
func TestExpiredSubscriptionRemoved(t *testing.T) {
	t.Parallel()
	f := pushtest.New(t)
	d := f.NewDevice("expired")
	e := newEnv(t, nil, f)
	u := e.user("expired1@virginia.edu")
	sub, err := e.svc.ParseSubscription(d.Endpoint, d.P256dh(), d.Auth(), new(float64)) // 1970
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sid := cg.SessionID(uuid.NewString())
	if err := persistence.NewSessionStore(e.db).CreateSession(ctx, sid, u, []byte(sid), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := e.store.SavePushSubscription(ctx, u, sid, sub, cg.MaxPushSubscriptions); err != nil {
		t.Fatal(err)
	}
	e.svc.Push(u, notification(cg.MessageID(uuid.NewString()), "hi"))
	if ev := e.waitEvent(push.EventRemoved, push.EventSent, push.EventFailed); ev.Endpoint != d.Endpoint || ev.Status != 0 {
		t.Fatalf("event %+v, want the expired subscription removed", ev)
	}
	if subs, _ := e.store.ListPushSubscriptions(ctx, u); len(subs) != 0 || len(f.Got) != 0 {
		t.Fatalf("%d subscriptions left, %d pushes sent; want none", len(subs), len(f.Got))
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	f := pushtest.New(t)
	d := f.NewDevice("busy")
	f.SetScript(func(_ *pushtest.Device, n int) pushtest.Reply {
		if n == 1 {
			return pushtest.Reply{Status: http.StatusTooManyRequests, Header: map[string]string{"Retry-After": "1"}}
		}
		return pushtest.Reply{Status: http.StatusCreated}
	})
	e := newEnv(t, nil, f)
	u := e.user("retry1@virginia.edu", d)
	e.svc.Push(u, notification(cg.MessageID(uuid.NewString()), "hi"))
	first := waitPush(t, f)
	ev := e.waitEvent(push.EventRetry, push.EventFailed)
	if ev.Delay < time.Second {
		t.Fatalf("retry after %v, want at least the Retry-After of 1 s", ev.Delay)
	}
	second := waitPush(t, f)
	if second.N != 2 || second.At.Sub(first.At) < time.Second {
		t.Fatalf("second try (#%d) %v after the first, want #2 no sooner than 1 s", second.N, second.At.Sub(first.At))
	}
	e.waitEvent(push.EventSent, push.EventFailed)
}

func TestServerErrorRetriedThenGivenUp(t *testing.T) {
	t.Parallel()
	f := pushtest.New(t)
	d := f.NewDevice("broken")
	f.SetScript(func(*pushtest.Device, int) pushtest.Reply {
		return pushtest.Reply{Status: http.StatusInternalServerError}
	})
	e := newEnv(t, func(o *push.Options) { o.MaxAttempts = 4 }, f)
	u := e.user("retry2@virginia.edu", d)
	e.svc.Push(u, notification(cg.MessageID(uuid.NewString()), "hi"))
	base := 10 * time.Millisecond
	for i := range 3 {
		ev := e.waitEvent(push.EventRetry, push.EventFailed, push.EventSent)
		// Exponential: the i-th retry waits between half and all of base·2^i.
		if lo, hi := base<<i/2, base<<i; ev.Delay < lo || ev.Delay > hi {
			t.Fatalf("retry %d after %v, want from %v to %v", i+1, ev.Delay, lo, hi)
		}
	}
	e.waitEvent(push.EventFailed, push.EventRetry, push.EventSent)
	e.svc.Close() // nothing more may come
	close(f.Got)
	var tries int
	for range f.Got {
		tries++
	}
	if tries != 4 {
		t.Fatalf("%d tries, want MaxAttempts (4)", tries)
	}
}

func TestHangingPushService(t *testing.T) {
	t.Parallel()
	t.Run("OthersGoOn", func(t *testing.T) {
		t.Parallel()
		slow, fast := pushtest.New(t), pushtest.New(t)
		slow.SetScript(func(*pushtest.Device, int) pushtest.Reply { return pushtest.Reply{Hang: true} })
		stuck := slow.NewDevice("stuck")
		other := fast.NewDevice("other")
		e := newEnv(t, func(o *push.Options) { o.SendersPerHost = 2; o.RequestTimeout = time.Hour }, slow, fast)
		a := e.user("hang1a@virginia.edu", stuck)
		b := e.user("hang1b@virginia.edu", other)
		// Enough of A's pushes to hold every sender of A's push service, and queue more.
		for range 5 {
			e.svc.Push(a, notification(cg.MessageID(uuid.NewString()), "to a"))
		}
		for range 2 {
			select {
			case <-slow.Hung:
			case <-time.After(30 * time.Second):
				t.Fatal("the slow push service got no request")
			}
		}
		e.svc.Push(b, notification(cg.MessageID(uuid.NewString()), "to b"))
		if r := waitPush(t, fast); r.Device != "other" {
			t.Fatalf("pushed to %s, want other", r.Device)
		}
		// A's requests are still held: B's went by them.
		if len(slow.Aborted) != 0 {
			t.Fatal("a hanging request ended before the other push service's push arrived")
		}
	})
	t.Run("TimedOut", func(t *testing.T) {
		t.Parallel()
		f := pushtest.New(t)
		f.SetScript(func(*pushtest.Device, int) pushtest.Reply { return pushtest.Reply{Hang: true} })
		d := f.NewDevice("stuck")
		e := newEnv(t, func(o *push.Options) { o.RequestTimeout = 2 * time.Second; o.MaxAttempts = 2 }, f)
		u := e.user("hang2@virginia.edu", d)
		e.svc.Push(u, notification(cg.MessageID(uuid.NewString()), "hi"))
		// The push service never answers, yet the delivery ends: each try timed out.
		e.waitEvent(push.EventFailed, push.EventSent)
		// Every request that reached the push service was given up by the service.
		for range len(f.Hung) {
			select {
			case <-f.Aborted:
			case <-time.After(30 * time.Second):
				t.Fatal("a hanging request was not ended by the service")
			}
		}
	})
}

func TestBurstCoalesced(t *testing.T) {
	t.Parallel()
	f := pushtest.New(t)
	phone, laptop := f.NewDevice("phone"), f.NewDevice("laptop")
	window := 500 * time.Millisecond
	e := newEnv(t, func(o *push.Options) { o.CoalesceWindow = window }, f)
	u := e.user("burst1@virginia.edu", phone, laptop)

	thread := cg.MessageID(uuid.NewString())
	var last *cg.Notification
	start := time.Now()
	for i := range 1000 {
		last = notification(thread, fmt.Sprintf("reply %d", i))
		e.svc.Push(u, last)
	}
	burst := time.Since(start)
	// Another thread of the same user is not held back by the first one's window.
	other := notification(cg.MessageID(uuid.NewString()), "elsewhere")
	e.svc.Push(u, other)

	pushes := map[string]int{}
	newest := map[string]bool{}
	otherSeen := map[string]bool{}
	for len(newest) < 2 || len(otherSeen) < 2 {
		r := waitPush(t, f)
		switch r.Payload["message_id"] {
		case string(other.MessageID):
			otherSeen[r.Device] = true
			continue
		case string(last.MessageID):
			newest[r.Device] = true
		}
		pushes[r.Device]++
	}
	// One push at once, then one per window while replies keep coming: with the burst
	// over within a window or two, two or three per device.
	limit := 2 + int(burst/window)
	for dev, n := range pushes {
		if n > limit {
			t.Errorf("%s got %d pushes of a burst of 1000 that took %v, want at most %d", dev, n, burst, limit)
		}
	}
	e.svc.Close()
	if extra := len(f.Got); extra != 0 {
		t.Errorf("%d more pushes after the newest reply", extra)
	}
}

func TestClosedServiceDropsQuietly(t *testing.T) {
	t.Parallel()
	f := pushtest.New(t)
	e := newEnv(t, func(o *push.Options) { o.CoalesceWindow = 0 }, f)
	u := e.user("closed1@virginia.edu", f.NewDevice("any"))
	e.svc.Close()
	e.svc.Push(u, notification(cg.MessageID(uuid.NewString()), "late"))
	e.svc.Close() // twice is fine
	if len(f.Got) != 0 {
		t.Fatal("a closed service pushed")
	}
}

func TestQueueFullDrops(t *testing.T) {
	t.Parallel()
	f := pushtest.New(t)
	f.SetScript(func(*pushtest.Device, int) pushtest.Reply { return pushtest.Reply{Hang: true} })
	e := newEnv(t, func(o *push.Options) {
		o.SendersPerHost, o.HostQueueSize, o.RequestTimeout = 1, 1, time.Hour
	}, f)
	u := e.user("drop1@virginia.edu", f.NewDevice("stuck"))
	for range 10 {
		e.svc.Push(u, notification(cg.MessageID(uuid.NewString()), "x"))
	}
	// One request held, one delivery queued: the rest are dropped, and Push never waited.
	e.waitEvent(push.EventDropped, push.EventSent)
}

func TestNewRefusesBadOptions(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	key[31] = 1
	for _, tc := range []struct {
		name string
		opts push.Options
	}{
		{"ErrNoKey", push.Options{Subject: testSubject}},
		{"ErrZeroKey", push.Options{PrivateKey: make([]byte, 32), Subject: testSubject}},
		{"ErrSubject", push.Options{PrivateKey: key, Subject: "ops@commongrounds.example"}},
		{"ErrBareMailto", push.Options{PrivateKey: key, Subject: "mailto:"}},
		{"ErrWildcardAlone", push.Options{PrivateKey: key, Subject: testSubject, AllowedHosts: []string{"*"}}},
		{"ErrURLNotHost", push.Options{PrivateKey: key, Subject: testSubject, AllowedHosts: []string{"https://fcm.googleapis.com/"}}},
		{"ErrInnerWildcard", push.Options{PrivateKey: key, Subject: testSubject, AllowedHosts: []string{"fcm.*.com"}}},
		{"ErrBadPort", push.Options{PrivateKey: key, Subject: testSubject, AllowedHosts: []string{"push.example:https"}}},
		{"ErrEmptyList", push.Options{PrivateKey: key, Subject: testSubject, AllowedHosts: []string{}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Registerer = prometheus.NewRegistry()
			if svc, err := push.New(nil, tc.opts); err == nil {
				svc.Close()
				t.Fatalf("New(%+v) took the options, want an error", tc.opts)
			}
		})
	}
}
