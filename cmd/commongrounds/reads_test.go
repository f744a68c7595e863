package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/commongrounds/commongrounds/internal/testenv"
)

// TestServeReadReplica runs the server with DATABASE_READ_URL on a real streaming replica:
// class search and class details come from the replica (with its replay paused, they miss a
// class the primary has since), its lag is a metric, and with the replica down they come from
// the primary.
func TestServeReadReplica(t *testing.T) {
	t.Parallel()
	replica := testenv.NewPostgresReplica(t)
	env := seedEnv(t)
	token := seed(t, env, "--users", "1", "--rooms", "1").Users[0].Token
	u, err := url.Parse(env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	env["DATABASE_READ_URL"] = replica.URL(name)
	env["READ_MAX_LAG"] = "1h" // the paused replica stays in use
	ctx := context.Background()
	poll := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second) // a busy server's replica may be far behind
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("not within 90 s: %s", what)
			}
			time.Sleep(20 * time.Millisecond) // polling a condition with a deadline
		}
	}
	var standby *pgx.Conn
	poll("the test database on the replica", func() bool {
		standby, err = pgx.Connect(ctx, replica.URL(name))
		return err == nil
	})
	t.Cleanup(func() { standby.Close(ctx) })

	base, logs := startServerLogs(t, env)
	get := func(path string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest("GET", base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	search := func() int {
		t.Helper()
		code, body := get("/api/v1/classes?term=LOAD")
		if code != 200 {
			t.Fatalf("search: %d %v", code, body)
		}
		classes, _ := body["classes"].([]any)
		return len(classes)
	}
	metric := func(name string) string {
		t.Helper()
		resp, err := http.Get("http://" + asideAddr(t, logs, "METRICS_ADDR") + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		text, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(text), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return v
			}
		}
		return ""
	}
	poll("reads on the replica", func() bool { return metric("commongrounds_read_replica_used") == "1" })
	if lag := metric("commongrounds_read_replica_lag_seconds"); lag == "" || strings.HasPrefix(lag, "-") {
		t.Fatalf("commongrounds_read_replica_lag_seconds = %q, want a lag", lag)
	}
	if n := search(); n != 1 {
		t.Fatalf("search found %d classes, want the seed's 1", n)
	}

	// Replay paused, a class added on the primary: the replica, which reads go to, lacks it.
	if _, err := standby.Exec(ctx, `SELECT pg_wal_replay_pause()`); err != nil {
		t.Fatal(err)
	}
	primary, err := pgx.Connect(ctx, env["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close(ctx)
	var added string
	if err := primary.QueryRow(ctx, `INSERT INTO classes (subject, catalog_number, term, sis_class_number)
		VALUES ('CS', '9', 'LOAD', gen_random_uuid()::text) RETURNING id`).Scan(&added); err != nil {
		t.Fatal(err)
	}
	if n := search(); n != 1 {
		t.Fatalf("search with the replica paused found %d classes, want 1 (read on the replica)", n)
	}
	if code, body := get("/api/v1/classes/" + added); code != 404 {
		t.Fatalf("the added class with the replica paused: %d %v, want 404 (read on the replica)", code, body)
	}

	// Down: the primary answers.
	replica.Stop()
	if n := search(); n != 2 {
		t.Fatalf("search with the replica down found %d classes, want 2", n)
	}
	if code, body := get("/api/v1/classes/" + added); code != 200 {
		t.Fatalf("the added class with the replica down: %d %v, want 200", code, body)
	}
	poll("the lag metric to say the replica does not answer", func() bool {
		return metric("commongrounds_read_replica_lag_seconds") == "-1"
	})
}
