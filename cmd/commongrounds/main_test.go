package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/commongrounds/commongrounds/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// startServer runs the serve command on a free port against a fresh database and returns its
// base URL; the server is stopped, and must have stopped cleanly, when the test ends.
func startServer(t *testing.T, env map[string]string) string {
	t.Helper()
	base, _ := startServerLogs(t, env)
	return base
}

// startServerLogs is startServer, and returns the server's output too.
func startServerLogs(t *testing.T, env map[string]string) (string, *logBuffer) {
	t.Helper()
	vars := map[string]string{
		"DATABASE_URL": testenv.NewDatabase(t),
		"HTTP_ADDR":    "127.0.0.1:0",
		"METRICS_ADDR": "127.0.0.1:0",
		"SECRETS_FILE": filepath.Join(t.TempDir(), "secrets.json"),
	}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	logs := newLogBuffer()
	go func() {
		done <- runServe(ctx, nil, func(k string) string { return vars[k] }, logs, logs, func(a string) { addrc <- a })
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v\n%s", err, logs.String())
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v", err)
		}
	})
	return "http://" + addr, logs
}

// asideAddr returns the address the server's log says the listener of setting (METRICS_ADDR,
// DEBUG_ADDR) took; the log has the line once the public listener is up.
func asideAddr(t *testing.T, logs *logBuffer, setting string) string {
	t.Helper()
	for _, line := range strings.Split(logs.String(), "\n") {
		var entry struct{ Msg, Setting, Addr string }
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "listening aside" && entry.Setting == setting {
			return entry.Addr
		}
	}
	t.Fatalf("no listener of %s in the log:\n%s", setting, logs.String())
	return ""
}

func TestServe(t *testing.T) {
	t.Parallel()
	base, logs := startServerLogs(t, nil)
	get := func(path string) (*http.Response, map[string]any) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp, body
	}
	t.Run("Healthz", func(t *testing.T) {
		if resp, _ := get("/healthz"); resp.StatusCode != 200 {
			t.Fatalf("Status=%d, want 200", resp.StatusCode)
		}
	})
	t.Run("Readyz", func(t *testing.T) {
		if resp, body := get("/readyz"); resp.StatusCode != 200 || body["ready"] != true {
			t.Fatalf("Status=%d body=%v, want 200 ready", resp.StatusCode, body)
		}
	})
	t.Run("ErrUnknownRoute", func(t *testing.T) {
		resp, body := get("/nope")
		if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" || body["status"] != float64(404) {
			t.Fatalf("Status=%d type=%q body=%v, want a 404 problem", resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
	})
	t.Run("ErrMethodNotAllowed", func(t *testing.T) {
		resp, err := http.Post(base+"/healthz", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Fatalf("Status=%d type=%q, want a 405 problem", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
	t.Run("ErrUnauthorized", func(t *testing.T) {
		resp, body := get("/api/v1/me")
		if resp.StatusCode != 401 || body["code"] != "unauthorized" {
			t.Fatalf("Status=%d body=%v, want 401 unauthorized", resp.StatusCode, body)
		}
	})
	t.Run("ErrMetricsNotPublic", func(t *testing.T) {
		if resp, _ := get("/metrics"); resp.StatusCode != 404 {
			t.Fatalf("Status=%d, want 404: /metrics is not on the public listener", resp.StatusCode)
		}
	})
	t.Run("Metrics", func(t *testing.T) {
		resp, err := http.Get("http://" + asideAddr(t, logs, "METRICS_ADDR") + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(resp.Body)
		resp.Body.Close()
		for _, want := range []string{"go_goroutines", "commongrounds_http_requests_total",
			"commongrounds_push_sent_total", "commongrounds_push_failed_total", "commongrounds_push_dropped_total", "commongrounds_push_removed_total"} {
			if !bytes.Contains(buf.Bytes(), []byte(want)) {
				t.Fatalf("/metrics lacks %s", want)
			}
		}
	})
}

// TestServeCreatesDatabase starts the server against a database that does not exist yet, as on
// a fresh machine, and expects it to create and migrate it.
func TestServeCreatesDatabase(t *testing.T) {
	t.Parallel()
	name := "cgtest_new_" + testenv.RandomHex(6)
	t.Cleanup(func() { testenv.DropDatabase(t, name) })
	base := startServer(t, map[string]string{"DATABASE_URL": testenv.DatabaseURL(name)})
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("Status=%d, want 200", resp.StatusCode)
	}
}
