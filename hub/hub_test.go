package hub_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/hub"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/rooms"
)

// checkSeqs verifies that msgs are exactly seq 1..n in order.
func checkSeqs(t *testing.T, who string, seqs []int64, n int) {
	t.Helper()
	if len(seqs) != n {
		t.Fatalf("%s got %d messages, want %d", who, len(seqs), n)
	}
	for i, s := range seqs {
		if s != int64(i+1) {
			t.Fatalf("%s: message %d has seq %d, want %d (a gap or duplicate)", who, i, s, i+1)
		}
	}
}

// TestFanOut has 20 clients publish 50 messages each into one room at once: every client
// receives all 1000 exactly once, in seq order, and the history agrees.
func TestFanOut(t *testing.T) {
	t.Parallel()
	// A socket's pong is read after the publishes its client sent before it; on a saturated
	// machine (a load average of 18 on 2 cores) they took longer than the default 10 s to
	// commit, and the socket was dropped for want of a pong. This test is about fan-out.
	testFanOut(t, newEnv(t, func(_ *rooms.Service, o *hub.Options) { o.PingTimeout = time.Minute }))
}

// TestFanOutBatched is TestFanOut with publishes committed in batches, as the server does.
func TestFanOutBatched(t *testing.T) {
	t.Parallel()
	testFanOut(t, newEnv(t, func(s *rooms.Service, _ *hub.Options) {
		b := persistence.NewBatchingStore(s.Store.(*persistence.MessageStore), 2, 4, 256)
		t.Cleanup(b.Close)
		s.Store = b
	}))
}

// newGatheringEnv is a hub that counts as busy all the time, so that every writer waits
// WriteDelay to gather frames; the test fails if none did.
func newGatheringEnv(t *testing.T) *env {
	e := newEnv(t, func(_ *rooms.Service, o *hub.Options) {
		o.WriteDelay = 5 * time.Millisecond
		o.BusyWriters = -1
	})
	t.Cleanup(func() {
		if n := counterValue(t, e.reg, "commongrounds_ws_gathered_writes_total"); n == 0 {
			t.Error("no writer gathered frames")
		}
	})
	return e
}

// TestFanOutGathered is TestFanOut with the writers gathering frames: nothing is lost,
// duplicated or reordered by the wait.
func TestFanOutGathered(t *testing.T) {
	t.Parallel()
	e := newGatheringEnv(t)
	testFanOut(t, e)
	writes, deliveries := counterValue(t, e.reg, "commongrounds_ws_writes_total"), counterValue(t, e.reg, "commongrounds_ws_deliveries_total")
	t.Logf("%.0f deliveries in %.0f writes", deliveries, writes)
}

func testFanOut(t *testing.T, e *env) {
	const clients, each = 20, 50
	class := e.newClass()
	cs := make([]*client, clients)
	for i := range cs {
		u := e.newUser()
		e.enroll(class, u)
		cs[i] = e.dial(u)
		cs[i].subscribe(class, nil)
	}
	var wg sync.WaitGroup
	seqs := make([][]int64, clients)
	acks := make([]int, clients)
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				c.send(map[string]any{"type": "publish", "ref": fmt.Sprint(j), "room": class, "content": fmt.Sprintf("hello %d from %d", j, i)})
			}
		}()
	}
	wg.Wait()
	for i, c := range cs {
		for len(seqs[i]) < clients*each || acks[i] < each {
			f := c.expect("message", "ack", "error")
			switch f.Type {
			case "message":
				seqs[i] = append(seqs[i], f.Message.Seq)
			case "ack":
				acks[i]++
			default:
				t.Fatalf("client %d: %s", i, f.raw)
			}
		}
		checkSeqs(t, fmt.Sprintf("client %d", i), seqs[i], clients*each)
	}
	history, err := e.store.ListMessages(context.Background(), class, cg.MessageFilter{AfterSeq: ptr[int64](0), Limit: 2000})
	if err != nil {
		t.Fatal(err)
	}
	hs := make([]int64, len(history.Messages))
	for i, m := range history.Messages {
		hs[i] = m.Seq
	}
	checkSeqs(t, "history", hs, clients*each)
}

// TestSlowReader stops reading one client: it is disconnected as a slow consumer while the others
// receive everything; it then resumes with since_seq and has everything.
func TestSlowReader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(_ *rooms.Service, o *hub.Options) {
		o.MaxQueueBytes = 1 << 20
		// The queue's bound, not a write's timeout or an unanswered ping (the client reads
		// nothing, so it answers no ping), is what drops it, however slowly a busy machine
		// publishes.
		o.WriteTimeout = 2 * time.Minute
		o.PingInterval = time.Hour
	})
	class := e.newClass()
	slowUser, fastUser, author := e.newUser(), e.newUser(), e.newUser()
	e.enroll(class, slowUser, fastUser, author)

	// The slow client reads nothing after subscribing: a raw socket whose frames we never read.
	// (The publishes below take a while on a busy machine; the server's close of the socket is
	// waited for with a deadline of its own.)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A small receive buffer keeps the kernel from absorbing what the client does not read.
	dialer := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = setRcvBuf(fd, 4096) })
		return errors.Join(err, serr)
	}}
	slow, _, err := websocket.Dial(ctx, e.wsURL, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + slowUser.token}},
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	if err := slow.Write(ctx, websocket.MessageText, []byte(`{"type":"subscribe","room":"`+string(class)+`"}`)); err != nil {
		t.Fatal(err)
	}
	// Its subscription is in place before anything is published: its reply is the one frame it
	// reads before it stops reading (sockets are served concurrently, so a later subscribe on
	// another socket would not say so).
	if _, data, err := slow.Read(ctx); err != nil || !strings.Contains(string(data), `"type":"subscribed"`) {
		t.Fatalf("slow client's subscribe: %s %v", data, err)
	}
	fast := e.dial(fastUser)
	fast.subscribe(class, nil)
	big := strings.Repeat("x", 3990)
	const n = 1500
	for i := range n {
		if _, err := e.svc.Publish(ctx, author.id, class, fmt.Sprintf("%d %s", i, big), nil, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	var got []int64
	for len(got) < n {
		got = append(got, fast.expect("message").Message.Seq)
	}
	checkSeqs(t, "fast client", got, n)

	// Now read the slow socket: some messages, then the close for slow consumers. The server
	// closed it while the messages were published; what is left is to read what it queued
	// before, and the close frame behind it, or to find the connection dropped (the close
	// handshake ends after 5 s). A socket still open when the read's own deadline ends was
	// never closed.
	readCtx, cancelRead := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancelRead()
	var slowSeqs []int64
	var closeErr error
	for {
		_, data, err := slow.Read(readCtx)
		if err != nil {
			closeErr = err
			break
		}
		if strings.Contains(string(data), `"type":"message"`) {
			var f struct {
				Message cg.Message `json:"message"`
			}
			if err := jsonUnmarshal(data, &f); err != nil {
				t.Fatal(err)
			}
			slowSeqs = append(slowSeqs, f.Message.Seq)
		}
	}
	// The close frame sits behind everything the client did not read; if the client does not
	// read it within the close handshake's time, the server drops the connection.
	if readCtx.Err() != nil {
		t.Fatalf("slow client still open after 15 s (%v): the server never closed it", closeErr)
	}
	if code := websocket.CloseStatus(closeErr); code != hub.CloseSlowConsumer && code != -1 {
		t.Fatalf("slow client closed with %v (%v), want %d or a dropped connection", code, closeErr, hub.CloseSlowConsumer)
	}
	if got := counterValue(t, e.reg, "commongrounds_ws_slow_consumers_total"); got != 1 {
		t.Fatalf("slow consumers counted = %v, want 1", got)
	}
	if len(slowSeqs) >= n {
		t.Fatalf("slow client got all %d messages; it was never slow", len(slowSeqs))
	}
	checkSeqs(t, "slow client before the close", slowSeqs, len(slowSeqs))

	// It resumes and has everything.
	again := e.dial(slowUser)
	since := int64(len(slowSeqs))
	again.subscribe(class, &since)
	for len(slowSeqs) < n {
		slowSeqs = append(slowSeqs, again.expect("message").Message.Seq)
	}
	checkSeqs(t, "slow client after resuming", slowSeqs, n)
}

// TestResume disconnects a client while others publish, past what the room keeps in memory, and
// resumes it while publishing goes on: no gap and no duplicate.
func TestResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	class := e.newClass()
	reader, author, watcher := e.newUser(), e.newUser(), e.newUser()
	e.enroll(class, reader, author, watcher)
	w := e.dial(watcher) // keeps the room active on this instance throughout
	w.subscribe(class, nil)
	ctx := context.Background()
	publish := func(n int) error {
		for range n {
			if _, err := e.svc.Publish(ctx, author.id, class, "m", nil, "", nil); err != nil {
				return err
			}
		}
		return nil
	}
	c := e.dial(reader)
	c.subscribe(class, nil)
	if err := publish(10); err != nil {
		t.Fatal(err)
	}
	var seqs []int64
	for len(seqs) < 10 {
		seqs = append(seqs, c.expect("message").Message.Seq)
	}
	_ = c.ws.Close(websocket.StatusNormalClosure, "")
	if err := publish(600); err != nil { // more than the room's in-memory ring
		t.Fatal(err)
	}

	var wg sync.WaitGroup
	var pubErr error
	wg.Add(1)
	go func() { defer wg.Done(); pubErr = publish(300) }() // while resuming
	c2 := e.dial(reader)
	since := seqs[len(seqs)-1]
	sub := c2.subscribe(class, &since)
	wg.Wait()
	if pubErr != nil {
		t.Fatal(pubErr)
	}
	if sub.LastSeq < 610 {
		t.Fatalf("last_seq=%d, want at least 610", sub.LastSeq)
	}
	for len(seqs) < 910 {
		seqs = append(seqs, c2.expect("message").Message.Seq)
	}
	checkSeqs(t, "resumed client", seqs, 910)

	t.Run("FromRing", func(t *testing.T) {
		// A client a few messages behind is served from memory, and also gets nothing twice.
		// Its socket is the subtest's: a failure fails the subtest, not its parent.
		c3 := e.dialFor(t, reader)
		since := int64(900)
		c3.subscribe(class, &since)
		if err := publish(5); err != nil {
			t.Fatal(err)
		}
		var got []int64
		for len(got) < 15 {
			got = append(got, c3.expect("message").Message.Seq)
		}
		for i, s := range got {
			if s != int64(901+i) {
				t.Fatalf("message %d has seq %d, want %d", i, s, 901+i)
			}
		}
	})
}

// TestGapRepairedAtOnce: a message whose announcement was lost is read from the store as soon
// as the one after it has waited GapWait, not at the next reconcile (an hour away here).
func TestGapRepairedAtOnce(t *testing.T) {
	t.Parallel()
	const gapWait = 100 * time.Millisecond
	e := newEnv(t, func(_ *rooms.Service, o *hub.Options) {
		o.GapWait = gapWait
		o.ReconcileInterval = time.Hour
	})
	class := e.newClass()
	u := e.newUser()
	e.enroll(class, u)
	c := e.dial(u)
	c.subscribe(class, nil)
	ctx := context.Background()
	const n = 3
	for i := range n {
		if _, err := e.svc.Publish(ctx, u.id, class, fmt.Sprint("announced ", i), nil, "", nil); err != nil {
			t.Fatal(err)
		}
		if f := c.expect("message"); f.Message.Seq != int64(i+1) {
			t.Fatalf("message %d has seq %d", i+1, f.Message.Seq)
		}
	}
	// n+1 is committed and never announced; n+2 is announced and waits for it.
	if _, _, err := e.store.CreateMessage(ctx, cg.NewMessage{Class: class, User: u.id, Content: "lost"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Publish(ctx, u.id, class, "announced after", nil, "", nil); err != nil {
		t.Fatal(err)
	}
	// A few gap waits, with room for a slow machine; without the repair, the reconcile's hour.
	const within = 30 * gapWait
	for seq := int64(n + 1); seq <= n+2; seq++ {
		f := c.nextWithin(within)
		for f.Type == "presence" {
			f = c.nextWithin(within)
		}
		if f.Type != "message" || f.Message.Seq != seq {
			t.Fatalf("frame %s, want the message of seq %d", f.raw, seq)
		}
	}
	if got := counterValue(t, e.reg, "commongrounds_room_gaps_repaired_total"); got != 1 {
		t.Fatalf("gaps repaired = %v, want 1", got)
	}
}

// TestNotEnrolled refuses subscribe and publish in a class the user is not in, and stores
// nothing.
func TestNotEnrolled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	class := e.newClass()
	u := e.newUser()
	c := e.dial(u)
	c.send(map[string]any{"type": "subscribe", "ref": "s", "room": class})
	if f := c.expect("error"); f.Code != "not_enrolled" || f.Ref != "s" {
		t.Fatalf("subscribe: %s, want not_enrolled with ref s", f.raw)
	}
	c.send(map[string]any{"type": "publish", "ref": "p", "room": class, "content": "hi"})
	if f := c.expect("error"); f.Code != "not_enrolled" || f.Ref != "p" {
		t.Fatalf("publish: %s, want not_enrolled with ref p", f.raw)
	}
	c.send(map[string]any{"type": "typing", "ref": "t", "room": class})
	if f := c.expect("error"); f.Code != "not_enrolled" {
		t.Fatalf("typing: %s, want not_enrolled", f.raw)
	}
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM class_messages`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("messages stored = %d (%v), want 0", n, err)
	}
}

// TestBadInput answers each malformed frame with the documented error, and the socket stays
// usable; invalid UTF-8 and oversized frames close it with 1007 and 1009.
func TestBadInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	class, other := e.newClass(), e.newClass()
	u := e.newUser()
	e.enroll(class, u)
	e.enroll(other, u)
	ctx := context.Background()
	foreign, err := e.svc.Publish(ctx, u.id, other, "in the other room", nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	root, err := e.svc.Publish(ctx, u.id, class, "root", nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := e.svc.Publish(ctx, u.id, class, "reply", &root.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	c := e.dial(u)
	room := string(class)
	tests := []struct {
		name, frame, code string
	}{
		{"ErrNotJSON", `hello`, "invalid_frame"},
		{"ErrNotObject", `[1,2]`, "invalid_frame"},
		{"ErrNoType", `{"ref":"x"}`, "invalid_frame"},
		{"ErrUnknownType", `{"type":"dance","ref":"x"}`, "unknown_type"},
		{"ErrRefNotString", `{"type":"ping","ref":5}`, "invalid_frame"},
		{"ErrNoRoom", `{"type":"subscribe","ref":"x"}`, "invalid_frame"},
		{"ErrRoomNotUUID", `{"type":"subscribe","ref":"x","room":"abc"}`, "not_found"},
		{"ErrUnknownRoom", `{"type":"subscribe","ref":"x","room":"00000000-0000-4000-8000-000000000000"}`, "not_found"},
		{"ErrNegativeSince", `{"type":"subscribe","ref":"x","room":"` + room + `","since_seq":-1}`, "invalid_frame"},
		{"ErrEmpty", `{"type":"publish","ref":"x","room":"` + room + `","content":"   "}`, "invalid_content"},
		{"ErrNoContent", `{"type":"publish","ref":"x","room":"` + room + `"}`, "invalid_content"},
		{"ErrTooLong", `{"type":"publish","ref":"x","room":"` + room + `","content":"` + strings.Repeat("é", 4001) + `"}`, "invalid_content"},
		{"ErrControlChar", `{"type":"publish","ref":"x","room":"` + room + `","content":"a\u0007b"}`, "invalid_content"},
		{"ErrParentOtherRoom", `{"type":"publish","ref":"x","room":"` + room + `","content":"a","parent_id":"` + string(foreign.ID) + `"}`, "invalid_parent"},
		{"ErrParentIsReply", `{"type":"publish","ref":"x","room":"` + room + `","content":"a","parent_id":"` + string(reply.ID) + `"}`, "invalid_parent"},
		{"ErrParentUnknown", `{"type":"publish","ref":"x","room":"` + room + `","content":"a","parent_id":"00000000-0000-4000-8000-000000000000"}`, "invalid_parent"},
		{"ErrParentNotUUID", `{"type":"publish","ref":"x","room":"` + room + `","content":"a","parent_id":"zzz"}`, "invalid_parent"},
	}
	for _, tt := range tests {
		c.send(tt.frame)
		f := c.expect("error")
		if f.Code != tt.code {
			t.Errorf("%s: code=%s (%s), want %s", tt.name, f.Code, f.raw, tt.code)
		}
		if strings.Contains(tt.frame, `"ref":"x"`) && f.Ref != "x" {
			t.Errorf("%s: ref=%q, want x", tt.name, f.Ref)
		}
	}
	// Still usable.
	c.send(`{"type":"ping","ref":"still"}`)
	if f := c.expect("pong"); f.Ref != "still" {
		t.Fatalf("pong ref=%q", f.Ref)
	}
	// The 4000-character limit counts characters, not bytes.
	c.send(`{"type":"publish","ref":"ok","room":"` + room + `","content":"` + strings.Repeat("é", 4000) + `"}`)
	if f := c.expect("ack"); f.Ref != "ok" || f.Message.Seq != 3 {
		t.Fatalf("publish of 4000 characters: %s", f.raw)
	}

	t.Run("ErrInvalidUTF8", func(t *testing.T) {
		c := e.dialFor(t, u)
		if err := c.ws.Write(ctx, websocket.MessageText, []byte("{\"type\":\"publish\",\"room\":\""+room+"\",\"content\":\"\xff\xfe\"}")); err != nil {
			t.Fatal(err)
		}
		if code := c.closeStatus(); code != websocket.StatusInvalidFramePayloadData {
			t.Fatalf("close=%v, want 1007", code)
		}
	})
	t.Run("ErrTooLarge", func(t *testing.T) {
		c := e.dialFor(t, u)
		_ = c.ws.Write(ctx, websocket.MessageText, []byte(`{"type":"publish","room":"`+room+`","content":"`+strings.Repeat("a", 17<<10)+`"}`))
		if code := c.closeStatus(); code != websocket.StatusMessageTooBig {
			t.Fatalf("close=%v, want 1009", code)
		}
	})
	var n int
	if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM class_messages WHERE class_id = $1`, class).Scan(&n); err != nil || n != 3 {
		t.Fatalf("messages in room = %d (%v), want 3: bad frames stored nothing", n, err)
	}
}

// TestAnonymity checks pseudonyms: stable for a user in a class across sessions, different
// across classes and users. (Every frame of every test is also checked for author identities.)
func TestAnonymity(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	c1, c2 := e.newClass(), e.newClass()
	a, b := e.newUser(), e.newUser()
	e.enroll(c1, a, b)
	e.enroll(c2, a)
	s1 := e.dial(a).subscribe(c1, nil)
	s2 := e.dial(a).subscribe(c1, nil) // another socket, another session below
	token, _, _, err := e.sessions.Create(context.Background(), a.id)
	if err != nil {
		t.Fatal(err)
	}
	s3 := e.dial(&user{id: a.id, token: token}).subscribe(c1, nil)
	other := e.dial(a).subscribe(c2, nil)
	bs := e.dial(b).subscribe(c1, nil)
	if s1.AnonID != s2.AnonID || s1.AnonID != s3.AnonID {
		t.Fatalf("anon ids in one class differ: %s %s %s", s1.AnonID, s2.AnonID, s3.AnonID)
	}
	if s1.AnonID == other.AnonID || s1.AnonID == bs.AnonID {
		t.Fatalf("anon id reused: class1 %s, class2 %s, other user %s", s1.AnonID, other.AnonID, bs.AnonID)
	}
	if !strings.HasPrefix(string(s1.AnonID), "Anon_") || len(s1.AnonID) != 11 {
		t.Fatalf("anon id %q does not look like Anon_a3f2e1", s1.AnonID)
	}
	// Leaving and re-joining the class keeps the pseudonym.
	ctx := context.Background()
	if _, err := e.db.Pool.Exec(ctx, `DELETE FROM user_classes WHERE user_id = $1 AND class_id = $2`, a.id, c1); err != nil {
		t.Fatal(err)
	}
	e.enroll(c1, a)
	if again := e.dial(a).subscribe(c1, nil); again.AnonID != s1.AnonID {
		t.Fatalf("after re-joining anon id %s, want %s", again.AnonID, s1.AnonID)
	}
}

// TestClientMsgID publishes the same client_msg_id twice: one message, the same both times.
func TestClientMsgID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	class := e.newClass()
	u := e.newUser()
	e.enroll(class, u)
	c := e.dial(u)
	for i := range 3 {
		c.send(map[string]any{"type": "publish", "ref": fmt.Sprint(i), "room": class, "content": "once", "client_msg_id": "abc-1"})
	}
	var ids []cg.MessageID
	for range 3 {
		ids = append(ids, c.expect("ack").Message.ID)
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Fatalf("acks carry different messages: %v", ids)
	}
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM class_messages`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("messages stored = %d (%v), want 1", n, err)
	}
}

// TestAckBeforeMessage checks that a publisher subscribed to its room gets the ack first.
func TestAckBeforeMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	class := e.newClass()
	u := e.newUser()
	e.enroll(class, u)
	c := e.dial(u)
	c.subscribe(class, nil)
	c.send(map[string]any{"type": "publish", "ref": "p", "room": class, "content": "hi"})
	if f := c.expect("ack", "message"); f.Type != "ack" || f.Message.Seq != 1 || *f.Message.Content != "hi" {
		t.Fatalf("first frame %s, want the ack of seq 1", f.raw)
	}
	if f := c.expect("message"); f.Message.Seq != 1 {
		t.Fatalf("then %s, want message seq 1", f.raw)
	}
}

// TestTypingAndPresence: typing reaches the others only; presence counts distinct users.
func TestTypingAndPresence(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(_ *rooms.Service, o *hub.Options) { o.PresenceInterval = 10 * time.Millisecond })
	class := e.newClass()
	a, b := e.newUser(), e.newUser()
	e.enroll(class, a, b)
	ca := e.dial(a)
	ca.subscribe(class, nil)
	ca2 := e.dial(a) // a second socket of the same user does not count twice
	ca2.subscribe(class, nil)
	cb := e.dial(b)
	sb := cb.subscribe(class, nil)
	if sb.Online != 2 {
		t.Fatalf("online in subscribed = %d, want 2", sb.Online)
	}
	for {
		if f := ca.expect("presence"); f.Online == 2 {
			break
		}
	}
	cb.send(map[string]any{"type": "typing", "room": class})
	if f := ca.expect("typing"); f.AnonID != sb.AnonID {
		t.Fatalf("typing anon=%s, want %s", f.AnonID, sb.AnonID)
	}
	// b gets no typing of its own: its next non-presence frame is the pong.
	cb.send(map[string]any{"type": "ping", "ref": "p"})
	for {
		f := cb.next()
		if f.Type == "typing" {
			t.Fatalf("b got its own typing: %s", f.raw)
		}
		if f.Type == "pong" {
			break
		}
	}
	_ = cb.ws.Close(websocket.StatusNormalClosure, "")
	for {
		if f := ca.expect("presence"); f.Online == 1 {
			break
		}
	}
}

// TestModeration: hiding and restoring reach the room; hidden messages stay in history as
// tombstones.
func TestModeration(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	class := e.newClass()
	a, mod := e.newUser(), e.newUser()
	e.enroll(class, a)
	c := e.dial(a)
	c.subscribe(class, nil)
	ctx := context.Background()
	m, err := e.svc.Publish(ctx, a.id, class, "rude", nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.expect("message")
	if err := e.svc.SetHidden(ctx, mod.id, m.ID, true); err != nil {
		t.Fatal(err)
	}
	if f := c.expect("message_hidden"); f.MessageID != string(m.ID) || f.Room != class || f.Seq != 2 || !f.Message.Hidden || f.Message.Content != nil {
		t.Fatalf("got %s", f.raw)
	}
	page, err := e.svc.History(ctx, a.id, class, cg.MessageFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if hist := page.Messages; len(hist) != 1 || !hist[0].Hidden || hist[0].Content != nil || hist[0].Seq != 1 || page.LastSeq != 2 {
		t.Fatalf("history %+v, last_seq %d, want one hidden tombstone and position 2", hist, page.LastSeq)
	}
	if err := e.svc.SetHidden(ctx, mod.id, m.ID, false); err != nil {
		t.Fatal(err)
	}
	if f := c.expect("message_restored"); f.Message.ID != m.ID || f.Message.Content == nil || *f.Message.Content != "rude" {
		t.Fatalf("got %s", f.raw)
	}
}

// TestSessionEnds closes the sockets of a revoked session with 4001, and refuses the upgrade of
// a revoked token. Of the session's three sockets, the one in the middle closed before.
func TestSessionEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.newUser()
	c := e.dial(u)
	gone := e.dial(u)
	c3 := e.dial(u)
	other := e.dial(e.newUser())
	if err := gone.ws.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the closed socket gone from the hub", func() bool { return e.hub.Conns() == 3 })
	sid, _, _, err := e.sessions.Signer.Verify(u.token)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.sessions.Revoke(context.Background(), cg.SessionID(sid)); err != nil {
		t.Fatal(err)
	}
	if err := e.hub.RevokeSession(context.Background(), cg.SessionID(sid)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{c, c3} {
		if code := c.closeStatus(); code != hub.CloseSessionEnded {
			t.Fatalf("close=%v, want 4001", code)
		}
	}
	other.send(`{"type":"ping","ref":"alive"}`)
	other.expect("pong")
	if _, err := e.tryDial(u.token, nil); err == nil {
		t.Fatal("a revoked token opened a socket")
	}
}

// TestSessionExpires: a socket stays open, answering pings, until its session's end, and then
// closes with 4001; whether its reader parks (the hub pings) or not (the library pings), and
// with no ping due before the end.
func TestSessionExpires(t *testing.T) {
	t.Parallel()
	pings := func(every time.Duration) envOption {
		return func(_ *rooms.Service, o *hub.Options) {
			o.PingInterval = every
			o.PingTimeout = 2 * time.Second
		}
	}
	for _, tc := range []struct {
		name  string
		env   func(testing.TB, ...envOption) *env
		pings time.Duration
	}{
		{"Parked", newEnv, 50 * time.Millisecond},
		{"Library", newPlainEnv, 50 * time.Millisecond},
		{"NoPingDue", newEnv, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := tc.env(t, pings(tc.pings))
			u := e.newUser()
			token, expiresAt := e.newSession(u, 2*time.Second) // a token's expiry is in whole seconds
			c, err := e.tryDial(token, nil)
			if err != nil {
				t.Fatal(err)
			}
			if code := c.closeStatus(); code != hub.CloseSessionEnded {
				t.Fatalf("close=%v (%v), want 4001", code, c.err)
			}
			if now := time.Now(); now.Before(expiresAt) {
				t.Fatalf("closed %v before the session's end", expiresAt.Sub(now))
			}
			if !strings.Contains(c.err.Error(), "session expired") {
				t.Fatalf("close reason: %v", c.err)
			}
		})
	}
}

// TestSessionExpiresSilentPeer: the session's end closes a socket with 4001 even while the
// library's ping waits for a pong the client does not send.
func TestSessionExpiresSilentPeer(t *testing.T) {
	t.Parallel()
	e := newPlainEnv(t, func(_ *rooms.Service, o *hub.Options) {
		o.PingInterval = 300 * time.Millisecond
		o.PingTimeout = time.Minute
	})
	u := e.newUser()
	token, _ := e.newSession(u, 2*time.Second)
	_, br := rawDial(t, e, token, nil) // reads frames, answers nothing
	pings := 0
	for {
		op, payload := readRawFrameOf(t, br)
		if op == 0x9 {
			pings++
			continue
		}
		if op != 0x8 || len(payload) < 2 || hub.CloseSessionEnded != websocket.StatusCode(binary.BigEndian.Uint16([]byte(payload))) {
			t.Fatalf("frame of opcode %#x (%q), want a ping or a close with 4001", op, payload)
		}
		break
	}
	if pings != 1 {
		t.Fatalf("%d pings before the close, want the one left unanswered", pings)
	}
}

// TestClosedSocketEndsItsWork: a socket closed while its reader waits on the database, in the
// middle of a batch of subscribes, leaves the hub without waiting for the database (once its
// close handshake is over).
func TestClosedSocketEndsItsWork(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	u := e.newUser()
	var behind []byte
	for i := range 6 {
		class := e.newClass()
		e.enroll(class, u)
		if _, err := e.svc.Publish(context.Background(), u.id, class, "m", nil, "", nil); err != nil {
			t.Fatal(err)
		}
		behind = append(behind, maskedFrame(fmt.Sprintf(`{"type":"subscribe","ref":"s%d","room":"%s","since_seq":0}`, i, class))...)
	}
	// The messages cannot be read while this transaction lasts: to the end of the test.
	tx, err := e.db.Pool.Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(context.Background(), `LOCK TABLE class_messages IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	rawDial(t, e, u.token, behind) // the subscribes come with the upgrade: one batch
	waitUntil(t, "the reader waiting on the lock", func() bool {
		var n int
		err := e.db.Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		return err == nil && n > 0
	})
	sid, _, _, err := e.sessions.Signer.Verify(u.token)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.hub.RevokeSession(context.Background(), cg.SessionID(sid)); err != nil {
		t.Fatal(err)
	}
	// Each of the six backfills would otherwise wait out the statement timeout, in turn.
	waitUntil(t, "the closed socket gone from the hub while the lock lasts", func() bool { return e.hub.Conns() == 0 })
}

// TestUpgradeRefusals: a foreign origin and too many sockets are refused before the upgrade.
func TestUpgradeRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(_ *rooms.Service, o *hub.Options) { o.MaxSocketsPerUser = 2 })
	u := e.newUser()
	if _, err := e.tryDial(u.token, http.Header{"Origin": {"https://evil.example"}}); err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("foreign origin: err=%v, want a 403 refusal", err)
	}
	if _, err := e.tryDial(u.token, http.Header{"Origin": {"https://app.example"}}); err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	e.dial(u)
	if _, err := e.tryDial(u.token, nil); err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("third socket: err=%v, want a 429 refusal", err)
	}
	if _, err := e.tryDial("nope", nil); err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("bad token: err=%v, want a 401 refusal", err)
	}
}

// TestForeignOriginRefused: a browser page of another origin is refused with 403 and a problem
// before anything else is looked at, its credentials (or their absence) included.
func TestForeignOriginRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	req, err := http.NewRequest(http.MethodGet, e.srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Status=%d, want 403", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type=%q, want application/problem+json", ct)
	}
	var p struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if p.Status != http.StatusForbidden || p.Code != cg.EFORBIDDEN {
		t.Fatalf("problem %+v, want status 403 and code %s", p, cg.EFORBIDDEN)
	}
}

// TestShutdown closes every socket with 1012 after flushing what it was owed.
func TestShutdown(t *testing.T) {
	t.Parallel()
	testShutdown(t, newEnv(t))
}

// TestShutdownGathered: frames whose writer waits to gather are flushed by a shutdown too.
func TestShutdownGathered(t *testing.T) {
	t.Parallel()
	testShutdown(t, newGatheringEnv(t))
}

func testShutdown(t *testing.T, e *env) {
	class := e.newClass()
	u := e.newUser()
	e.enroll(class, u)
	c := e.dial(u)
	c.subscribe(class, nil)
	for range 50 {
		if _, err := e.svc.Publish(context.Background(), u.id, class, "bye", nil, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	// Every message was queued before the shutdown begins, once the last one arrived... which
	// we do not wait for: what is queued when Shutdown starts must still be written.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.hub.Shutdown(ctx) }()
	var seqs []int64
	for {
		f := c.next()
		if f.Type == "message" {
			seqs = append(seqs, f.Message.Seq)
		}
		if len(seqs) == 50 {
			break
		}
	}
	if code := c.closeStatus(); code != websocket.StatusServiceRestart {
		t.Fatalf("close=%v, want 1012", code)
	}
	checkSeqs(t, "client", seqs, 50)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestConnectCycles opens and closes 1000 sockets that join a room; the goroutines return to
// the baseline.
func TestConnectCycles(t *testing.T) {
	e := newEnv(t)
	class := e.newClass()
	u := e.newUser()
	e.enroll(class, u)
	base := runtime.NumGoroutine()
	for i := range 1000 {
		c := e.dial(u)
		if i%10 == 0 {
			c.subscribe(class, nil)
		}
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
		<-c.done
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.hub.Conns() > 0 || runtime.NumGoroutine() > base+5 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("after 1000 cycles: %d sockets, %d goroutines (baseline %d)\n%s", e.hub.Conns(), runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestLeaveRoom ends the subscriptions of a user who dropped the class: the socket is told, and
// later messages of the room no longer reach it.
func TestLeaveRoom(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	class := e.newClass()
	leaver, stayer := e.newUser(), e.newUser()
	e.enroll(class, leaver, stayer)
	cl := e.dial(leaver)
	cl.subscribe(class, nil)
	cs := e.dial(stayer)
	cs.subscribe(class, nil)
	if _, err := e.db.Pool.Exec(context.Background(), `DELETE FROM user_classes WHERE user_id = $1`, leaver.id); err != nil {
		t.Fatal(err)
	}
	if err := e.hub.LeaveRoom(context.Background(), leaver.id, class); err != nil {
		t.Fatal(err)
	}
	if f := cl.expect("unsubscribed"); f.Room != class {
		t.Fatalf("got %s", f.raw)
	}
	if _, err := e.svc.Publish(context.Background(), stayer.id, class, "after you left", nil, "", nil); err != nil {
		t.Fatal(err)
	}
	cs.expect("message") // delivered to every member at once: the leaver would have it queued by now
	cl.send(`{"type":"ping","ref":"p"}`)
	if f := cl.expect("pong", "message"); f.Type != "pong" {
		t.Fatalf("the leaver got %s", f.raw)
	}
	// Nor can the leaver tell the room it is typing, on the socket the room was left on.
	cl.send(map[string]any{"type": "typing", "ref": "t", "room": class})
	if f := cl.expect("error"); f.Code != "not_enrolled" || f.Ref != "t" {
		t.Fatalf("typing after leaving: %s, want not_enrolled", f.raw)
	}
	cs.send(`{"type":"ping","ref":"p"}`)
	if f := cs.expect("pong", "typing"); f.Type != "pong" {
		t.Fatalf("the stayer got %s", f.raw)
	}
}

// TestResumeHidesHidden resumes from the room's in-memory ring after a message was hidden: the
// resumed copy is the hidden tombstone, not the original text.
func TestResumeHidesHidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	class := e.newClass()
	a, mod := e.newUser(), e.newUser()
	e.enroll(class, a)
	keep := e.dial(a) // keeps the room, and its ring, active
	keep.subscribe(class, nil)
	ctx := context.Background()
	m, err := e.svc.Publish(ctx, a.id, class, "secret rude text", nil, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	keep.expect("message")
	if err := e.svc.SetHidden(ctx, mod.id, m.ID, true); err != nil {
		t.Fatal(err)
	}
	keep.expect("message_hidden")
	c := e.dial(a)
	c.subscribe(class, ptr[int64](0))
	if f := c.expect("message"); !f.Message.Hidden || f.Message.Content != nil || strings.Contains(f.raw, "secret") {
		t.Fatalf("resumed %s, want the hidden tombstone", f.raw)
	}
}

// TestResumeLargeMessages resumes 120 messages of 4000 four-byte characters (about 2 MB, twice
// the socket's queue bound): the client is served at its pace and not closed as slow.
func TestResumeLargeMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	class := e.newClass()
	a := e.newUser()
	e.enroll(class, a)
	keep := e.dial(a)
	keep.subscribe(class, nil)
	big := strings.Repeat("😀", 4000)
	for range 120 {
		if _, err := e.svc.Publish(context.Background(), a.id, class, big, nil, "", nil); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []int64
	for len(seqs) < 120 {
		seqs = append(seqs, keep.expect("message").Message.Seq)
	}
	for _, since := range []int64{0, 100} { // from the store, and from the ring
		c := e.dial(a)
		c.subscribe(class, &since)
		checkSeqs(t, "resumed", append(make([]int64, 0, 120), collectFrom(t, c, since, 120)...), 120)
	}
}

// collectFrom reads messages from since+1 to n and returns 1..n, failing on a gap.
func collectFrom(t *testing.T, c *client, since int64, n int) []int64 {
	t.Helper()
	out := make([]int64, 0, n)
	for s := int64(1); s <= since; s++ {
		out = append(out, s)
	}
	for len(out) < n {
		out = append(out, c.expect("message").Message.Seq)
	}
	return out
}

// countingStore counts the room-access lookups that reach the store.
type countingStore struct {
	*persistence.MessageStore
	mu      sync.Mutex
	lookups []int // guarded by mu: the number of pairs of each lookup, in order
}

func (s *countingStore) RoomAccess(ctx context.Context, user cg.UserID, class cg.ClassID) (cg.AnonID, error) {
	s.count(1)
	return s.MessageStore.RoomAccess(ctx, user, class)
}

func (s *countingStore) RoomAccesses(ctx context.Context, reqs []cg.AccessRequest) []cg.AccessResult {
	s.count(len(reqs))
	return s.MessageStore.RoomAccesses(ctx, reqs)
}

func (s *countingStore) count(n int) {
	s.mu.Lock()
	s.lookups = append(s.lookups, n)
	s.mu.Unlock()
}

func (s *countingStore) Lookups() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lookups)
}

// TestPipelinedSubscribes sends four subscribes and a ping in one write, as a client opening
// its rooms does: the four access checks go to the store as one lookup, and the replies come
// in the order of the frames — each room's subscribed before its messages, the refusals with
// their refs, the ping's pong last.
func TestPipelinedSubscribes(t *testing.T) {
	t.Parallel()
	var store *countingStore
	// Parked: subscribes are answered together only when the reader can peek at what follows.
	e := newEnv(t, parking, func(svc *rooms.Service, _ *hub.Options) {
		store = &countingStore{MessageStore: svc.Store.(*persistence.MessageStore)}
		svc.Store = store
	})
	a, d, notMine := e.newClass(), e.newClass(), e.newClass()
	u, other := e.newUser(), e.newUser()
	e.enroll(a, u)
	e.enroll(d, u)
	e.enroll(notMine, other)
	ctx := context.Background()
	for _, content := range []string{"one", "two"} {
		if _, _, err := e.store.CreateMessage(ctx, cg.NewMessage{Class: a, User: u.id, Content: content}); err != nil {
			t.Fatal(err)
		}
	}
	nc, br := rawDial(t, e, u.token, nil)
	writeFrames(t, nc,
		`{"type":"subscribe","ref":"a","room":"`+string(a)+`","since_seq":0}`,
		`{"type":"subscribe","ref":"b","room":"`+string(notMine)+`"}`,
		`{"type":"subscribe","ref":"c","room":"00000000-0000-4000-8000-000000000000"}`,
		`{"type":"subscribe","ref":"d","room":"`+string(d)+`"}`,
		`{"type":"ping","ref":"p"}`)
	want := []string{"subscribed a", "message one", "message two", "error b not_enrolled", "error c not_found", "subscribed d", "pong p"}
	var got []string
	for len(got) < len(want) {
		raw := readRawFrame(t, br)
		f := parseRawText(t, raw)
		switch f.Type {
		case "presence":
			continue
		case "message":
			var m cg.Message
			if err := json.Unmarshal(f.Message, &m); err != nil {
				t.Fatalf("frame %s: %v", raw, err)
			}
			got = append(got, "message "+*m.Content)
		case "error":
			got = append(got, "error "+f.Ref+" "+f.Code)
		default:
			got = append(got, f.Type+" "+f.Ref)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("frames\n%q\nwant\n%q", got, want)
	}
	if l := store.Lookups(); !slices.Equal(l, []int{4}) {
		t.Fatalf("access lookups of %v pairs, want one of 4", l)
	}
}

// readRawUntil reads the server's frames until one of them is of type typ with ref, and returns
// what came before it (types and refs); pongs to control pings and presence frames are skipped.
func readRawUntil(t *testing.T, br *bufio.Reader, typ, ref string) []string {
	t.Helper()
	var before []string
	for {
		f := nextRawText(t, br)
		if f.Type == typ && f.Ref == ref {
			return before
		}
		if f.Type != "presence" {
			before = append(before, strings.TrimSpace(f.Type+" "+f.Ref+" "+f.Code))
		}
	}
}

// TestPipelinedSubscribeAnsweredAlone: a subscribe is held back for the frame behind it only when
// that frame is a whole data message already read. A control frame behind it (a pong to the
// server's ping, a client's own ping), which the WebSocket library answers itself before waiting
// for the next message, or a frame only partly arrived, must not keep the subscribe waiting: the
// client may wait for the reply before it sends anything else.
func TestPipelinedSubscribeAnsweredAlone(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.newClass()
	u := e.newUser()
	e.enroll(a, u)
	sub := maskedFrame(`{"type":"subscribe","ref":"a","room":"` + string(a) + `"}`)

	t.Run("ControlFrameBehind", func(t *testing.T) {
		nc, br := rawDial(t, e, u.token, nil)
		if _, err := nc.Write(append(slices.Clone(sub), maskedFrameOf(0x9, "keepalive")...)); err != nil {
			t.Fatal(err)
		}
		readRawUntil(t, br, "subscribed", "a") // fails at the deadline if the reply waits
	})
	t.Run("PartialFrameBehind", func(t *testing.T) {
		nc, br := rawDial(t, e, u.token, nil)
		ping := maskedFrame(`{"type":"ping","ref":"p"}`)
		if _, err := nc.Write(append(slices.Clone(sub), ping[:3]...)); err != nil {
			t.Fatal(err)
		}
		readRawUntil(t, br, "subscribed", "a")
		if _, err := nc.Write(ping[3:]); err != nil {
			t.Fatal(err)
		}
		readRawUntil(t, br, "pong", "p")
	})
}

// TestPipelinedSubscribesFitTheQueue resumes four rooms at once, each behind by less than half
// the socket's queue, so that each is served from the room's memory without waiting: together
// they are more than the queue holds, and the socket must still get every message, not be closed
// as a slow consumer.
func TestPipelinedSubscribesFitTheQueue(t *testing.T) {
	t.Parallel()
	const maxQueue = 64 << 10
	e := newEnv(t, func(_ *rooms.Service, o *hub.Options) { o.MaxQueueBytes = maxQueue })
	u, w := e.newUser(), e.newUser()
	var classes []cg.ClassID
	for range 4 {
		class := e.newClass()
		e.enroll(class, u, w)
		classes = append(classes, class)
	}
	watcher := e.dial(w) // keeps the rooms active, so they hold their messages in memory
	for _, class := range classes {
		watcher.subscribe(class, nil)
	}
	content := strings.Repeat("x", 1200) // 20 messages: about 26 KiB a room, 105 in all
	for _, class := range classes {
		for range 20 {
			if _, err := e.svc.Publish(context.Background(), w.id, class, content, nil, "", nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for range 80 {
		watcher.expect("message")
	}
	nc, br := rawDial(t, e, u.token, nil)
	var frames []string
	for i, class := range classes {
		frames = append(frames, fmt.Sprintf(`{"type":"subscribe","ref":"%d","room":"%s","since_seq":0}`, i, class))
	}
	writeFrames(t, nc, append(frames, `{"type":"ping","ref":"end"}`)...)
	got := map[string]int{}
	for _, f := range readRawUntil(t, br, "pong", "end") {
		got[f]++
	}
	want := map[string]int{"subscribed 0": 1, "subscribed 1": 1, "subscribed 2": 1, "subscribed 3": 1, "message": 80}
	if !maps.Equal(got, want) {
		t.Fatalf("frames %v, want %v", got, want)
	}
}

// TestSubscribeAfterLeaving drops a class while a subscribe to its room is under way, after its
// access was checked: the LeaveRoom event that ends such subscriptions passes before the socket
// has joined, so the subscribe itself must notice.
func TestSubscribeAfterLeaving(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(_ *rooms.Service, o *hub.Options) { o.MaxQueueBytes = 16 << 10; o.BackfillPage = 50 })
	ctx := context.Background()
	drop := func(t *testing.T, u *user, class cg.ClassID) {
		t.Helper()
		if _, err := e.db.Pool.Exec(ctx, `DELETE FROM user_classes WHERE user_id = $1 AND class_id = $2`, u.id, class); err != nil {
			t.Fatal(err)
		}
		if err := e.hub.LeaveRoom(ctx, u.id, class); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("WaitingBehindAnotherRoom", func(t *testing.T) {
		a, b := e.newClass(), e.newClass()
		u, w := e.newUser(), e.newUser()
		e.enroll(a, u, w)
		e.enroll(b, u, w)
		backlog(t, e, a, w)
		nc, br := rawDialWith(t, e, u.token, nil, 4096)
		_ = nc.SetDeadline(time.Now().Add(90 * time.Second)) // megabytes through a small buffer
		writeFrames(t, nc, `{"type":"subscribe","ref":"a","room":"`+string(a)+`","since_seq":0}`,
			`{"type":"subscribe","ref":"b","room":"`+string(b)+`"}`)
		readRawUntil(t, br, "subscribed", "a") // a's backfill has begun: both were checked
		drop(t, u, b)
		for {
			if f := nextRawText(t, br); f.Ref == "b" {
				if f.Type != "error" || f.Code != "not_enrolled" {
					t.Fatalf("subscribe to the dropped class: %s %s, want not_enrolled", f.Type, f.Code)
				}
				return
			}
		}
	})
	t.Run("DuringItsOwnBackfill", func(t *testing.T) {
		a := e.newClass()
		u, w := e.newUser(), e.newUser()
		e.enroll(a, u, w)
		n := backlog(t, e, a, w)
		nc, br := rawDialWith(t, e, u.token, nil, 4096)
		_ = nc.SetDeadline(time.Now().Add(90 * time.Second)) // megabytes through a small buffer
		writeFrames(t, nc, `{"type":"subscribe","ref":"a","room":"`+string(a)+`","since_seq":0}`)
		readRawUntil(t, br, "subscribed", "a") // the socket is not yet a member: nothing to detach
		drop(t, u, a)
		messages := 0
		for {
			switch f := nextRawText(t, br); f.Type {
			case "message":
				messages++
			case "unsubscribed":
				if f.Room != string(a) || messages != n {
					t.Fatalf("unsubscribed from %s after %d messages, want from %s after %d", f.Room, messages, a, n)
				}
				return
			case "presence":
			default:
				t.Fatalf("frame %s %s %s, want the backlog, then unsubscribed", f.Type, f.Ref, f.Code)
			}
		}
	})
}

// backlog stores in class, by author, more than the server's send buffer can hold (it grows up
// to tcp_wmem's maximum), so that a backfill cannot end before a client with a small receive
// buffer reads it. It returns the number of messages.
func backlog(t *testing.T, e *env, class cg.ClassID, author *user) int {
	t.Helper()
	ctx := context.Background()
	sndMax := 4 << 20
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_wmem"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 3 {
			if n, err := strconv.Atoi(f[2]); err == nil {
				sndMax = n
			}
		}
	}
	if _, err := e.store.RoomAccess(ctx, author.id, class); err != nil {
		t.Fatal(err)
	}
	var nms []cg.NewMessage
	for range sndMax/3000*3/2 + 200 {
		nms = append(nms, cg.NewMessage{Class: class, User: author.id, Content: strings.Repeat("y", 3000)})
	}
	for batch := range slices.Chunk(nms, 200) {
		for _, r := range e.store.CreateMessages(ctx, batch) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	return len(nms)
}

// rawText is the part of a server frame the raw-socket tests look at.
type rawText struct {
	Type, Ref, Code, Room string
	Message               json.RawMessage
}

// nextRawText returns the server's next text frame, skipping control frames; a close fails the
// test.
func nextRawText(t *testing.T, br *bufio.Reader) rawText {
	t.Helper()
	for {
		op, raw := readRawFrameOf(t, br)
		if op == 0x8 {
			t.Fatalf("socket closed: %q", raw)
		}
		if op == 0x1 {
			return parseRawText(t, raw)
		}
	}
}

func parseRawText(t *testing.T, raw string) rawText {
	t.Helper()
	var f rawText
	if err := json.Unmarshal([]byte(raw), &f); err != nil {
		t.Fatalf("frame %s: %v", raw, err)
	}
	return f
}
