package sis_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/sis"
	"github.com/commongrounds/commongrounds/sis/sistest"
)

// syncEnv is an SIS server and a fresh database.
type syncEnv struct {
	srv    *sistest.Server
	db     *persistence.DB
	store  *persistence.ClassStore
	syncer *sis.Syncer
}

func newSyncEnv(t *testing.T) *syncEnv {
	t.Helper()
	srv := sistest.NewServer(t)
	db := testenv.MustOpenDB(t)
	store := persistence.NewClassStore(db)
	return &syncEnv{srv: srv, db: db, store: store, syncer: &sis.Syncer{
		Client: newClient(srv.URL, 10*time.Second), Store: store, Concurrency: 3,
	}}
}

// count returns the number of classes of subject ("" for all) stored.
func (e *syncEnv) count(t *testing.T, subject string) int {
	t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FROM classes WHERE $1 = '' OR subject = $1`, subject).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// snapshot returns every stored class as text, ordered, to compare before and after a sync:
// every field the SIS provides (not the times of the last write and the last sync).
func (e *syncEnv) snapshot(t *testing.T) string {
	t.Helper()
	var s string
	err := e.db.Pool.QueryRow(context.Background(), `
		SELECT coalesce(string_agg(c::text, E'\n' ORDER BY subject, catalog_number, sis_class_number), '')
		  FROM (SELECT subject, catalog_number, term, sis_class_number, title, class_section, component, instructor,
		               days, start_time, end_time, location, class_capacity, enrollment_available
		          FROM classes) c`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t)
		var mu sync.Mutex
		var progress []sis.Progress
		e.syncer.Progress = func(p sis.Progress) {
			mu.Lock()
			defer mu.Unlock()
			progress = append(progress, p)
		}
		res, err := e.syncer.Sync(ctx, sistest.Term, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Sections != sistest.Sections || res.Created != sistest.Sections || res.Updated != 0 || res.Unchanged != 0 || res.Skipped != 0 {
			t.Fatalf("result=%+v, want %d sections all created", res, sistest.Sections)
		}
		if res.Subjects != 6 || len(res.Failed) != 0 {
			t.Fatalf("subjects=%d failed=%v, want 6 and none", res.Subjects, res.Failed)
		}
		if n := e.count(t, ""); n != sistest.Sections {
			t.Fatalf("stored %d classes, want %d", n, sistest.Sections)
		}
		sum := 0
		for _, p := range progress {
			sum += p.Sections
		}
		if len(progress) != res.Pages || sum != sistest.Sections || progress[len(progress)-1].Total.Sections != sistest.Sections {
			t.Fatalf("progress reports %d pages, %d sections (last total %+v); want %d pages, %d sections",
				len(progress), sum, progress[len(progress)-1].Total, res.Pages, sistest.Sections)
		}

		// The same term again changes nothing but the time it was last seen.
		before := e.snapshot(t)
		var firstSeen time.Time
		if err := e.db.Pool.QueryRow(ctx, `SELECT max(last_synced_at) FROM classes`).Scan(&firstSeen); err != nil {
			t.Fatal(err)
		}
		res, err = e.syncer.Sync(ctx, sistest.Term, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Sections != sistest.Sections || res.Unchanged != sistest.Sections || res.Created != 0 || res.Updated != 0 {
			t.Fatalf("second sync: %+v, want %d unchanged", res.Counts, sistest.Sections)
		}
		if after := e.snapshot(t); after != before {
			t.Fatal("a sync without changes changed classes")
		}
		var stale int
		if err := e.db.Pool.QueryRow(ctx, `SELECT count(*) FROM classes WHERE last_synced_at <= $1`, firstSeen).Scan(&stale); err != nil {
			t.Fatal(err)
		}
		if stale != 0 {
			t.Fatalf("%d classes kept the first sync's last_synced_at", stale)
		}
	})

	t.Run("Updated", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t)
		if _, err := e.syncer.Sync(ctx, sistest.Term, nil); err != nil {
			t.Fatal(err)
		}
		// Someone changed two rows; the SIS is the source of truth and puts them back.
		if _, err := e.db.Pool.Exec(ctx, `UPDATE classes SET instructor = 'Nobody', enrollment_available = NULL WHERE sis_class_number IN ('10001', '10025')`); err != nil {
			t.Fatal(err)
		}
		res, err := e.syncer.Sync(ctx, sistest.Term, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Updated != 2 || res.Unchanged != sistest.Sections-2 || res.Created != 0 {
			t.Fatalf("result=%+v, want 2 updated", res.Counts)
		}
		var instructor string
		if err := e.db.Pool.QueryRow(ctx, `SELECT instructor FROM classes WHERE sis_class_number = '10001'`).Scan(&instructor); err != nil {
			t.Fatal(err)
		}
		if instructor != "Donald Perlman" {
			t.Fatalf("instructor=%q, want it restored from the SIS", instructor)
		}
	})

	t.Run("Subject", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t)
		res, err := e.syncer.Sync(ctx, sistest.Term, []string{"cs"})
		if err != nil {
			t.Fatal(err)
		}
		if want := e.srv.SectionsOf("CS"); res.Sections != want || e.count(t, "CS") != want || e.count(t, "") != want {
			t.Fatalf("sections=%d stored=%d, want only the %d of CS", res.Sections, e.count(t, ""), want)
		}
		if e.srv.Hits(sistest.Key{Page: 0}) != 0 {
			t.Fatal("a sync of given subjects asked the SIS for the subjects")
		}
	})

	t.Run("Unfiltered", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t)
		e.srv.HideSubjects()
		res, err := e.syncer.Sync(ctx, sistest.Term, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Sections != sistest.Sections || res.Pages != 3 || e.count(t, "") != sistest.Sections {
			t.Fatalf("result=%+v, want %d sections on 3 pages", res, sistest.Sections)
		}
	})

	t.Run("OtherTerm", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t)
		res, err := e.syncer.Sync(ctx, "1268", nil)
		if err != nil || res.Sections != 0 {
			t.Fatalf("result=%+v err=%v, want an empty term", res, err)
		}
	})

	t.Run("ErrBadInput", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t)
		for _, c := range []struct{ term, subject string }{{"26", ""}, {"1262'", ""}, {"1262", "C S"}, {"1262", "CS;--"}} {
			var subs []string
			if c.subject != "" {
				subs = []string{c.subject}
			}
			if _, err := e.syncer.Sync(ctx, c.term, subs); err == nil {
				t.Fatalf("term %q subject %q: err=nil, want an error", c.term, c.subject)
			}
		}
	})

	t.Run("ErrSubjects", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t)
		e.srv.Inject(sistest.Key{Page: 0}, sistest.HTML, -1)
		if _, err := e.syncer.Sync(ctx, sistest.Term, nil); !errors.Is(err, sis.ErrHTML) {
			t.Fatalf("err=%v, want ErrHTML", err)
		}
	})
}

// TestSyncFaults fails a later page of one subject in every way the SIS fails, and checks that
// the sync says so clearly, keeps the earlier pages and the other subjects, leaves what an
// earlier sync stored as it was, and completes once the SIS heals.
func TestSyncFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault sistest.Fault
		want  error
	}{
		{"ErrHTML", sistest.HTML, sis.ErrHTML},
		{"ErrUnavailable", sistest.Unavailable, sis.ErrStatus},
		{"ErrSlow", sistest.Slow, sis.ErrTimeout},
		{"ErrTruncated", sistest.Truncated, sis.ErrTruncated},
		{"ErrCut", sistest.Cut, sis.ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newSyncEnv(t)
			if tt.fault == sistest.Slow {
				e.syncer.Client.Timeout = 500 * time.Millisecond // the slow fault costs one per attempt
			}
			e.srv.SetPageSize(10) // CS spans five pages
			cs := e.srv.SectionsOf("CS")
			bad := sistest.Key{Subject: "CS", Page: 3}
			e.srv.Inject(bad, tt.fault, -1)

			res, err := e.syncer.Sync(ctx, sistest.Term, nil)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), "subject CS page 3") {
				t.Fatalf("err=%v, want %v naming subject CS page 3", err, tt.want)
			}
			t.Logf("the sync reports: %v", err)
			if !slices.Equal(res.Failed, []string{"CS"}) {
				t.Fatalf("failed=%v, want [CS]", res.Failed)
			}
			if got := e.count(t, "CS"); got != 20 {
				t.Fatalf("stored %d CS classes, want the 20 of pages 1 and 2", got)
			}
			if got, want := e.count(t, ""), sistest.Sections-cs+20; got != want || res.Sections != want {
				t.Fatalf("stored %d classes, reported %d; want %d (every other subject whole)", got, res.Sections, want)
			}

			// Healed, the next sync completes the term.
			e.srv.Heal(bad)
			res, err = e.syncer.Sync(ctx, sistest.Term, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Sections != sistest.Sections || res.Created != cs-20 || res.Unchanged != sistest.Sections-cs+20 {
				t.Fatalf("after healing: %+v, want %d sections, %d created", res.Counts, sistest.Sections, cs-20)
			}

			// Failing again changes nothing that is stored.
			before := e.snapshot(t)
			e.srv.Inject(bad, tt.fault, -1)
			e.srv.Inject(sistest.Key{Subject: "MATH", Page: 1}, tt.fault, -1)
			if _, err := e.syncer.Sync(ctx, sistest.Term, nil); !errors.Is(err, tt.want) {
				t.Fatalf("err=%v, want %v", err, tt.want)
			}
			if e.snapshot(t) != before {
				t.Fatal("a failed sync changed what was stored")
			}
		})
	}
}

func TestSyncCancel(t *testing.T) {
	t.Parallel()
	e := newSyncEnv(t)
	e.syncer.Client.Timeout = time.Hour
	e.srv.Inject(sistest.Key{Subject: "CS", Page: 1}, sistest.Slow, -1)
	ctx, cancel := context.WithCancel(context.Background())
	e.syncer.Progress = func(p sis.Progress) {
		if p.Subject == "MATH" {
			cancel() // CS hangs; stop once another subject got through
		}
	}
	_, err := e.syncer.Sync(ctx, sistest.Term, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err=%v, want context.Canceled", err)
	}
	if e.count(t, "MATH") != e.srv.SectionsOf("MATH") {
		t.Fatal("the subject stored before the cancel is gone")
	}
}

func TestImport(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// The three recorded pages as one array.
	var all bytes.Buffer
	all.WriteString("[")
	for p := 1; p <= 3; p++ {
		b, err := os.ReadFile(filepath.Join("testdata", "class-search-term-1262-page-"+string(rune('0'+p))+".json"))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.TrimSpace(b)
		if p > 1 {
			all.WriteString(",")
		}
		all.Write(b[1 : len(b)-1])
	}
	all.WriteString("]")

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		store := persistence.NewClassStore(testenv.MustOpenDB(t))
		c, err := sis.Import(ctx, store, bytes.NewReader(all.Bytes()), time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if c.Sections != sistest.Sections || c.Created != sistest.Sections {
			t.Fatalf("counts=%+v, want %d created", c, sistest.Sections)
		}
		c, err = sis.Import(ctx, store, bytes.NewReader(all.Bytes()), time.Now())
		if err != nil || c.Unchanged != sistest.Sections {
			t.Fatalf("again: counts=%+v err=%v, want %d unchanged", c, err, sistest.Sections)
		}
	})
	t.Run("Batches", func(t *testing.T) {
		t.Parallel()
		store := persistence.NewClassStore(testenv.MustOpenDB(t))
		sections, err := sis.ParseSections(all.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		var seen []int
		c, err := sis.ImportSections(ctx, store, sections, time.Now(), 50, func(c sis.Counts) { seen = append(seen, c.Sections) })
		if err != nil || c.Created != sistest.Sections {
			t.Fatalf("counts=%+v err=%v, want %d created", c, err, sistest.Sections)
		}
		if want := []int{50, 100, sistest.Sections}; !slices.Equal(seen, want) {
			t.Fatalf("progress %v, want %v", seen, want)
		}
		if n, _ := store.CountClasses(ctx, ""); n != sistest.Sections {
			t.Fatalf("stored %d, want %d", n, sistest.Sections)
		}
	})
	t.Run("Skipped", func(t *testing.T) {
		t.Parallel()
		store := persistence.NewClassStore(testenv.MustOpenDB(t))
		in := `[{"class_nbr":1,"subject":"CS","catalog_nbr":"1110","strm":"1262"},{"subject":"CS","catalog_nbr":"1110","strm":"1262"}]`
		c, err := sis.Import(ctx, store, strings.NewReader(in), time.Now())
		if err != nil || c.Created != 1 || c.Skipped != 1 {
			t.Fatalf("counts=%+v err=%v, want 1 created and 1 skipped", c, err)
		}
	})
	t.Run("ErrTruncated", func(t *testing.T) {
		t.Parallel()
		db := testenv.MustOpenDB(t)
		store := persistence.NewClassStore(db)
		_, err := sis.Import(ctx, store, bytes.NewReader(all.Bytes()[:all.Len()-100]), time.Now())
		if !errors.Is(err, sis.ErrTruncated) {
			t.Fatalf("err=%v, want ErrTruncated", err)
		}
		if n, _ := store.CountClasses(ctx, ""); n != 0 {
			t.Fatalf("stored %d classes from a broken file, want none", n)
		}
	})
	t.Run("ErrHTML", func(t *testing.T) {
		t.Parallel()
		store := persistence.NewClassStore(testenv.MustOpenDB(t))
		_, err := sis.Import(ctx, store, strings.NewReader("<html><title>Error</title></html>"), time.Now())
		if !errors.Is(err, sis.ErrNotSections) {
			t.Fatalf("err=%v, want ErrNotSections", err)
		}
	})
}

func TestPeriodic(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t)
		rounds := make(chan bool, 10)
		var results []*sis.Result
		p := &sis.Periodic{
			Syncer: e.syncer, Lock: e.store, Terms: []string{sistest.Term}, Interval: time.Hour,
			Logger: slog.New(slog.DiscardHandler),
			OnRound: func(ran bool, res []*sis.Result, err error) {
				if err != nil {
					t.Errorf("round: %v", err)
				}
				results = res
				rounds <- ran
			},
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		ran := <-rounds
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !ran || len(results) != 1 || results[0].Sections != sistest.Sections {
			t.Fatalf("ran=%v results=%v, want one round of %d sections", ran, results, sistest.Sections)
		}
		if e.count(t, "") != sistest.Sections {
			t.Fatalf("stored %d, want %d", e.count(t, ""), sistest.Sections)
		}
	})
	t.Run("LockHeld", func(t *testing.T) {
		t.Parallel()
		e := newSyncEnv(t)
		// Another instance holds the lock for as long as this test runs the round.
		held, release := make(chan struct{}), make(chan struct{})
		otherDone := make(chan error, 1)
		go func() {
			_, err := e.store.WithSyncLock(context.Background(), func(context.Context) error {
				close(held)
				<-release
				return nil
			})
			otherDone <- err
		}()
		<-held
		rounds := make(chan bool, 10)
		p := &sis.Periodic{
			Syncer: e.syncer, Lock: e.store, Terms: []string{sistest.Term}, Interval: time.Hour,
			OnRound: func(ran bool, _ []*sis.Result, _ error) { rounds <- ran },
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		ran := <-rounds
		cancel()
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if err := <-otherDone; err != nil {
			t.Fatal(err)
		}
		if ran || e.count(t, "") != 0 || e.srv.Hits(sistest.Key{Page: 0}) != 0 {
			t.Fatalf("ran=%v stored=%d, want the round skipped while another instance holds the lock", ran, e.count(t, ""))
		}
	})
	t.Run("ErrNoInterval", func(t *testing.T) {
		t.Parallel()
		if err := (&sis.Periodic{}).Run(context.Background()); err == nil {
			t.Fatal("err=nil, want an error for a zero interval")
		}
	})
}
