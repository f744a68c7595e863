package main

import (
	"bytes"
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/internal/loadgen"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

// seedEnv returns the environment of a loadtest-seed run against a fresh database.
func seedEnv(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"DATABASE_URL": testenv.NewDatabase(t),
		"SECRETS_FILE": filepath.Join(t.TempDir(), "secrets.json"),
	}
}

// seed runs loadtest-seed and returns what it wrote.
func seed(t *testing.T, env map[string]string, args ...string) *loadgen.Seed {
	t.Helper()
	out := filepath.Join(t.TempDir(), "seed.json")
	var stdout, stderr bytes.Buffer
	err := runLoadtestSeed(context.Background(), append(args, "--out", out), func(k string) string { return env[k] }, &stdout, &stderr)
	if err != nil {
		t.Fatalf("loadtest-seed: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "loadtest-seed:") {
		t.Fatalf("stdout = %q, want a summary", stdout.String())
	}
	s, err := loadgen.ReadSeed(out)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLoadtestSeed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	env := seedEnv(t)
	getenv := func(k string) string { return env[k] }
	first := seed(t, env, "--users", "30", "--rooms", "4", "--members-per-room", "15")

	// The tokens must be valid for a server that loads the same configuration.
	cfg, err := config.Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := auth.NewSigner(cfg.JWTKeys, nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := persistence.Open(ctx, env["DATABASE_URL"], persistence.Options{}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sessions := &auth.Sessions{Store: persistence.NewSessionStore(db), Signer: signer}
	users := persistence.NewUserStore(db)
	messages := persistence.NewMessageStore(db)

	t.Run("OK", func(t *testing.T) {
		if len(first.Users) != 30 || len(first.Rooms) != 4 {
			t.Fatalf("%d users and %d rooms, want 30 and 4", len(first.Users), len(first.Rooms))
		}
		members := make(map[string]int)
		for i, u := range first.Users {
			if want := fmt.Sprintf("load%05d@virginia.edu", i+1); u.Email != want {
				t.Fatalf("user %d: email %q, want %q", i, u.Email, want)
			}
			if len(u.Rooms) != 2 {
				t.Fatalf("user %d in %d rooms, want 2 (4 rooms × 15 members over 30 users)", i, len(u.Rooms))
			}
			sess, err := sessions.Authenticate(ctx, u.Token)
			if err != nil {
				t.Fatalf("user %d: Authenticate: %v", i, err)
			}
			user, err := users.FindUserByEmail(ctx, u.Email)
			if err != nil {
				t.Fatal(err)
			}
			if sess.UserID != user.ID || !user.EmailVerified {
				t.Fatalf("user %d: session of %s, want %s (verified)", i, sess.UserID, user.ID)
			}
			for _, room := range first.Rooms {
				anon, err := messages.RoomAccess(ctx, user.ID, cg.ClassID(room))
				if slices.Contains(u.Rooms, room) {
					members[room]++
					if err != nil || !strings.HasPrefix(string(anon), "Anon_") {
						t.Fatalf("user %d in room %s: RoomAccess = %q, %v", i, room, anon, err)
					}
				} else if cg.ErrorCode(err) != cg.ENOTENROLLED {
					t.Fatalf("user %d not in room %s: RoomAccess error %v, want not_enrolled", i, room, err)
				}
			}
		}
		for room, n := range members {
			if n != 15 {
				t.Fatalf("room %s has %d members, want 15", room, n)
			}
		}
	})

	t.Run("Rerun", func(t *testing.T) {
		again := seed(t, env, "--users", "30", "--rooms", "4", "--members-per-room", "15")
		if !slices.Equal(again.Rooms, first.Rooms) {
			t.Fatalf("rooms %v, want the same as before %v", again.Rooms, first.Rooms)
		}
		for i, u := range again.Users {
			if u.Token == first.Users[i].Token {
				t.Fatalf("user %d got the same token again", i)
			}
			a, err := sessions.Authenticate(ctx, u.Token)
			if err != nil {
				t.Fatalf("user %d: Authenticate: %v", i, err)
			}
			b, err := sessions.Authenticate(ctx, first.Users[i].Token)
			if err != nil || a.UserID != b.UserID {
				t.Fatalf("user %d: new session of %s, old of %v (%v): want the same user", i, a.UserID, b, err)
			}
		}
	})
}

func TestLoadtestSeedErrors(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DATABASE_URL": "postgres://postgres@db.example.com:5432/commongrounds",
		"SECRETS_FILE": filepath.Join(t.TempDir(), "secrets.json"),
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"ErrNoUsers", []string{"--out", "x.json"}, "--users"},
		{"ErrZeroRooms", []string{"--users", "5", "--rooms", "0", "--out", "x.json"}, "--rooms"},
		{"ErrMembersOverUsers", []string{"--users", "5", "--members-per-room", "6", "--out", "x.json"}, "--members-per-room"},
		{"ErrNoOut", []string{"--users", "5"}, "--out"},
		{"ErrUnknownFlag", []string{"--users", "5", "--out", "x.json", "--nope"}, "nope"},
		{"ErrArgument", []string{"--users", "5", "--out", "x.json", "extra"}, "extra"},
		// A database elsewhere is refused before any connection unless --yes is given.
		{"ErrRemoteDatabase", []string{"--users", "5", "--out", "x.json"}, "--yes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := runLoadtestSeed(context.Background(), tt.args, func(k string) string { return env[k] }, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one that mentions %s", err, tt.want)
			}
		})
	}
}

// TestLoadSmoke is the load test in small: a few hundred sockets against the real server for a
// few seconds, publishing, then every socket dropped and resumed with since_seq while the
// publishers go on. It fails on any gap, duplicate, loss, error or failed connection, never on
// timing.
func TestLoadSmoke(t *testing.T) {
	t.Parallel()
	env := seedEnv(t)
	env["PUBLISH_RATE"] = "50"
	env["PUBLISH_BURST"] = "50"
	s := seed(t, env, "--users", "200", "--rooms", "10", "--members-per-room", "40")
	base := startServer(t, env)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := loadgen.Run(ctx, loadgen.Config{
		Scenario:     "smoke",
		URLs:         []string{"ws" + strings.TrimPrefix(base, "http") + "/ws"},
		Seed:         s,
		Publishers:   40,
		Rate:         60,
		ChangeMix:    0.1, // edits, deletions and hides: events checked like messages
		Duration:     2 * time.Second,
		Storm:        loadgen.StormDrop,
		StormTimeout: time.Minute,
		DrainTimeout: time.Minute,
	}, loadgen.Control{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var report bytes.Buffer
	res.WriteText(&report)
	if why := res.Failed(); len(why) > 0 {
		t.Fatalf("load run not correct: %v\n%s", why, report.String())
	}
	if res.Acked == 0 || res.Delivered == 0 || res.Connects < 2*int64(res.Sockets) || res.Storm.CaughtUpAt == 0 {
		t.Fatalf("acked %d, delivered %d, %d upgrades of %d sockets, storm %+v: want publishes, deliveries and every socket reconnected\n%s",
			res.Acked, res.Delivered, res.Connects, res.Sockets, res.Storm, report.String())
	}
	if res.Changes == 0 {
		t.Fatalf("no change was made\n%s", report.String())
	}
	// Every committed message and change reached each of the 40 members of its room exactly once.
	committed, _ := res.Committed()
	if want := (committed + res.Changes) * 40; res.Delivered != want {
		t.Fatalf("%d deliveries of %d committed messages and %d changes, want %d\n%s", res.Delivered, committed, res.Changes, want, report.String())
	}
}

// TestLoadReplies: with a reply mix, the load generator's offline users start threads and store
// push subscriptions before the run, and the replies to those threads are correct events of the
// room that reach each offline user's push endpoint.
func TestLoadReplies(t *testing.T) {
	t.Parallel()
	pushed := make(chan string, 1000) // the endpoint path of every push
	pushSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case pushed <- r.URL.Path:
		default:
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer pushSrv.Close()
	caFile := filepath.Join(t.TempDir(), "push-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: pushSrv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	env := seedEnv(t)
	env["PUSH_ALLOWED_HOSTS"] = strings.TrimPrefix(pushSrv.URL, "https://")
	env["PUSH_CA_FILE"] = caFile
	s := seed(t, env, "--users", "30", "--rooms", "1", "--members-per-room", "30")
	base := startServer(t, env)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const offline = 3
	res, err := loadgen.Run(ctx, loadgen.Config{
		Scenario:     "replies",
		URLs:         []string{"ws" + strings.TrimPrefix(base, "http") + "/ws"},
		Seed:         s,
		Publishers:   5,
		Rate:         20,
		ReplyMix:     0.5,
		Offline:      offline,
		PushEndpoint: pushSrv.URL + "/wpush",
		Duration:     2 * time.Second,
		DrainTimeout: time.Minute,
	}, loadgen.Control{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var report bytes.Buffer
	res.WriteText(&report)
	if why := res.Failed(); len(why) > 0 {
		t.Fatalf("load run not correct: %v\n%s", why, report.String())
	}
	committed, _ := res.Committed()
	if res.Threads != offline || res.Replies == 0 || res.Sockets != 30-offline || res.Delivered != committed*(30-offline) {
		t.Fatalf("%d threads, %d replies, %d sockets, %d deliveries of %d messages: want %d threads, replies, and every message at every socket\n%s",
			res.Threads, res.Replies, res.Sockets, res.Delivered, committed, offline, report.String())
	}
	// Each offline user's first reply is pushed at once (later ones of the thread are coalesced).
	endpoints := map[string]bool{}
	for len(endpoints) < offline {
		select {
		case path := <-pushed:
			endpoints[path] = true
		case <-ctx.Done():
			t.Fatalf("pushes to %v, want one to each of the %d offline users", endpoints, offline)
		}
	}
}

// TestLoadRepliesRefused: a reply mix without offline users to start the threads, or a push
// endpoint that is not https, is a clear error before anything connects.
func TestLoadRepliesRefused(t *testing.T) {
	t.Parallel()
	s := &loadgen.Seed{Users: []loadgen.SeedUser{{Token: "t", Rooms: []string{"r"}}, {Token: "u", Rooms: []string{"r"}}}}
	for _, tc := range []struct {
		name string
		cfg  loadgen.Config
		want string
	}{
		{"ErrNoOffline", loadgen.Config{ReplyMix: 0.1}, "offline users"},
		{"ErrAllOffline", loadgen.Config{Offline: 2}, "offline users 2"},
		{"ErrMix", loadgen.Config{ReplyMix: 0.6, ChangeMix: 0.6, Offline: 1}, "reply mix"},
		{"ErrPushEndpoint", loadgen.Config{Offline: 1, PushEndpoint: "http://push.example"}, "https"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.URLs, tc.cfg.Seed = []string{"ws://127.0.0.1:1/ws"}, s
			if _, err := loadgen.Run(context.Background(), tc.cfg, loadgen.Control{}, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err=%v, want one saying %q", err, tc.want)
			}
		})
	}
}
