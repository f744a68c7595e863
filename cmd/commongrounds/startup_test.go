package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/sis"
	"github.com/commongrounds/commongrounds/sis/sistest"
)

// logBuffer captures a server's output and lets a test wait for a line.
type logBuffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed, and replaced, by each write; guarded by mu
}

func newLogBuffer() *logBuffer { return &logBuffer{changed: make(chan struct{})} }

// Write appends p.
func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	close(b.changed)
	b.changed = make(chan struct{})
	return b.buf.Write(p)
}

// String returns what was written.
func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor returns the submatches of the first line that matches re, waiting for it to be
// written.
func (b *logBuffer) waitFor(t *testing.T, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.After(time.Minute) // a bound on a broken server, not a condition
	for {
		b.mu.Lock()
		m := re.FindStringSubmatch(b.buf.String())
		changed := b.changed
		b.mu.Unlock()
		if m != nil {
			return m
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no line matches %s in:\n%s", re, b.String())
		}
	}
}

// lines returns the lines written so far.
func (b *logBuffer) lines() []string { return strings.Split(strings.TrimSpace(b.String()), "\n") }

// TestServeStartUp reads the log of a fresh start, as a newcomer's terminal shows it, and of the
// second start on the same database.
func TestServeStartUp(t *testing.T) {
	t.Parallel()
	name := "cgtest_new_" + testenv.RandomHex(6)
	t.Cleanup(func() { testenv.DropDatabase(t, name) })
	secrets := filepath.Join(t.TempDir(), "secrets.json")
	env := map[string]string{"DATABASE_URL": testenv.DatabaseURL(name), "SECRETS_FILE": secrets, "LOG_FORMAT": "text"}

	base, logs := startServerLogs(t, env)
	logs.waitFor(t, regexp.MustCompile(`open http://\S+ in a browser`))
	out := logs.String()
	t.Logf("first start:\n%s", out)
	for _, want := range []string{
		"generated development secrets in " + secrets,
		"created database " + name,
		"mode: one instance, rooms fan out in process (REDIS_URL is not set",
		"mail: SMTP_URL is not set, so sign-in links are printed here",
		"SMS: SMS_WEBHOOK_URL is not set",
		"Web Push: on, VAPID key from the secrets file, sending to fcm.googleapis.com,",
		"loaded the sample catalogue: 32 classes of term SAMPLE",
		"open " + base + " in a browser",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q", want)
		}
	}
	// The key generated into the secrets file is the one browsers subscribe with.
	resp, err := http.Get(base + "/api/v1/push/key")
	if err != nil {
		t.Fatal(err)
	}
	var key struct {
		PublicKey string `json:"public_key"`
	}
	err = json.NewDecoder(resp.Body).Decode(&key)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || len(key.PublicKey) != 87 {
		t.Errorf("GET /api/v1/push/key: Status=%d key %q (%v), want 200 with a key", resp.StatusCode, key.PublicKey, err)
	}
	if !regexp.MustCompile(`applied (\d+) migrations: schema version 0 → (\d+)`).MatchString(out) {
		t.Errorf("the log lacks the migrations applied")
	}
	for _, l := range logs.lines() {
		if strings.HasPrefix(l, "{") {
			t.Fatalf("LOG_FORMAT=text wrote JSON: %s", l)
		}
	}
	if n := countClasses(t, testenv.DatabaseURL(name)); n != len(sis.SampleSections()) {
		t.Fatalf("%d classes after the first start, want the %d of the sample", n, len(sis.SampleSections()))
	}

	// The second start finds everything in place, and loads no sample again.
	_, logs = startServerLogs(t, env)
	logs.waitFor(t, regexp.MustCompile(`open http://\S+ in a browser`))
	out = logs.String()
	for _, want := range []string{"read development secrets from " + secrets, "found database " + name, "schema up to date at version"} {
		if !strings.Contains(out, want) {
			t.Errorf("second start: the log lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "loaded the sample") {
		t.Errorf("second start loaded the sample again:\n%s", out)
	}
	if n := countClasses(t, testenv.DatabaseURL(name)); n != len(sis.SampleSections()) {
		t.Fatalf("%d classes after the second start, want %d", n, len(sis.SampleSections()))
	}
}

// TestServeJSONLog: with LOG_FORMAT=json every line of the output is a JSON object, the sign-in
// link included, as the message of a record of its own.
func TestServeJSONLog(t *testing.T) {
	t.Parallel()
	base, logs := startServerLogs(t, map[string]string{"LOG_FORMAT": "json", "SAMPLE_CLASSES": "false"})
	requestLink(t, base, "json1a@virginia.edu")
	logs.waitFor(t, regexp.MustCompile(`"msg":"sign-in link for json1a@virginia.edu: http://`))
	for _, l := range logs.lines() {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not a JSON line: %s", l)
		}
	}
	if !strings.Contains(logs.String(), `"msg":"mode: one instance`) {
		t.Fatalf("no mode record:\n%s", logs.String())
	}
}

// requestLink asks the server at base for a sign-in link for email.
func requestLink(t *testing.T, base, email string) {
	t.Helper()
	resp, err := http.Post(base+"/api/v1/auth/magic-link", "application/json", strings.NewReader(`{"email":"`+email+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("magic-link: Status=%d, want 202", resp.StatusCode)
	}
}

// TestServeSignInLinkLine: without SMTP_URL the sign-in link is printed plainly on a line of
// its own, the link signs in, and the page learns that links are in the server's output.
func TestServeSignInLinkLine(t *testing.T) {
	t.Parallel()
	base, logs := startServerLogs(t, map[string]string{"LOG_FORMAT": "text", "SAMPLE_CLASSES": "false"})
	requestLink(t, base, "Line1A@virginia.edu")
	m := logs.waitFor(t, regexp.MustCompile(`(?m)^sign-in link for line1a@virginia\.edu: (http://\S+)$`))
	link, err := url.Parse(m[1])
	if err != nil || link.Path != "/auth/verify" {
		t.Fatalf("link %q (%v), want one to /auth/verify", m[1], err)
	}
	resp, err := http.Post(base+"/api/v1/auth/verify", "application/json", strings.NewReader(`{"token":"`+link.Query().Get("token")+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Token string `json:"token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || body.Token == "" {
		t.Fatalf("verify: Status=%d, want 200 with a session", resp.StatusCode)
	}

	resp, err = http.Get(base + "/api/v1/config")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&cfg)
	resp.Body.Close()
	if cfg["sign_in_links"] != "server_output" {
		t.Fatalf("config %v, want sign_in_links server_output", cfg)
	}
}

// TestServeSampleClasses: the sample catalogue is never loaded with an SIS configured, with
// SAMPLE_CLASSES=false, or in production (JWT_KEYS set); the log then says how classes get in.
func TestServeSampleClasses(t *testing.T) {
	t.Parallel()
	key := "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	for name, tc := range map[string]struct {
		env  map[string]string
		hint string
	}{
		"SIS":        {map[string]string{"SIS_BASE_URL": sistest.NewServer(t).URL}, "no classes yet: they come from the SIS"},
		"Off":        {map[string]string{"SAMPLE_CLASSES": "false"}, "no classes yet: add them with commongrounds import-classes"},
		"Production": {map[string]string{"JWT_KEYS": key, "PHONE_PEPPERS": "1:" + key[3:]}, "no classes yet: add them with commongrounds import-classes"},
		"SISAndOn":   {map[string]string{"SIS_BASE_URL": sistest.NewServer(t).URL, "SAMPLE_CLASSES": "true"}, "no classes yet: they come from the SIS"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dbURL := testenv.NewDatabase(t)
			tc.env["DATABASE_URL"] = dbURL
			tc.env["LOG_FORMAT"] = "text"
			_, logs := startServerLogs(t, tc.env)
			logs.waitFor(t, regexp.MustCompile(`open http://\S+ in a browser`))
			if out := logs.String(); !strings.Contains(out, tc.hint) || strings.Contains(out, "loaded the sample") {
				t.Fatalf("log lacks %q or loads the sample:\n%s", tc.hint, out)
			}
			if n := countClasses(t, dbURL); n != 0 {
				t.Fatalf("%d classes, want none", n)
			}
		})
	}
}

// TestLogMode: the mode line names Redis or Redis Cluster with the address, never the password.
func TestLogMode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  config.Config
		want string
	}{
		{config.Config{}, "mode: one instance, rooms fan out in process"},
		{config.Config{RedisURL: "redis://:s3cret@10.0.0.5:6380/2"}, "mode: Redis at 10.0.0.5:6380 db 2,"},
		{config.Config{RedisURL: "redis://:s3cret@10.0.0.5:7000?addr=10.0.0.6:7001", RedisCluster: true}, "mode: Redis Cluster at 10.0.0.5:7000,10.0.0.6:7001,"},
	} {
		var out strings.Builder
		logMode(slog.New(slog.NewTextHandler(&out, nil)), &tc.cfg)
		if !strings.Contains(out.String(), tc.want) || strings.Contains(out.String(), "s3cret") {
			t.Errorf("REDIS_URL=%q cluster=%v: %q, want %q and no password", tc.cfg.RedisURL, tc.cfg.RedisCluster, out.String(), tc.want)
		}
	}
}

// TestMigrate: migrate creates the database, says which version it left, and the second run
// finds nothing to do.
func TestMigrate(t *testing.T) {
	t.Parallel()
	name := "cgtest_new_" + testenv.RandomHex(6)
	t.Cleanup(func() { testenv.DropDatabase(t, name) })
	env := map[string]string{"DATABASE_URL": testenv.DatabaseURL(name), "SECRETS_FILE": filepath.Join(t.TempDir(), "secrets.json")}
	re := regexp.MustCompile(`^migrations applied: database ` + name + ` at schema version (\d+) \(was (\d+)\)\n$`)
	out, _, err := runCmd(t, env, "migrate")
	m := re.FindStringSubmatch(out)
	if err != nil || m == nil || m[2] != "0" || m[1] == "0" {
		t.Fatalf("first run: err=%v output %q, want a schema version from 0", err, out)
	}
	version := m[1]
	out, _, err = runCmd(t, env, "migrate")
	if m = re.FindStringSubmatch(out); err != nil || m == nil || m[1] != version || m[2] != version {
		t.Fatalf("second run: err=%v output %q, want version %s unchanged", err, out, version)
	}
}
