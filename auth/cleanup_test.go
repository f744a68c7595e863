package auth_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

func TestJanitor(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	ctx := context.Background()
	links := persistence.NewMagicLinkStore(db)
	if err := links.CreateMagicLink(ctx, "jan1a@virginia.edu", auth.HashToken("old"), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	var logs testenv.SyncBuffer
	j := &auth.Janitor{Store: persistence.NewCleanupStore(db), Logger: slog.New(slog.NewTextHandler(&logs, nil))}

	t.Run("OKSkippedOnOtherInstance", func(t *testing.T) {
		conn, err := db.Pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock(1128726529, 1)`); err != nil {
			t.Fatal(err)
		}
		ran := j.RunSignIns(ctx)
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_unlock(1128726529, 1)`); err != nil {
			t.Fatal(err)
		}
		if ran {
			t.Fatal("the job ran while another instance held its lock")
		}
	})
	t.Run("OK", func(t *testing.T) {
		if !j.RunSignIns(ctx) {
			t.Fatal("the job did not run")
		}
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM magic_links`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 || !strings.Contains(logs.String(), "cleanup done") {
			t.Fatalf("%d links left, logs %q: want the expired link deleted and the run logged", n, logs.String())
		}
	})
	t.Run("OKRunStopsWithContext", func(t *testing.T) {
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			j.Run(runCtx)
			close(done)
		}()
		cancel()
		<-done
	})
}
