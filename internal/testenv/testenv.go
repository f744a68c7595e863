// Package testenv gives tests their own PostgreSQL databases and Redis key prefixes on the real
// services, and removes them when the test ends.
//
// Every test binary (one per package) migrates one template database and clones it for each
// test, which is much faster than migrating each time. A package that uses MustOpenDB calls
// Main from its TestMain, which drops the template and checks for leaked goroutines when the
// package's tests end. Databases left behind by a crashed run are swept by later runs.
//
// When a service is unreachable, tests fail (never skip) with a message saying how to start it.
package testenv

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/commongrounds/commongrounds/persistence"
)

// The services, overridable with TEST_DATABASE_URL (any database of the server; tests create
// their own next to it) and TEST_REDIS_URL.
func adminURL() string {
	if u := os.Getenv("TEST_DATABASE_URL"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RedisURL returns the Redis server tests use.
func RedisURL() string {
	if u := os.Getenv("TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

const (
	dbPrefix = "cgtest_"
	// staleAfter is the age after which a test database is taken to be left over from a crashed
	// run and dropped.
	staleAfter         = 3 * time.Hour
	howToStartPostgres = "start it (on Debian: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start) " +
		"or point TEST_DATABASE_URL at a server where the user may create databases"
	howToStartRedis = "start it (redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no) " +
		"or point TEST_REDIS_URL at one"
)

var (
	mu       sync.Mutex // serialises CREATE DATABASE … TEMPLATE, which refuses concurrent use of a template
	tmplName string     // guarded by mu
	tmplErr  error      // guarded by mu
	seq      int        // guarded by mu
	runID    = fmt.Sprintf("%d_%d", time.Now().Unix(), os.Getpid())
)

// Main runs the tests of a package, then drops the package's template database and fails the
// run if goroutines leaked. Call it from TestMain. ignore lists functions whose goroutines are
// expected to outlive the tests (see goleak.IgnoreTopFunction).
func Main(m *testing.M, ignore ...goleak.Option) {
	code := m.Run()
	stopSharedRedisCluster()
	mu.Lock()
	if tmplName != "" {
		if err := dropDatabase(context.Background(), tmplName); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: drop template: %v\n", err)
		}
	}
	mu.Unlock()
	if code == 0 {
		// Each Find waits about a second for goroutines to end; some end on a timer of their
		// own (go-redis probes a failed dial once a second until it sees its pool closed),
		// so give them a few tries before calling them leaked.
		var err error
		for range 5 {
			if err = goleak.Find(ignore...); err == nil {
				break
			}
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "testenv: goroutines leaked: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// DatabaseURL returns the URL of the database name on the test server.
func DatabaseURL(name string) string {
	cfg, err := pgx.ParseConfig(adminURL())
	if err != nil {
		panic(fmt.Sprintf("testenv: TEST_DATABASE_URL: %v", err))
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable", cfg.User, cfg.Host, cfg.Port, name)
}

func adminConn(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, adminURL())
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL is not reachable at %s: %w; %s", adminURL(), err, howToStartPostgres)
	}
	return conn, nil
}

func dropDatabase(ctx context.Context, name string) error {
	conn, err := adminConn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	return err
}

var staleRE = regexp.MustCompile(`^` + dbPrefix + `(\d+)_`)

// template returns the name of this process's migrated template, creating it on first use and
// sweeping stale databases of crashed runs. The caller holds mu.
func template(ctx context.Context) (string, error) {
	if tmplName != "" || tmplErr != nil {
		return tmplName, tmplErr
	}
	conn, err := adminConn(ctx)
	if err != nil {
		tmplErr = err
		return "", err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_database WHERE datname LIKE 'cgtest\_%'`)
	if err == nil {
		names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
		for _, n := range names {
			m := staleRE.FindStringSubmatch(n)
			if m == nil {
				continue
			}
			ts, _ := strconv.ParseInt(m[1], 10, 64)
			if time.Since(time.Unix(ts, 0)) > staleAfter {
				_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)")
			}
		}
	}
	name := dbPrefix + runID + "_tmpl"
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tmplErr = fmt.Errorf("create template database: %w", err)
		return "", tmplErr
	}
	cfg, err := pgx.ParseConfig(DatabaseURL(name))
	if err != nil {
		tmplErr = err
		return "", err
	}
	if err := persistence.Migrate(ctx, cfg); err != nil {
		tmplErr = fmt.Errorf("migrate template database: %w", err)
		return "", tmplErr
	}
	tmplName = name
	return name, nil
}

// DropDatabase drops the database name, failing the test if that fails.
func DropDatabase(tb testing.TB, name string) {
	tb.Helper()
	if err := dropDatabase(context.Background(), name); err != nil {
		tb.Errorf("testenv: drop database %s: %v", name, err)
	}
}

// NewDatabase creates a fresh, migrated database and returns its URL; it is dropped when the test
// ends.
func NewDatabase(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	mu.Lock()
	tmpl, err := template(ctx)
	seq++
	name := fmt.Sprintf("%s%s_%d", dbPrefix, runID, seq)
	if err == nil {
		var conn *pgx.Conn
		conn, err = adminConn(ctx)
		if err == nil {
			_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{tmpl}.Sanitize())
			conn.Close(ctx)
		}
	}
	mu.Unlock()
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(func() {
		if err := dropDatabase(context.Background(), name); err != nil {
			tb.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	return DatabaseURL(name)
}

// MustOpenDB returns a pool on a fresh, migrated database of its own; the pool is closed and the
// database dropped when the test ends.
func MustOpenDB(tb testing.TB) *persistence.DB {
	tb.Helper()
	url := NewDatabase(tb)
	db, err := persistence.Open(context.Background(), url, persistence.Options{MaxConns: 16}, false, false)
	if err != nil {
		tb.Fatalf("testenv: open database: %v", err)
	}
	tb.Cleanup(db.Close) // runs before the drop registered by NewDatabase
	return db
}

// MustRedis returns a client of the test Redis and a key prefix of the test's own; every key
// under the prefix is deleted and the client closed when the test ends.
func MustRedis(tb testing.TB) (*redis.Client, string) {
	tb.Helper()
	opts, err := redis.ParseURL(RedisURL())
	if err != nil {
		tb.Fatalf("testenv: TEST_REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		tb.Fatalf("testenv: Redis is not reachable at %s: %v; %s", RedisURL(), err, howToStartRedis)
	}
	prefix := "cgtest:" + RandomHex(6) + ":"
	tb.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, prefix+"*", 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			client.Del(ctx, keys...)
		}
		client.Close()
	})
	return client, prefix
}

// RandomHex returns n random bytes as hexadecimal.
func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// SyncBuffer is a bytes.Buffer safe for concurrent writes, for capturing a server's logs.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
