package loadgen

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// socket is one simulated client: one user's connection, reconnected with since_seq whenever
// it drops, and its rooms.
type socket struct {
	r      *runner
	index  int // in the seed
	token  string
	url    string
	client *http.Client
	rooms  []*roomTrack
	byRoom map[string]*roomTrack

	everReady atomic.Bool
	// stormMember: the socket was ready when the storm began, so its reconnect is measured.
	stormMember atomic.Bool

	mu       sync.Mutex
	ws       *websocket.Conn      // guarded by mu: the current connection, nil while down
	inflight map[string]*inflight // guarded by mu: publishes not yet answered, by client_msg_id
	nextRoom int                  // guarded by mu
	own      []ownMessage         // guarded by mu: acknowledged messages a change may pick

	// Owned by the reader goroutine.
	ready          bool
	subscribed     int
	stormReadyDone bool
}

// inflight is a publish waiting for its ack.
type inflight struct {
	frame  []byte
	room   string
	resent bool
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// run connects, subscribes and reads until ctx ends, reconnecting after every drop.
func (s *socket) run(ctx context.Context) {
	failures := 0
	for ctx.Err() == nil {
		ws, err := s.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.r.failure(&s.r.connectFailures, dialReason(err))
			if refused(err) {
				// A refused session or origin stays refused: give up instead of retrying
				// until the connect timeout.
				s.r.gaveUp.Add(1)
				return
			}
			failures++
			sleep(ctx, backoff(failures))
			continue
		}
		failures = 0
		reason := s.serve(ctx, ws)
		if ctx.Err() != nil {
			_ = ws.CloseNow()
			return
		}
		s.r.failure(&s.r.disconnects, reason)
		s.r.stepErrors.Add(1)
		s.r.noteDrop()
		_ = ws.CloseNow()
		sleep(ctx, time.Duration(rand.Int64N(int64(s.r.cfg.ReconnectJitter)+1)))
	}
}

// closeGently closes with a close handshake, bounded in time.
func closeGently(ws *websocket.Conn) {
	done := make(chan struct{})
	go func() {
		_ = ws.Close(websocket.StatusNormalClosure, "load test done")
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		_ = ws.CloseNow()
	}
}

// backoff returns the wait before the n-th retry of a failed dial: 100 ms doubling to 2 s, with
// jitter.
func backoff(n int) time.Duration {
	d := min(100*time.Millisecond<<min(n-1, 5), 2*time.Second)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)))
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// dial opens the WebSocket, holding one of the process's dial slots.
func (s *socket) dial(ctx context.Context) (*websocket.Conn, error) {
	select {
	case s.r.dialSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.r.dialSlots }()
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	ws, resp, err := websocket.Dial(dctx, s.url, &websocket.DialOptions{
		HTTPClient:      s.client,
		HTTPHeader:      http.Header{"Authorization": {"Bearer " + s.token}},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, httpError(resp.StatusCode)
		}
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	s.r.connects.Add(1)
	return ws, nil
}

type httpError int

func (e httpError) Error() string { return "http " + strconv.Itoa(int(e)) }

// refused reports whether err is a refusal that retrying will not change: the session (401) or
// the origin (403).
func refused(err error) bool {
	var he httpError
	return errors.As(err, &he) && (he == http.StatusUnauthorized || he == http.StatusForbidden)
}

// dialReason classifies a failed dial.
func dialReason(err error) string {
	var he httpError
	switch {
	case errors.As(err, &he):
		return he.Error()
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "no local port"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "too many open files"
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, net.ErrClosed):
		return "closed here"
	}
	return short(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// closeReason classifies the end of a connection.
func closeReason(err error) string {
	if code := websocket.CloseStatus(err); code != -1 {
		return "close " + strconv.Itoa(int(code))
	}
	return dialReason(err)
}

// short keeps the end of an error's text, where the cause is.
func short(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	if len(s) > 60 {
		s = s[:60]
	}
	return s
}

// serve subscribes to every room, resends the unanswered publishes and reads until the
// connection ends; it returns why it ended.
func (s *socket) serve(ctx context.Context, ws *websocket.Conn) string {
	r := s.r
	reconnect := s.everReady.Load()
	if reconnect {
		r.firstReconnect(time.Now().UnixNano())
	}
	storm := r.stormArmed.Load() && s.stormMember.Load()
	for _, t := range s.rooms {
		t.subscribed = false
		if storm && !t.stormDone {
			t.waiting = true
		}
	}
	s.subscribed = 0
	var buf []byte
	for _, t := range s.rooms {
		buf = subscribeFrame(buf[:0], t.room, t.since())
		if err := write(ctx, ws, buf); err != nil {
			return closeReason(err)
		}
	}
	s.mu.Lock()
	s.ws = ws
	r.openNow.Add(1)
	var resend [][]byte
	for _, f := range s.inflight {
		f.resent = true
		resend = append(resend, f.frame)
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.ws = nil
		r.openNow.Add(-1)
		s.mu.Unlock()
		if s.ready {
			s.ready = false
			r.readyNow.Add(-1)
		}
	}()
	// A publish whose ack the last connection lost is sent again with its client_msg_id: the
	// server answers with the message it already stored, if it did.
	for _, f := range resend {
		if err := write(ctx, ws, f); err != nil {
			return closeReason(err)
		}
	}
	// Reads do not take ctx: a context with a Done channel costs every read a registration.
	// The end of ctx closes the connection instead, which ends the read.
	closed := make(chan struct{})
	stopClose := context.AfterFunc(ctx, func() {
		defer close(closed)
		closeGently(ws)
	})
	defer func() {
		if !stopClose() {
			<-closed
		}
	}()
	for {
		typ, rd, err := ws.Reader(context.Background())
		if err != nil {
			return closeReason(err)
		}
		b := bufPool.Get().(*bytes.Buffer)
		b.Reset()
		_, err = b.ReadFrom(rd)
		if err == nil && typ == websocket.MessageText {
			s.handle(b.Bytes())
		}
		bufPool.Put(b)
		if err != nil {
			return closeReason(err)
		}
	}
}

func write(ctx context.Context, ws *websocket.Conn, frame []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return ws.Write(ctx, websocket.MessageText, frame)
}

// handle takes one server frame.
func (s *socket) handle(data []byte) {
	r := s.r
	f, ok := parseFrame(data)
	if !ok {
		r.unparsed.Add(1)
		return
	}
	switch f.kind {
	case kindMessage, kindChange:
		t := s.byRoom[string(f.room)]
		if t == nil || !t.subscribed {
			r.unexpected.Add(1)
			return
		}
		r.countDelivery()
		skipped, dup := t.observe(f.seq)
		if dup {
			r.duplicates.Add(1)
			return
		}
		r.gaps.Add(skipped)
		if f.kind == kindMessage && f.sentAt > 0 && f.seq > t.liveFrom {
			r.recordLatency(time.Duration(time.Now().UnixNano() - f.sentAt))
		}
		if t.waiting && t.last.Load() >= t.catchUp {
			t.waiting, t.stormDone = false, true
			r.storm.done()
		}
	case kindSubscribed:
		t := s.byRoom[string(f.room)]
		if t == nil || t.subscribed {
			r.unexpected.Add(1)
			return
		}
		if t.onSubscribed(f.lastSeq) && t.waiting {
			t.waiting, t.stormDone = false, true
			r.storm.done()
		}
		s.subscribed++
		if s.subscribed == len(s.rooms) {
			s.becameReady()
		}
	case kindAck:
		s.mu.Lock()
		fl := s.inflight[string(f.ref)]
		delete(s.inflight, string(f.ref))
		s.mu.Unlock()
		if fl == nil {
			return // the answer to a resend whose first ack came after all
		}
		r.acked.Add(1)
		r.stepAcked.Add(1)
		if r.cfg.ChangeMix > 0 && len(f.id) > 0 {
			s.remember(fl.room, string(f.id))
		}
		if rs := r.roomAcks[fl.room]; rs != nil {
			rs.Add(1)
		}
		if f.sentAt > 0 && !fl.resent {
			r.ackLatency.Record(time.Duration(time.Now().UnixNano() - f.sentAt))
		}
	case kindError:
		code := string(f.code)
		if bytes.HasPrefix(f.ref, []byte("s")) {
			r.subscribeErrors.Add(code)
			return
		}
		s.mu.Lock()
		fl := s.inflight[string(f.ref)]
		delete(s.inflight, string(f.ref))
		s.mu.Unlock()
		if fl != nil {
			r.publishErrors.Add(code)
			r.stepErrors.Add(1)
		} else {
			r.otherErrors.Add(code)
		}
	}
}

// becameReady records that every room of the socket is subscribed.
func (s *socket) becameReady() {
	r := s.r
	s.ready = true
	r.readyNow.Add(1)
	if !s.everReady.Swap(true) {
		r.readyOnce.done()
	}
	if r.stormArmed.Load() && s.stormMember.Load() && !s.stormReadyDone {
		s.stormReadyDone = true
		r.stormReady.done()
	}
}

// publish sends one message to the socket's next room; false when the socket is down.
func (s *socket) publish(id string, size int, reply bool, buf []byte) ([]byte, bool) {
	s.mu.Lock()
	ws := s.ws
	if ws == nil || len(s.rooms) == 0 {
		s.mu.Unlock()
		return buf, false
	}
	room := s.rooms[s.nextRoom%len(s.rooms)].room
	s.nextRoom++
	parent := ""
	if reply {
		if parent = s.r.threads.parent(room); parent != "" {
			s.r.replies.Add(1)
		}
	}
	buf = publishFrame(buf[:0], room, parent, id, time.Now().UnixNano(), size)
	if s.inflight == nil {
		s.inflight = make(map[string]*inflight)
	}
	s.inflight[id] = &inflight{frame: bytes.Clone(buf), room: room}
	s.mu.Unlock()
	// A failed write leaves the publish in flight: the reader sees the connection end, and the
	// next connection sends it again.
	_ = write(context.Background(), ws, buf)
	return buf, true
}

// pending returns the publishes not yet answered.
func (s *socket) pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.inflight)
}

// drop closes the current connection without a close handshake.
func (s *socket) drop() {
	s.mu.Lock()
	ws := s.ws
	s.mu.Unlock()
	if ws != nil {
		_ = ws.CloseNow()
	}
}
