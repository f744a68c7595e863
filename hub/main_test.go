package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/broker"
	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/hub"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/rooms"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is a hub on a fresh database, served over real HTTP.
type env struct {
	t        testing.TB
	db       *persistence.DB
	store    *persistence.MessageStore
	sessions *auth.Sessions
	svc      *rooms.Service
	hub      *hub.Hub
	srv      *httptest.Server
	wsURL    string
	reg      *prometheus.Registry
	lis      *trackingListener

	mu     sync.Mutex
	secret []string // guarded by mu: strings no frame may contain (author identities)
}

type envOption func(*rooms.Service, *hub.Options)

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newNode(t, testenv.MustOpenDB(t), broker.NewMemory(), opts...)
}

// newNode is one server instance on db with broker b; several nodes may share a database.
func newNode(t testing.TB, db *persistence.DB, b cg.Broker, opts ...envOption) *env {
	t.Helper()
	return newNodeWith(t, db, b, true, opts...)
}

// newPlainEnv is an env whose server is started without the hub's listener (hub.Listener and
// hub.ConnContext): its connections cannot be corked, its readers do not park, and the library
// pings.
func newPlainEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	return newNodeWith(t, testenv.MustOpenDB(t), broker.NewMemory(), false, opts...)
}

func newNodeWith(t testing.TB, db *persistence.DB, b cg.Broker, corked bool, opts ...envOption) *env {
	t.Helper()
	signer, err := auth.NewSigner([]config.Key{{ID: "t", Secret: []byte("0123456789abcdef0123456789abcdef")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, db: db, store: persistence.NewMessageStore(db)}
	e.sessions = &auth.Sessions{Store: persistence.NewSessionStore(db), Signer: signer}
	e.svc = &rooms.Service{Store: e.store, Broker: b, AnonymityK: 1, Markers: persistence.NewMarkerStore(db)}
	e.reg = prometheus.NewRegistry()
	hopts := hub.Options{Registerer: e.reg, AllowedOrigins: []string{"https://app.example"}, DisableParking: parkingOff(t)}
	for _, o := range opts {
		o(e.svc, &hopts)
	}
	authn := func(r *http.Request) (*cg.Session, error) {
		token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		return e.sessions.Authenticate(r.Context(), token)
	}
	e.hub = hub.New(e.store, b, e.svc, authn, hopts)
	e.srv = httptest.NewUnstartedServer(e.hub)
	e.lis = &trackingListener{Listener: e.srv.Listener}
	e.srv.Listener = e.lis
	if corked {
		e.srv.Listener = hub.Listener(e.lis)
		e.srv.Config.ConnContext = hub.ConnContext
	}
	e.srv.Start()
	e.wsURL = "ws" + strings.TrimPrefix(e.srv.URL, "http")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.hub.Shutdown(ctx); err != nil {
			t.Errorf("hub shutdown: %v", err)
		}
		e.srv.Close()
	})
	return e
}

// parkingOff reports whether the tests run with parked readers and corked writes turned off
// (HUB_PARK=false, as the server's configuration has it): scripts/test runs them both ways.
// A test of parking itself turns it on (parking).
func parkingOff(t testing.TB) bool {
	t.Helper()
	v := os.Getenv("HUB_PARK")
	if v == "" {
		return false
	}
	on, err := strconv.ParseBool(v)
	if err != nil {
		t.Fatalf("HUB_PARK %q: want true or false", v)
	}
	return !on
}

// parking is the option of a test of parked readers or corked writes: they are on, whatever
// HUB_PARK says.
func parking(_ *rooms.Service, o *hub.Options) { o.DisableParking = false }

type user struct {
	id    cg.UserID
	email string
	token string
}

var userSeq struct {
	sync.Mutex
	n int
}

// newUser creates a user with a session.
func (e *env) newUser() *user {
	e.t.Helper()
	userSeq.Lock()
	userSeq.n++
	n := userSeq.n
	userSeq.Unlock()
	email := fmt.Sprintf("hub%dx@virginia.edu", n)
	u, err := persistence.NewUserStore(e.db).UpsertVerifiedUser(context.Background(), email, fmt.Sprintf("hub%dx", n))
	if err != nil {
		e.t.Fatal(err)
	}
	token, _, _, err := e.sessions.Create(context.Background(), u.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	e.secret = append(e.secret, string(u.ID), email)
	e.mu.Unlock()
	return &user{id: u.ID, email: email, token: token}
}

// newSession signs u in again with a session that ends after ttl, and returns its token and end.
func (e *env) newSession(u *user, ttl time.Duration) (string, time.Time) {
	e.t.Helper()
	s := &auth.Sessions{Store: e.sessions.Store, Signer: e.sessions.Signer, TTL: ttl}
	token, _, expiresAt, err := s.Create(context.Background(), u.id)
	if err != nil {
		e.t.Fatal(err)
	}
	return token, expiresAt
}

// newClass creates a class.
func (e *env) newClass() cg.ClassID {
	e.t.Helper()
	var id cg.ClassID
	err := e.db.Pool.QueryRow(context.Background(),
		`INSERT INTO classes (subject, catalog_number, term, sis_class_number) VALUES ('CS', '3120', '1262', gen_random_uuid()::text) RETURNING id`).Scan(&id)
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// enroll enrolls users in a class.
func (e *env) enroll(class cg.ClassID, users ...*user) {
	e.t.Helper()
	for _, u := range users {
		if _, err := e.db.Pool.Exec(context.Background(), `INSERT INTO user_classes (user_id, class_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, u.id, class); err != nil {
			e.t.Fatal(err)
		}
	}
}

// frame is a decoded server frame with its raw bytes.
type frame struct {
	Type         string          `json:"type"`
	Ref          string          `json:"ref"`
	Room         cg.ClassID      `json:"room"`
	AnonID       cg.AnonID       `json:"anon_id"`
	LastSeq      int64           `json:"last_seq"`
	Seq          int64           `json:"seq"` // a change's position, or a read marker's
	Online       int             `json:"online"`
	Message      *cg.Message     `json:"-"`
	Text         string          `json:"-"` // the message of an error frame
	RawMessage   json.RawMessage `json:"message"`
	MessageID    string          `json:"message_id"`
	Code         string          `json:"code"`
	RetryAfterMs int64           `json:"retry_after_ms"`
	raw          string
	at           time.Time // when it was read

	Notification *cg.Notification `json:"notification"` // of a notification frame
}

// client is a test socket whose frames are read by a goroutine into a queue.
type client struct {
	t     testing.TB
	e     *env
	ws    *websocket.Conn
	mu    sync.Mutex
	queue []frame       // guarded by mu: frames read and not yet taken
	ready chan struct{} // signalled (capacity 1) after a frame is queued
	done  chan struct{}
	err   error // set before done closes: why reading ended
}

// dial opens a socket as u and starts reading it.
func (e *env) dial(u *user) *client {
	e.t.Helper()
	c, err := e.tryDial(u.token, nil)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	return c
}

func (e *env) tryDial(token string, hdr http.Header) (*client, error) {
	return e.tryDialWith(token, hdr, nil)
}

func (e *env) tryDialWith(token string, hdr http.Header, hc *http.Client) (*client, error) {
	return e.tryDialFor(e.t, token, hdr, hc)
}

// dialFor opens a socket as u for t, a subtest of the env's test: t is the one its failures
// fail, and its cleanup closes the socket.
func (e *env) dialFor(t testing.TB, u *user) *client {
	t.Helper()
	c, err := e.tryDialFor(t, u.token, nil, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	return c
}

func (e *env) tryDialFor(t testing.TB, token string, hdr http.Header, hc *http.Client) (*client, error) {
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr.Set("Authorization", "Bearer "+token)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, e.wsURL, &websocket.DialOptions{HTTPHeader: hdr, HTTPClient: hc})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	c := &client{t: t, e: e, ws: ws, ready: make(chan struct{}, 1), done: make(chan struct{})}
	go c.read()
	t.Cleanup(func() {
		_ = c.ws.CloseNow()
		<-c.done
		for _, ok := c.take(); ok; _, ok = c.take() { // the frames no test took are checked too
		}
	})
	return c, nil
}

func (c *client) read() {
	defer close(c.done)
	for {
		_, data, err := c.ws.Read(context.Background())
		if err != nil {
			c.err = err
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			c.err = fmt.Errorf("server sent non-JSON %q: %w", data, err)
			return
		}
		f.raw, f.at = string(data), time.Now()
		if f.Type == "error" {
			_ = json.Unmarshal(f.RawMessage, &f.Text)
		} else if len(f.RawMessage) > 0 {
			if err := json.Unmarshal(f.RawMessage, &f.Message); err != nil {
				c.err = fmt.Errorf("frame %s: %w", data, err)
				return
			}
		}
		c.e.mu.Lock()
		for _, s := range c.e.secret {
			if strings.Contains(f.raw, s) {
				c.e.mu.Unlock()
				c.err = fmt.Errorf("frame %s reveals an author identity %q", f.raw, s)
				return
			}
		}
		c.e.mu.Unlock()
		// An unbounded queue: the reader never pushes back on the server, and a client that
		// receives little holds little.
		c.mu.Lock()
		c.queue = append(c.queue, f)
		c.mu.Unlock()
		select {
		case c.ready <- struct{}{}:
		default:
		}
	}
}

// take returns the oldest queued frame, if any, once checked against the protocol's schema
// (here rather than in read, which must keep up with the server).
func (c *client) take() (frame, bool) {
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.mu.Unlock()
		return frame{}, false
	}
	f := c.queue[0]
	c.queue[0] = frame{}
	c.queue = c.queue[1:]
	c.mu.Unlock()
	if err := checkServerFrame([]byte(f.raw)); err != nil {
		c.t.Errorf("%v", err)
	}
	return f, true
}

// send writes a frame (a string is sent as it is).
func (c *client) send(v any) {
	c.t.Helper()
	var data []byte
	if s, ok := v.(string); ok {
		data = []byte(s)
	} else {
		data, _ = json.Marshal(v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, data); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next returns the next frame, failing the test if none comes within the deadline.
func (c *client) next() frame {
	c.t.Helper()
	return c.nextWithin(15 * time.Second)
}

// nextWithin returns the next frame, failing the test if none comes within d.
func (c *client) nextWithin(d time.Duration) frame {
	c.t.Helper()
	timeout := time.After(d)
	for {
		if f, ok := c.take(); ok {
			return f
		}
		select {
		case <-c.ready:
		case <-c.done:
			// Frames read before the end are still queued.
			if f, ok := c.take(); ok {
				return f
			}
			c.t.Fatalf("socket ended: %v", c.err)
		case <-timeout:
			c.t.Fatalf("no frame within %v", d)
		}
	}
}

// expect returns the next frame of one of the types, skipping presence and typing frames
// unless asked for.
func (c *client) expect(types ...string) frame {
	c.t.Helper()
	for {
		f := c.next()
		for _, t := range types {
			if f.Type == t {
				return f
			}
		}
		if f.Type == "presence" || f.Type == "typing" {
			continue
		}
		c.t.Fatalf("got frame %s, want one of %v", f.raw, types)
	}
}

// subscribe joins a room and returns the subscribed reply.
func (c *client) subscribe(room cg.ClassID, since *int64) frame {
	c.t.Helper()
	m := map[string]any{"type": "subscribe", "ref": "sub-" + string(room), "room": room}
	if since != nil {
		m["since_seq"] = *since
	}
	c.send(m)
	f := c.expect("subscribed", "error")
	if f.Type != "subscribed" {
		c.t.Fatalf("subscribe: %s", f.raw)
	}
	return f
}

// closeStatus waits for the socket to end and returns its close code.
func (c *client) closeStatus() websocket.StatusCode {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(15 * time.Second):
		c.t.Fatalf("socket still open after 15 s")
	}
	return websocket.CloseStatus(c.err)
}

func ptr[T any](v T) *T { return &v }

// counterValue returns the value of a counter in reg.
func counterValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// trackingListener remembers its connections, so that a test can cut them all as a crash would
// (httptest.Server cannot close hijacked connections).
type trackingListener struct {
	net.Listener
	mu     sync.Mutex
	conns  []net.Conn // guarded by mu
	sndbuf int        // guarded by mu: the send buffer of the connections accepted from now (0: the system's)
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		sndbuf := l.sndbuf
		l.mu.Unlock()
		if sndbuf > 0 {
			if err := c.(*net.TCPConn).SetWriteBuffer(sndbuf); err != nil {
				c.Close()
				return nil, err
			}
		}
	}
	return c, err
}

// setSendBuffer sets the send buffer of the connections accepted from now.
func (l *trackingListener) setSendBuffer(n int) {
	l.mu.Lock()
	l.sndbuf = n
	l.mu.Unlock()
}

// kill closes every connection ever accepted.
func (l *trackingListener) kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		c.Close()
	}
	l.conns = nil
}

// waitUntil polls cond until it holds, failing the test if it does not within 20 s.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 20 s: %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition with a deadline
	}
}
