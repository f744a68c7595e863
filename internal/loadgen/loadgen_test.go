package loadgen

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/rooms"
)

const testRoom = cg.ClassID("0b7e7f3c-3c43-4a55-9b1e-2f6f3c1f4a10")

// message returns a stored message as the server encodes it, with content.
func message(seq int64, content string) *cg.Message {
	anon := cg.AnonID("Anon_a3f2e1")
	return &cg.Message{
		ID: "5d2c6f0e-9a55-4a8e-8d7e-0c6b1f0a2b3c", Room: testRoom, Seq: seq, AnonID: &anon,
		Content: &content, CreatedAt: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// TestParseFrame reads the server's own encodings of each frame the load generator uses.
func TestParseFrame(t *testing.T) {
	t.Parallel()
	ours := string(publishFrame(nil, string(testRoom), "", "run-0-7", 1234567890123, 100))
	var pub struct {
		Content string `json:"content"`
	}
	if err := json.Unmarshal([]byte(ours), &pub); err != nil {
		t.Fatalf("publish frame is not JSON: %v: %s", err, ours)
	}
	tests := []struct {
		name string
		data []byte
		want serverFrame
	}{
		{"Message", rooms.MessageFrame(message(42, pub.Content)),
			serverFrame{kind: kindMessage, room: []byte(testRoom), seq: 42, sentAt: 1234567890123}},
		{"MessageOfSomeoneElse", rooms.MessageFrame(message(7, `he said "seq":9 and "room":"x" cgload:5`)),
			serverFrame{kind: kindMessage, room: []byte(testRoom), seq: 7}},
		{"Ack", rooms.AckFrame("run-0-7", message(43, pub.Content)),
			serverFrame{kind: kindAck, ref: []byte("run-0-7"), room: []byte(testRoom), seq: 43, sentAt: 1234567890123}},
		{"Subscribed", rooms.SubscribedFrame("s"+string(testRoom), testRoom, "Anon_a3f2e1", 17, 3, 3, 5),
			serverFrame{kind: kindSubscribed, ref: []byte("s" + string(testRoom)), room: []byte(testRoom), lastSeq: 17}},
		{"Error", rooms.ErrorFrame("run-0-8", cg.ERATELIMITED, "Slow down.", 200),
			serverFrame{kind: kindError, ref: []byte("run-0-8"), code: []byte(cg.ERATELIMITED)}},
		{"Presence", rooms.PresenceFrame(testRoom, 3, 5), serverFrame{kind: kindOther}},
		{"Edited", rooms.EventFrame(&cg.RoomEvent{Seq: 50, Kind: cg.EventEdited, Message: message(42, `"seq":9`)}),
			serverFrame{kind: kindChange, room: []byte(testRoom), seq: 50}},
		{"Hidden", rooms.EventFrame(&cg.RoomEvent{Seq: 51, Kind: cg.EventHidden, Message: message(42, "x")}),
			serverFrame{kind: kindChange, room: []byte(testRoom), seq: 51}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseFrame(tt.data)
			if !ok {
				t.Fatalf("parseFrame(%s) not ok", tt.data)
			}
			if tt.want.kind == kindAck && string(got.id) != "5d2c6f0e-9a55-4a8e-8d7e-0c6b1f0a2b3c" {
				t.Fatalf("parseFrame(%s) read id %q", tt.data, got.id)
			}
			got.id = nil
			if got.kind != tt.want.kind || string(got.ref) != string(tt.want.ref) || string(got.room) != string(tt.want.room) ||
				got.seq != tt.want.seq || got.lastSeq != tt.want.lastSeq || got.sentAt != tt.want.sentAt || string(got.code) != string(tt.want.code) {
				t.Fatalf("parseFrame(%s) = %+v, want %+v", tt.data, got, tt.want)
			}
		})
	}
	t.Run("ErrNoType", func(t *testing.T) {
		if _, ok := parseFrame([]byte(`{"room":"x"}`)); ok {
			t.Fatal("ok for a frame without a type")
		}
	})
}

func TestPublishFrame(t *testing.T) {
	t.Parallel()
	f, err := rooms.DecodeFrame(publishFrame(nil, string(testRoom), "", "abc-1-99", time.Now().UnixNano(), 100))
	if err != nil {
		t.Fatalf("DecodeFrame: %v", err)
	}
	if f.Type != rooms.TypePublish || f.Ref != "abc-1-99" || f.ClientMsgID != "abc-1-99" || f.Room != testRoom {
		t.Fatalf("frame = %+v", f)
	}
	if len(f.Content) != 100 || !strings.HasPrefix(f.Content, contentMark) {
		t.Fatalf("content %q: want 100 bytes starting with %s", f.Content, contentMark)
	}
	for _, since := range []int64{-1, 0, 41} {
		f, err := rooms.DecodeFrame(subscribeFrame(nil, string(testRoom), since))
		if err != nil {
			t.Fatalf("DecodeFrame: %v", err)
		}
		if (since < 0) != (f.SinceSeq == nil) || (f.SinceSeq != nil && *f.SinceSeq != since) {
			t.Fatalf("since %d: SinceSeq = %v", since, f.SinceSeq)
		}
	}
}

func TestRoomTrack(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		var tr roomTrack
		if tr.since() != -1 {
			t.Fatalf("since before subscribing = %d, want -1", tr.since())
		}
		if !tr.onSubscribed(10) {
			t.Fatal("first subscription not caught up")
		}
		for seq := int64(11); seq <= 20; seq++ {
			if skipped, dup := tr.observe(seq); skipped != 0 || dup {
				t.Fatalf("observe(%d) = %d, %v", seq, skipped, dup)
			}
		}
		if tr.since() != 20 {
			t.Fatalf("since = %d, want 20", tr.since())
		}
	})
	t.Run("ErrGap", func(t *testing.T) {
		var tr roomTrack
		tr.onSubscribed(0)
		tr.observe(1)
		if skipped, dup := tr.observe(5); skipped != 3 || dup {
			t.Fatalf("observe(5) after 1 = %d, %v; want 3 skipped", skipped, dup)
		}
	})
	t.Run("ErrDuplicate", func(t *testing.T) {
		var tr roomTrack
		tr.onSubscribed(3)
		tr.observe(4)
		for _, seq := range []int64{4, 2} {
			if skipped, dup := tr.observe(seq); skipped != 0 || !dup {
				t.Fatalf("observe(%d) after 4 = %d, %v; want a duplicate", seq, skipped, dup)
			}
		}
	})
	t.Run("Resubscribe", func(t *testing.T) {
		var tr roomTrack
		tr.onSubscribed(5)
		tr.observe(6)
		// The room moved on while the socket was away: not caught up until seq 9 arrives.
		if tr.onSubscribed(9) {
			t.Fatal("caught up while 7 to 9 are missing")
		}
		if tr.since() != 6 || tr.catchUp != 9 || tr.liveFrom != 9 {
			t.Fatalf("since=%d catchUp=%d liveFrom=%d, want 6, 9, 9", tr.since(), tr.catchUp, tr.liveFrom)
		}
	})
}

func TestHist(t *testing.T) {
	t.Parallel()
	a, b := NewHist(), NewHist()
	for i := 1; i <= 100; i++ {
		a.Record(time.Duration(i) * time.Millisecond)
	}
	b.Record(time.Second)
	data, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var c Hist
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	a.Merge(&c)
	s := a.Summary()
	if s.Count != 101 || s.P50 < 50 || s.P50 > 52 || s.Max < 999 || s.Max > 1001 {
		t.Fatalf("Summary = %+v, want 101 values, p50 ≈ 51 ms, max ≈ 1000 ms", s)
	}
	if got := a.Reset().Summary().Count; got != 101 || a.Summary().Count != 0 {
		t.Fatalf("Reset returned %d values and left %d, want 101 and 0", got, a.Summary().Count)
	}
}

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	text := `# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 3.5e+07
commongrounds_ws_connections 1500
go_goroutines{instance="a"} 10
go_goroutines{instance="b"} 5
commongrounds_ws_connections_total 9
`
	m, err := ParseMetrics(strings.NewReader(text), metricRSS, metricConns, metricGoroutines)
	if err != nil {
		t.Fatal(err)
	}
	if m[metricRSS] != 35e6 || m[metricConns] != 1500 || m[metricGoroutines] != 15 {
		t.Fatalf("ParseMetrics = %v", m)
	}
}

func TestResultMerge(t *testing.T) {
	t.Parallel()
	part := func(start, ready int64, sockets int, acked int64) *Result {
		l := NewHist()
		l.Record(time.Millisecond)
		return &Result{
			Sockets: sockets, Ready: int64(sockets), StartedAt: start, AllReadyAt: ready,
			Sent: acked, Acked: acked, Latency: l, AckLatency: NewHist(),
			ConnectFailures: map[string]int64{"refused": 1},
			Rooms:           map[string]RoomSeqs{"r": {Start: 10, End: 30, Acked: acked}},
			Steps:           []*Step{{Rate: 50, Seconds: 10, Delivered: 100, Latency: l}},
		}
	}
	var r Result
	r.Merge(part(100, 200, 5, 12))
	r.Merge(part(90, 300, 7, 8))
	if r.Sockets != 12 || r.StartedAt != 90 || r.AllReadyAt != 300 || r.ConnectFailures["refused"] != 2 {
		t.Fatalf("merged %+v", r)
	}
	if committed, ok := r.Committed(); committed != 20 || !ok {
		t.Fatalf("Committed() = %d, %v; want 20, true", committed, ok)
	}
	if r.Latency.Summary().Count != 2 || len(r.Steps) != 1 || r.Steps[0].Delivered != 200 {
		t.Fatalf("latency %d values, steps %+v", r.Latency.Summary().Count, r.Steps)
	}
	if why := r.Failed(); len(why) != 1 || !strings.Contains(why[0], "connect failures: refused=2") {
		t.Fatalf("Failed() = %q, want the connect failures only", why)
	}
	r.Merge(part(80, 0, 1, 0))
	if r.AllReadyAt != 0 {
		t.Fatalf("AllReadyAt = %d after a part that never had every socket ready, want 0", r.AllReadyAt)
	}
}

// TestRunGivesUpOnRefusedSessions: a server that refuses every session (401) gets one dial per
// socket, not retries until the connect timeout, and the run reports every socket as failed.
func TestRunGivesUpOnRefusedSessions(t *testing.T) {
	var dials atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			dials.Add(1)
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"type":"about:blank","title":"Unauthorized","status":401,"code":"unauthorized","detail":"Sign in first."}`))
	}))
	defer srv.Close()
	seed := &Seed{Rooms: []string{string(testRoom)}}
	for range 5 {
		seed.Users = append(seed.Users, SeedUser{Token: "not-a-session", Rooms: []string{string(testRoom)}})
	}
	cfg := Config{
		URLs:           []string{"ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"},
		Seed:           seed,
		Duration:       time.Millisecond,
		ConnectTimeout: 10 * time.Minute, // a run that retried would hang here
		DrainTimeout:   time.Millisecond,
	}
	res, err := Run(t.Context(), cfg, Control{}, func(Event) {})
	if err != nil {
		t.Fatal(err)
	}
	if n := dials.Load(); n != 5 || res.ConnectFailures["http 401"] != 5 {
		t.Fatalf("%d dials, failures %v; want one refused dial per socket", n, res.ConnectFailures)
	}
	if len(res.Failed()) == 0 {
		t.Fatal("Failed() is empty, want the refused sockets reported")
	}
}

// TestMetricsURLs: one /metrics URL per server host, on the metrics port, whatever the scheme
// and path of the WebSocket URLs.
func TestMetricsURLs(t *testing.T) {
	got, err := MetricsURLs([]string{"ws://10.0.0.1:8080/ws", "wss://10.0.0.1:8443/ws", "ws://[::1]:8080/ws", "ws://app2:8080/ws"}, "9090")
	want := []string{"http://10.0.0.1:9090/metrics", "http://[::1]:9090/metrics", "http://app2:9090/metrics"}
	if err != nil || strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("MetricsURLs=%v, %v; want %v", got, err, want)
	}
}
