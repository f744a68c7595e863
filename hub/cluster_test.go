package hub_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/redis/go-redis/v9"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/broker"
	"github.com/commongrounds/commongrounds/hub"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/rooms"
)

// cluster is several instances on one database and one Redis (a single server or a Redis
// Cluster), as in production.
type cluster struct {
	t       *testing.T
	db      *persistence.DB
	be      backend
	url     string // the Redis URL
	prefix  string
	nodes   []*env
	clients []redis.UniversalClient // each instance's
}

// backend is a kind of Redis the instances share.
type backend struct {
	name    string
	cluster *testenv.RedisCluster // nil: a single Redis server at the cluster's url
}

// onBackends runs f as parallel subtests, once on the single test Redis and once on the test
// binary's Redis Cluster (with sharded pub/sub), so that every multi-instance behaviour is
// checked on both.
func onBackends(t *testing.T, f func(t *testing.T, be backend)) {
	t.Helper()
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		f(t, backend{name: "redis"})
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		f(t, backend{name: "cluster", cluster: testenv.SharedRedisCluster(t)})
	})
}

func newCluster(t *testing.T, redisURL string, n int, opts ...envOption) *cluster {
	t.Helper()
	return newClusterOn(t, backend{name: "redis"}, redisURL, n, opts...)
}

// newClusterOn starts n instances on be; redisURL, for a single server, overrides the test
// Redis.
func newClusterOn(t *testing.T, be backend, redisURL string, n int, opts ...envOption) *cluster {
	t.Helper()
	c := &cluster{t: t, be: be}
	if be.cluster != nil {
		_, c.prefix = testenv.MustRedisCluster(t)
		c.url = be.cluster.URL()
	} else {
		_, c.prefix = testenv.MustRedis(t)
		c.url = redisURL
		if c.url == "" {
			c.url = testenv.RedisURL()
		}
	}
	c.db = testenv.MustOpenDB(t)
	for range n {
		c.addNode(c.db, opts...)
	}
	return c
}

// clientName names the connections of the test's clients, so that the test can find them.
func (c *cluster) clientName() string {
	return "cgtest-" + strings.ReplaceAll(strings.TrimSuffix(c.prefix, ":"), ":", "-")
}

// redisClient returns a client of its own (a cluster client on a Redis Cluster), with the
// server's short timeouts, named so that the test can find its connections.
func (c *cluster) redisClient() redis.UniversalClient {
	var client redis.UniversalClient
	if c.be.cluster != nil {
		opts, err := redis.ParseClusterURL(c.url)
		if err != nil {
			c.t.Fatal(err)
		}
		opts.ClientName = c.clientName()
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = time.Second, time.Second, time.Second
		opts.PoolTimeout = time.Second
		client = redis.NewClusterClient(opts)
	} else {
		opts, err := redis.ParseURL(c.url)
		if err != nil {
			c.t.Fatal(err)
		}
		opts.ClientName = c.clientName()
		opts.DialTimeout, opts.ReadTimeout, opts.WriteTimeout = time.Second, time.Second, time.Second
		opts.MaxRetries = 1
		client = redis.NewClient(opts)
	}
	c.t.Cleanup(func() { client.Close() })
	return client
}

// newBroker returns a broker on client as the server makes it for the backend.
func (c *cluster) newBroker(client redis.UniversalClient) *broker.Redis {
	b := broker.NewRedis(client, broker.RedisOptions{Prefix: c.prefix, Sharded: c.be.cluster != nil, MaxBackoff: 200 * time.Millisecond})
	c.t.Cleanup(func() { b.Close() })
	return b
}

// addNode starts an instance on db (the cluster's, or one reached another way).
func (c *cluster) addNode(db *persistence.DB, opts ...envOption) *env {
	client := c.redisClient()
	b := c.newBroker(client)
	presence := broker.NewRedisPresence(client, c.prefix, fmt.Sprintf("node%d", len(c.nodes)), 2*time.Second)
	sockets := broker.NewRedisSockets(client, c.prefix, 5*time.Second)
	opts = append([]envOption{func(_ *rooms.Service, o *hub.Options) {
		o.Presence = presence
		o.Sockets = sockets
		o.PresenceInterval = 100 * time.Millisecond
		o.ReconcileInterval = 500 * time.Millisecond
	}}, opts...)
	// The broker's cleanup, registered before the node's, runs after the node has shut down.
	e := newNode(c.t, db, b, opts...)
	c.nodes = append(c.nodes, e)
	c.clients = append(c.clients, client)
	return e
}

// collect reads n messages of room from cl, failing on any gap or duplicate.
func collect(t *testing.T, cl *client, n int, from int64) []int64 {
	t.Helper()
	var seqs []int64
	for len(seqs) < n {
		f := cl.expect("message")
		want := from + int64(len(seqs)) + 1
		if f.Message.Seq != want {
			t.Fatalf("got seq %d, want %d (a gap or duplicate)", f.Message.Seq, want)
		}
		seqs = append(seqs, f.Message.Seq)
	}
	return seqs
}

// TestClusterFanOut publishes from every instance at once; every subscriber on every instance
// receives each seq exactly once, in order.
func TestClusterFanOut(t *testing.T) {
	onBackends(t, func(t *testing.T, be backend) {
		c := newClusterOn(t, be, "", 3)
		class := c.nodes[0].newClass()
		const perNode, each = 3, 20
		var clients []*client
		for _, n := range c.nodes {
			for range perNode {
				u := n.newUser()
				n.enroll(class, u)
				cl := n.dial(u)
				cl.subscribe(class, nil)
				clients = append(clients, cl)
			}
		}
		var wg sync.WaitGroup
		for i, cl := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range each {
					cl.send(map[string]any{"type": "publish", "room": class, "content": fmt.Sprintf("%d/%d", i, j)})
				}
			}()
		}
		wg.Wait()
		total := len(clients) * each
		for _, cl := range clients {
			var seqs []int64
			for len(seqs) < total {
				f := cl.expect("message", "ack")
				if f.Type == "message" {
					seqs = append(seqs, f.Message.Seq)
				}
			}
			checkSeqs(t, "client", seqs, total)
		}
	})
}

// TestClusterKillInstance kills an instance mid-conversation; its client reconnects to another
// and resumes with nothing lost.
func TestClusterKillInstance(t *testing.T) {
	onBackends(t, func(t *testing.T, be backend) {
		c := newClusterOn(t, be, "", 2)
		tk := c.conversation()
		b, class, reader, cl, pub := c.nodes[1], tk.class, tk.reader, tk.in, tk.out
		const total = 200
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range total {
				pub.send(map[string]any{"type": "publish", "room": class, "content": fmt.Sprint(i)})
			}
		}()
		got := collect(t, cl, 50, 0)
		// Kill a: every socket drops at once, without a close handshake.
		c.nodes[0].lis.kill()
		<-cl.done
		cl2 := b.dial(reader)
		since := got[len(got)-1]
		cl2.subscribe(class, &since)
		got = append(got, collect(t, cl2, total-len(got), since)...)
		<-done
		checkSeqs(t, "reader", got, total)
	})
}

// talk is a class with two members: a reader subscribed on the first instance and an author
// connected to the second.
type talk struct {
	class          cg.ClassID
	reader, author *user
	in, out        *client // the reader's socket and the author's
}

// conversation starts a talk.
func (c *cluster) conversation() *talk {
	c.t.Helper()
	a, b := c.nodes[0], c.nodes[1]
	tk := &talk{class: a.newClass(), reader: a.newUser(), author: a.newUser()}
	a.enroll(tk.class, tk.reader, tk.author)
	tk.in = a.dial(tk.reader)
	tk.in.subscribe(tk.class, nil)
	tk.out = b.dial(tk.author)
	return tk
}

// publishAcked publishes n messages over the socket, each acknowledged before the next.
func publishAcked(t *testing.T, pub *client, class cg.ClassID, n int) {
	t.Helper()
	for range n {
		pub.send(map[string]any{"type": "publish", "room": class, "content": "x"})
		if f := pub.expect("ack", "error"); f.Type != "ack" {
			t.Fatalf("publish: %s", f.raw)
		}
	}
}

// killPubSub closes the cluster's Redis pub/sub connections from the server side (on every
// node of a Redis Cluster).
func (c *cluster) killPubSub() int {
	ctx := context.Background()
	var mu sync.Mutex
	killed := 0
	kill := func(ctx context.Context, node *redis.Client) error {
		list, err := node.ClientList(ctx).Result()
		if err != nil {
			return err
		}
		sc := bufio.NewScanner(strings.NewReader(list))
		for sc.Scan() {
			line := sc.Text()
			if !strings.Contains(line, " name="+c.clientName()+" ") || !subscriber(line) {
				continue
			}
			for _, field := range strings.Fields(line) {
				if id, ok := strings.CutPrefix(field, "id="); ok {
					if err := node.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err == nil {
						mu.Lock()
						killed++
						mu.Unlock()
					}
				}
			}
		}
		return nil
	}
	var err error
	switch admin := c.redisClient().(type) {
	case *redis.ClusterClient:
		err = admin.ForEachShard(ctx, kill)
	case *redis.Client:
		err = kill(ctx, admin)
	}
	if err != nil {
		c.t.Fatal(err)
	}
	return killed
}

// subscriber reports whether a CLIENT LIST line is a connection subscribed to a channel or
// shard channel.
func subscriber(line string) bool {
	for _, f := range []string{"sub=", "ssub="} {
		if i := strings.Index(line, " "+f); i >= 0 && !strings.HasPrefix(line[i+1:], f+"0 ") {
			return true
		}
	}
	return false
}

// TestClusterRedisSubscriptionsKilled drops every Redis subscription of the cluster mid
// conversation: no acknowledged message is lost and live delivery resumes.
func TestClusterRedisSubscriptionsKilled(t *testing.T) {
	onBackends(t, func(t *testing.T, be backend) {
		c := newClusterOn(t, be, "", 2)
		tk := c.conversation()
		class, cl, pub := tk.class, tk.in, tk.out
		publish := func(n int) { publishAcked(t, pub, class, n) }
		publish(20)
		collect(t, cl, 20, 0)
		if n := c.killPubSub(); n < 2 {
			t.Fatalf("killed %d pub/sub connections, want at least 2", n)
		}
		start := time.Now()
		publish(20)
		collect(t, cl, 20, 20)
		t.Logf("delivery after the kill: 20 messages within %v", time.Since(start))
	})
}

// redisServer is a Redis server of the test's own, which the test can stop and restart.
type redisServer struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed: install Redis (apt-get install redis-server) to run this test")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	r := &redisServer{t: t, port: port}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *redisServer) url() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.port) }

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command("redis-server", "--port", fmt.Sprint(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	// Wait for "Ready to accept connections".
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "Ready to accept connections") {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return
		}
	}
	r.t.Fatalf("redis-server on port %d did not start", r.port)
}

func (r *redisServer) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// TestClusterRedisRestart stops Redis mid conversation and starts it again: publishing still
// commits and acknowledges while it is down, nothing is lost, and live delivery comes back.
func TestClusterRedisRestart(t *testing.T) {
	t.Parallel()
	rs := startRedis(t)
	c := newCluster(t, rs.url(), 2)
	tk := c.conversation()
	class, cl, pub := tk.class, tk.in, tk.out
	publish := func(n int) { publishAcked(t, pub, class, n) }
	publish(10)
	collect(t, cl, 10, 0)
	rs.stop()
	publish(10) // committed and acknowledged with Redis down
	collect(t, cl, 10, 10)
	rs.start()
	start := time.Now()
	waitUntil(t, "brokers reconnected to Redis", func() bool { return redisUp(c) })
	t.Logf("brokers resubscribed %v after Redis restarted", time.Since(start))
	publish(10)
	collect(t, cl, 10, 20)
}

func redisUp(c *cluster) bool {
	for _, n := range c.nodes {
		if rb, ok := n.svc.Broker.(*broker.Redis); !ok || !rb.Up() {
			return false
		}
	}
	return true
}

// tcpProxy forwards connections to a target until cut.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() { p.cut(); p.wg.Wait() })
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

// cut closes the listener and every connection.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// restore listens again on the same address.
func (p *tcpProxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.serve(ln)
}

// TestPostgresDown cuts an instance off Postgres: a publish fails quickly with the retryable
// unavailable error and acknowledges nothing; after recovery a retry with the same
// client_msg_id creates exactly one message.
func TestPostgresDown(t *testing.T) {
	t.Parallel()
	url := testenv.NewDatabase(t)
	proxy := newProxy(t, "127.0.0.1:5432")
	viaProxy := strings.Replace(url, "127.0.0.1:5432", proxy.addr, 1)
	db, err := persistence.Open(context.Background(), viaProxy, persistence.Options{}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	direct, err := persistence.Open(context.Background(), url, persistence.Options{}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(direct.Close)
	e := newNode(t, db, broker.NewMemory())
	class := e.newClass()
	u := e.newUser()
	e.enroll(class, u)
	cl := e.dial(u)
	cl.send(`{"type":"ping"}`) // the socket is up before Postgres goes
	cl.expect("pong")

	proxy.cut()
	start := time.Now()
	cl.send(map[string]any{"type": "publish", "ref": "p1", "room": class, "content": "hello", "client_msg_id": "retry-me"})
	f := cl.expect("error", "ack")
	if f.Type != "error" || f.Code != "unavailable" || f.Ref != "p1" {
		t.Fatalf("publish with Postgres cut: %s, want error unavailable", f.raw)
	}
	t.Logf("unavailable after %v", time.Since(start))
	var n int
	if err := direct.Pool.QueryRow(context.Background(), `SELECT count(*) FROM class_messages`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("messages stored while cut = %d (%v), want 0", n, err)
	}

	proxy.restore()
	var ids []cg.MessageID
	for i := range 2 {
		deadline := time.Now().Add(15 * time.Second)
		for {
			cl.send(map[string]any{"type": "publish", "ref": fmt.Sprint(i), "room": class, "content": "hello", "client_msg_id": "retry-me"})
			f := cl.expect("error", "ack")
			if f.Type == "ack" {
				ids = append(ids, f.Message.ID)
				break
			}
			if f.Code != "unavailable" || time.Now().After(deadline) {
				t.Fatalf("retry after recovery: %s", f.raw)
			}
		}
	}
	if ids[0] != ids[1] {
		t.Fatalf("two retries gave two messages: %v", ids)
	}
	if err := direct.Pool.QueryRow(context.Background(), `SELECT count(*) FROM class_messages`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("messages stored = %d (%v), want 1", n, err)
	}
}

// TestClusterLogout revokes a session on one instance and its socket on another closes with 4001.
func TestClusterLogout(t *testing.T) {
	onBackends(t, func(t *testing.T, be backend) {
		c := newClusterOn(t, be, "", 2)
		a, b := c.nodes[0], c.nodes[1]
		u := a.newUser()
		cl := b.dial(u)
		cl.send(`{"type":"ping"}`)
		cl.expect("pong")
		sid, _, _, err := a.sessions.Signer.Verify(u.token)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.hub.RevokeSession(context.Background(), cg.SessionID(sid)); err != nil {
			t.Fatal(err)
		}
		if code := cl.closeStatus(); code != hub.CloseSessionEnded {
			t.Fatalf("close=%v, want 4001", code)
		}
	})
}

// TestClusterPresence counts distinct users across instances and drops a crashed instance's
// users when their entries expire.
func TestClusterPresence(t *testing.T) {
	onBackends(t, func(t *testing.T, be backend) {
		c := newClusterOn(t, be, "", 1)
		a := c.nodes[0]
		// b's presence goes through a client the test closes to simulate a crash.
		bClient := c.redisClient()
		bBroker := c.newBroker(bClient)
		bPresence := broker.NewRedisPresence(bClient, c.prefix, "crashing", time.Second)
		b := newNode(t, c.db, bBroker, func(_ *rooms.Service, o *hub.Options) {
			o.Presence = bPresence
			o.PresenceInterval = 100 * time.Millisecond
		})
		class := a.newClass()
		ua, ub := a.newUser(), a.newUser()
		a.enroll(class, ua, ub)
		ca := a.dial(ua)
		ca.subscribe(class, nil)
		cb := b.dial(ub)
		cb.subscribe(class, nil)
		waitOnline := func(cl *client, want int) {
			t.Helper()
			for {
				if f := cl.expect("presence"); f.Online == want {
					return
				}
			}
		}
		waitOnline(ca, 2)
		waitOnline(cb, 2)
		bClient.Close() // b can no longer refresh or withdraw its users
		start := time.Now()
		waitOnline(ca, 1)
		t.Logf("crashed instance's user dropped after %v", time.Since(start))
	})
}

// TestClusterSocketLimit counts a user's sockets across instances.
func TestClusterSocketLimit(t *testing.T) {
	onBackends(t, func(t *testing.T, be backend) {
		c := newClusterOn(t, be, "", 2, func(_ *rooms.Service, o *hub.Options) { o.MaxSocketsPerUser = 2 })
		a, b := c.nodes[0], c.nodes[1]
		u := a.newUser()
		a.dial(u)
		second := b.dial(u)
		if _, err := a.tryDial(u.token, nil); err == nil || !strings.Contains(err.Error(), "429") {
			t.Fatalf("third socket on the first instance: err=%v, want 429", err)
		}
		if _, err := b.tryDial(u.token, nil); err == nil || !strings.Contains(err.Error(), "429") {
			t.Fatalf("third socket on the second instance: err=%v, want 429", err)
		}
		_ = second.ws.Close(websocket.StatusNormalClosure, "")
		<-second.done
		deadline := time.Now().Add(10 * time.Second)
		for {
			cl, err := a.tryDial(u.token, nil)
			if err == nil {
				cl.send(`{"type":"ping"}`)
				cl.expect("pong")
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after closing a socket, a new one is still refused: %v", err)
			}
			time.Sleep(20 * time.Millisecond) // the server side of the closed socket ends on its own
		}
	})
}

// TestClusterShutdownReleasesSockets: an instance that shuts down removes its sockets from the
// cluster-wide count, so that their users may open as many elsewhere at once: those that closed
// while a peer is still slow to answer the close, and that peer's once it has closed, even
// after Shutdown's own deadline has passed.
func TestClusterShutdownReleasesSockets(t *testing.T) {
	onBackends(t, func(t *testing.T, be backend) {
		c := newClusterOn(t, be, "", 0)
		client := c.redisClient()
		b := c.newBroker(client)
		e := newNode(t, c.db, b, func(_ *rooms.Service, o *hub.Options) {
			o.Sockets = broker.NewRedisSockets(client, c.prefix, time.Minute)
			o.MaxSocketsPerUser = 2
		})
		ctx := context.Background()
		counted := func(u *user) int64 {
			t.Helper()
			n, err := client.ZCard(ctx, c.prefix+"sockets:{"+string(u.id)+"}").Result()
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		var users []*user
		for range 20 {
			u := e.newUser()
			users = append(users, u)
			e.dial(u)
			e.dial(u)
			if n := counted(u); n != 2 {
				t.Fatalf("%d sockets counted, want 2", n)
			}
		}
		// A peer that never reads: its close handshake waits out the library's timeout.
		silent := e.newUser()
		rawDial(t, e, silent.token, nil)
		// The 101 is written before the socket is registered.
		waitUntil(t, "the silent peer's socket registered", func() bool { return e.hub.Conns() == 41 })

		shutCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		shut := make(chan error, 1)
		go func() { shut <- e.hub.Shutdown(shutCtx) }()
		for _, u := range users {
			waitUntil(t, "a closed socket released", func() bool { return counted(u) == 0 })
		}
		if n := counted(silent); n != 1 {
			t.Fatalf("the silent peer's socket, still closing, is counted %d times, want 1", n)
		}
		if err := <-shut; !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("shutdown with a peer that does not close: %v, want its deadline exceeded", err)
		}
		waitUntil(t, "the silent peer's socket released after it closed", func() bool { return counted(silent) == 0 })
	})
}

// TestClusterGapFill commits a message that no broker carries (as when a publish to Redis is
// lost) and then one that is carried: the instance that sees the jump in seq reads the missing
// message from Postgres, so that every member gets both, in order.
func TestClusterGapFill(t *testing.T) {
	onBackends(t, func(t *testing.T, be backend) {
		// The periodic check would repair it too, later: keep it out of the way.
		c := newClusterOn(t, be, "", 2, func(_ *rooms.Service, o *hub.Options) { o.ReconcileInterval = time.Minute })
		tk := c.conversation()
		a, b, class, author, cl := c.nodes[0], c.nodes[1], tk.class, tk.author, tk.in
		ctx := context.Background()
		// A service on the same database whose broker reaches no instance.
		silent := &rooms.Service{Store: b.store, Broker: broker.NewMemory()}
		if _, err := silent.Publish(ctx, author.id, class, "lost on the way", nil, "", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := b.svc.Publish(ctx, author.id, class, "carried", nil, "", nil); err != nil {
			t.Fatal(err)
		}
		got := collect(t, cl, 2, 0)
		checkSeqs(t, "reader", got, 2)
		if n := counterValue(t, a.reg, "commongrounds_room_gaps_repaired_total"); n < 1 {
			t.Fatalf("gaps repaired = %v, want at least 1", n)
		}
	})
}

// TestClusterLeaveRoom: a user who dropped the class, told so on one instance, loses the room
// on every instance, and later messages of the room no longer reach them there.
func TestClusterLeaveRoom(t *testing.T) {
	onBackends(t, func(t *testing.T, be backend) {
		c := newClusterOn(t, be, "", 3)
		class := c.nodes[0].newClass()
		leaver, stayer := c.nodes[0].newUser(), c.nodes[0].newUser()
		c.nodes[0].enroll(class, leaver, stayer)
		var leavers, stayers []*client
		for _, n := range c.nodes[1:] {
			cl := n.dial(leaver)
			cl.subscribe(class, nil)
			leavers = append(leavers, cl)
			cs := n.dial(stayer)
			cs.subscribe(class, nil)
			stayers = append(stayers, cs)
		}
		ctx := context.Background()
		if _, err := c.db.Pool.Exec(ctx, `DELETE FROM user_classes WHERE user_id = $1`, leaver.id); err != nil {
			t.Fatal(err)
		}
		if err := c.nodes[0].hub.LeaveRoom(ctx, leaver.id, class); err != nil {
			t.Fatal(err)
		}
		for _, cl := range leavers {
			if f := cl.expect("unsubscribed"); f.Room != class {
				t.Fatalf("got %s", f.raw)
			}
		}
		if _, err := c.nodes[1].svc.Publish(ctx, stayer.id, class, "after you left", nil, "", nil); err != nil {
			t.Fatal(err)
		}
		// An instance delivers a room's message to all its members there at once: once the
		// stayer has it on an instance, the leaver would have it queued on that one too.
		for _, cs := range stayers {
			cs.expect("message")
		}
		for _, cl := range leavers {
			cl.send(`{"type":"ping","ref":"p"}`)
			if f := cl.expect("pong", "message"); f.Type != "pong" {
				t.Fatalf("the leaver got %s", f.raw)
			}
		}
	})
}

// TestClusterRateLimit: a member publishing faster than the limit is refused with
// rate_limited on the instance they publish through, and the messages accepted reach the
// members on the other instances exactly once.
func TestClusterRateLimit(t *testing.T) {
	onBackends(t, func(t *testing.T, be backend) {
		const burst = 5
		c := newClusterOn(t, be, "", 2, func(s *rooms.Service, _ *hub.Options) {
			s.Limiter = rooms.NewRateLimiter(0.001, burst) // no refill within the test
		})
		a, b := c.nodes[0], c.nodes[1]
		class := a.newClass()
		reader, author := a.newUser(), a.newUser()
		a.enroll(class, reader, author)
		cl := b.dial(reader)
		cl.subscribe(class, nil)
		pub := a.dial(author)
		acked, limited := 0, 0
		for i := range burst + 3 {
			pub.send(map[string]any{"type": "publish", "ref": fmt.Sprint(i), "room": class, "content": "x"})
			switch f := pub.expect("ack", "error"); {
			case f.Type == "ack":
				acked++
			case f.Code == "rate_limited" && f.RetryAfterMs > 0:
				limited++
			default:
				t.Fatalf("publish %d: %s", i, f.raw)
			}
		}
		if acked != burst || limited != 3 {
			t.Fatalf("acked %d and limited %d, want %d and 3", acked, limited, burst)
		}
		collect(t, cl, burst, 0)
		cl.send(`{"type":"ping","ref":"p"}`)
		if f := cl.expect("pong", "message"); f.Type != "pong" {
			t.Fatalf("the reader got more than was accepted: %s", f.raw)
		}
	})
}

// member follows what one socket of a room receives: the seqs of its messages, in order, when
// each arrived, and the last presence count.
type member struct {
	cl     *client
	seqs   []int64
	at     []time.Time
	online int
}

// poll takes the frames already received, without waiting.
func (m *member) poll() {
	for {
		f, ok := m.cl.take()
		if !ok {
			return
		}
		m.add(f)
	}
}

func (m *member) add(f frame) {
	switch f.Type {
	case "message":
		m.seqs = append(m.seqs, f.Message.Seq)
		m.at = append(m.at, f.at)
	case "presence":
		m.online = f.Online
	case "typing", "ack":
	default:
		m.cl.t.Fatalf("unexpected frame %s", f.raw)
	}
}

// await reads frames until cond holds, failing the test if a frame does not come in time.
func (m *member) await(cond func() bool) {
	for !cond() {
		m.add(m.cl.next())
	}
}

// TestClusterFailover kills the Redis master serving a room's shard channel (and a member's
// socket count) while a member publishes, one message after another's acknowledgement. Every
// acknowledged message reaches every member exactly once and in order; live delivery comes
// back after the replica is promoted (the time is logged, and held to a generous deadline);
// presence and the socket count work again. Then the cluster loses a slot altogether: the
// readiness check says so, and publishing still commits and acknowledges.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	rc := testenv.NewRedisCluster(t)
	c := newClusterOn(t, backend{name: "cluster", cluster: rc}, "", 2, func(_ *rooms.Service, o *hub.Options) {
		o.MaxSocketsPerUser = 2
		o.ReconcileInterval = time.Minute // what comes back must be live delivery, not the periodic check
	})
	a, b := c.nodes[0], c.nodes[1]
	ctx := context.Background()
	// The master serving the room's channel (the key names are the broker's), and a reader
	// whose socket count lies on it too. (The room's presence key lies wherever its slot falls:
	// its slot and the channel's differ by a constant, given the prefix.)
	class := a.newClass()
	master, replica, err := rc.Owners(ctx, c.prefix+"room:"+string(class))
	if err != nil {
		t.Fatal(err)
	}
	if replica == nil {
		t.Fatalf("master %s has no replica", master.Addr())
	}
	var ru *user
	for range 100 {
		u := a.newUser()
		if m, _, err := rc.Owners(ctx, c.prefix+"sockets:{"+string(u.id)+"}"); err != nil {
			t.Fatal(err)
		} else if m == master {
			ru = u
			break
		}
	}
	if ru == nil {
		t.Fatal("no user in 100 has their socket count on the channel's master")
	}
	au, wu := a.newUser(), a.newUser()
	a.enroll(class, ru, au, wu)
	reader := &member{cl: a.dial(ru)}
	reader.cl.subscribe(class, nil)
	watcher := &member{cl: b.dial(wu)} // on the author's instance
	watcher.cl.subscribe(class, nil)
	pub := b.dial(au)
	members := []*member{reader, watcher}
	acked := make(map[int64]time.Time)
	var last int64
	publish := func() {
		t.Helper()
		pub.send(map[string]any{"type": "publish", "room": class, "content": "x"})
		f := pub.expect("ack", "error")
		if f.Type != "ack" {
			t.Fatalf("publish: %s", f.raw)
		}
		if _, dup := acked[f.Message.Seq]; dup || f.Message.Seq != last+1 {
			t.Fatalf("acknowledged seq %d after %d", f.Message.Seq, last)
		}
		last = f.Message.Seq
		acked[last] = time.Now()
	}
	for range 20 {
		publish()
	}
	reader.await(func() bool { return len(reader.seqs) == 20 && reader.online == 2 })

	master.Kill()
	killed := time.Now()
	var promoted time.Time
	var lastBefore int64 // the last seq acknowledged before the promotion was seen
	deadline := killed.Add(60 * time.Second)
	for promoted.IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not promoted within 60 s of killing master %s", replica.Addr(), master.Addr())
		}
		publish()
		if role, err := replica.Role(ctx); err == nil && role == "master" {
			promoted, lastBefore = time.Now(), last
		}
	}
	// Publish until the reader has a message acknowledged after the promotion.
	resumed := func() bool {
		reader.poll()
		return len(reader.seqs) > 0 && reader.seqs[len(reader.seqs)-1] > lastBefore
	}
	for !resumed() {
		if time.Since(promoted) > 20*time.Second {
			t.Fatalf("live delivery not back 20 s after the promotion (reader at seq %d, %d acknowledged)", reader.seqs[len(reader.seqs)-1], last)
		}
		publish()
	}
	var back time.Time
	for i, s := range reader.seqs {
		if s > lastBefore {
			back = reader.at[i]
			break
		}
	}
	t.Logf("master %s killed; replica promoted %v later; live delivery back %v after the promotion; %d messages acknowledged meanwhile",
		master.Addr(), promoted.Sub(killed).Round(time.Millisecond), back.Sub(promoted).Round(time.Millisecond), last-20)
	if d := back.Sub(promoted); d > 5*time.Second {
		t.Errorf("live delivery back %v after the promotion, want within 5 s", d)
	}
	for range 20 {
		publish()
	}
	for _, m := range members {
		m.await(func() bool { return len(m.seqs) >= int(last) })
		checkSeqs(t, "member", m.seqs, int(last))
	}

	// Presence: a third member is counted on both instances.
	third := &member{cl: a.dial(au)}
	third.cl.subscribe(class, nil)
	watcher.await(func() bool { return watcher.online == 3 })
	// The socket count: the reader has one socket; a second is allowed and a third refused.
	waitUntil(t, "the reader's socket counted", func() bool {
		n, err := c.clients[0].ZCard(ctx, c.prefix+"sockets:{"+string(ru.id)+"}").Result()
		return err == nil && n == 1
	})
	b.dial(ru)
	if _, err := a.tryDial(ru.token, nil); err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("third socket after the failover: err=%v, want 429", err)
	}

	// A slot nobody serves: not ready, and publishing still commits and acknowledges.
	if err := rc.UncoverSlot(ctx, c.prefix+"room:"+string(class)); err != nil {
		t.Fatal(err)
	}
	ready := broker.RedisReady(c.clients[0])
	var degraded *broker.ClusterDegradedError
	waitUntil(t, "the readiness check to see the slot uncovered", func() bool {
		return errors.As(ready(ctx), &degraded)
	})
	t.Logf("readiness: %v", degraded)
	for range 5 {
		publish()
	}
	var stored int64
	if err := c.db.Pool.QueryRow(ctx, `SELECT count(*) FROM class_messages WHERE class_id = $1`, class).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != last {
		t.Fatalf("%d messages stored, %d acknowledged", stored, last)
	}
	watcher.await(func() bool { return len(watcher.seqs) == int(last) }) // delivered on the author's instance
}
