package persistence_test

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

func sp(s string) *string { return &s }

func ip(n int) *int { return &n }

// testClass returns a class of term with the given subject, number, section and SIS number.
func testClass(term, subject, number, section, nbr, title string) cg.Class {
	c := cg.Class{Subject: subject, CatalogNumber: number, Term: term, SISClassNumber: sp(nbr), Component: sp("Lecture")}
	if section != "" {
		c.ClassSection = sp(section)
	}
	if title != "" {
		c.Title = sp(title)
	}
	return c
}

// seedClasses stores classes and fails the test on error.
func seedClasses(t *testing.T, store *persistence.ClassStore, classes ...cg.Class) {
	t.Helper()
	if _, _, _, err := store.UpsertClasses(context.Background(), classes, time.Now()); err != nil {
		t.Fatalf("seed classes: %v", err)
	}
}

func TestUpsertClasses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		store := persistence.NewClassStore(testenv.MustOpenDB(t))
		a := testClass("1262", "CS", "3120", "001", "10281", "Discrete Mathematics and Theory 2")
		b := testClass("1262", "CS", "3120", "101", "10318", "Discrete Mathematics and Theory 2")
		c, u, n, err := store.UpsertClasses(ctx, []cg.Class{a, b}, time.Now())
		if err != nil || c != 2 || u != 0 || n != 0 {
			t.Fatalf("created=%d updated=%d unchanged=%d err=%v, want 2 0 0", c, u, n, err)
		}
		b.Instructor = sp("Tim Goldwasser")
		c, u, n, err = store.UpsertClasses(ctx, []cg.Class{a, b}, time.Now())
		if err != nil || c != 0 || u != 1 || n != 1 {
			t.Fatalf("created=%d updated=%d unchanged=%d err=%v, want 0 1 1", c, u, n, err)
		}
		// Going back to null is a change too.
		b.Instructor = nil
		if _, u, _, err = store.UpsertClasses(ctx, []cg.Class{b}, time.Now()); err != nil || u != 1 {
			t.Fatalf("updated=%d err=%v, want 1", u, err)
		}
		if n, _ := store.CountClasses(ctx, "1262"); n != 2 {
			t.Fatalf("count=%d, want 2", n)
		}
	})
	t.Run("NoSISNumber", func(t *testing.T) {
		t.Parallel()
		store := persistence.NewClassStore(testenv.MustOpenDB(t))
		a := testClass("1262", "CS", "1110", "", "", "")
		a.SISClassNumber = nil
		for i, want := range []int{1, 0} {
			c, _, n, err := store.UpsertClasses(ctx, []cg.Class{a}, time.Now())
			if err != nil || c != want || n != 1-want {
				t.Fatalf("round %d: created=%d unchanged=%d err=%v", i, c, n, err)
			}
		}
	})
	t.Run("ErrAllOrNothing", func(t *testing.T) {
		t.Parallel()
		store := persistence.NewClassStore(testenv.MustOpenDB(t))
		good := testClass("1262", "CS", "1110", "001", "1", "")
		bad := testClass("1262", "CS", "1110", "002", "2", "")
		bad.StartTime = sp("11.00") // not HHMM: the schema refuses it
		if _, _, _, err := store.UpsertClasses(ctx, []cg.Class{good, bad}, time.Now()); err == nil {
			t.Fatal("err=nil, want the bad start time refused")
		}
		if n, _ := store.CountClasses(ctx, ""); n != 0 {
			t.Fatalf("count=%d, want 0: the page is stored whole or not at all", n)
		}
	})
	t.Run("ErrUnstorableText", func(t *testing.T) {
		// Text Postgres cannot hold is the caller's error (invalid), not an internal one.
		t.Parallel()
		store := persistence.NewClassStore(testenv.MustOpenDB(t))
		for _, title := range []string{"Intro\x00", "Intro\xff"} {
			c := testClass("1262", "CS", "1110", "001", "1", "")
			c.Title = sp(title)
			if _, _, _, err := store.UpsertClasses(ctx, []cg.Class{c}, time.Now()); cg.ErrorCode(err) != cg.EINVALID {
				t.Fatalf("title %q: err=%v, want code %v", title, err, cg.EINVALID)
			}
		}
	})
	t.Run("ErrNoKey", func(t *testing.T) {
		t.Parallel()
		store := persistence.NewClassStore(testenv.MustOpenDB(t))
		if _, _, _, err := store.UpsertClasses(ctx, []cg.Class{{Subject: "CS", Term: "1262"}}, time.Now()); cg.ErrorCode(err) != cg.EINVALID {
			t.Fatalf("Code=%v, want %v", cg.ErrorCode(err), cg.EINVALID)
		}
	})
}

func TestFindClass(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.MustOpenDB(t)
	store := persistence.NewClassStore(db)
	full := cg.Class{
		Subject: "CS", CatalogNumber: "3120", Term: "1262", Title: sp("Discrete Mathematics and Theory 2"),
		ClassSection: sp("001"), Component: sp("Lecture"), Instructor: sp("Barbara Wirth"), Days: sp("Mo"),
		StartTime: sp("1100"), EndTime: sp("1350"), Location: sp("Thornton Hall E316"), ClassCapacity: ip(120),
		EnrollmentAvailable: ip(62), SISClassNumber: sp("10281"),
	}
	seedClasses(t, store, full)
	list, _, err := store.ListClasses(ctx, persistence.ClassFilter{})
	if err != nil || len(list) != 1 {
		t.Fatalf("list=%v err=%v", list, err)
	}
	id := list[0].ID
	t.Run("OK", func(t *testing.T) {
		c, n, err := store.FindClassWithCount(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		full.ID = id
		if !classesEqual(c, &full) {
			t.Fatalf("class=%+v, want %+v", c, full)
		}
		if n != 0 {
			t.Fatalf("enrolled=%d, want 0", n)
		}
		if ok, err := store.ClassExists(ctx, id); !ok || err != nil {
			t.Fatalf("exists=%v err=%v", ok, err)
		}
	})
	for _, bad := range []cg.ClassID{"not-a-uuid", "00000000-0000-0000-0000-000000000000", ""} {
		t.Run("ErrNotFound", func(t *testing.T) {
			if _, err := store.FindClassByID(ctx, bad); cg.ErrorCode(err) != cg.ECLASSNOTFOUND {
				t.Fatalf("%q: Code=%v, want %v", bad, cg.ErrorCode(err), cg.ECLASSNOTFOUND)
			}
			if _, _, err := store.FindClassWithCount(ctx, bad); cg.ErrorCode(err) != cg.ECLASSNOTFOUND {
				t.Fatalf("%q: Code=%v, want %v", bad, cg.ErrorCode(err), cg.ECLASSNOTFOUND)
			}
			if ok, err := store.ClassExists(ctx, bad); ok || err != nil {
				t.Fatalf("%q: exists=%v err=%v, want false", bad, ok, err)
			}
		})
	}
}

func classesEqual(a, b *cg.Class) bool {
	s := func(c *cg.Class) string {
		return fmt.Sprintf("%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s|%s", c.ID, c.Subject, c.CatalogNumber, c.Term,
			deref(c.Title), deref(c.ClassSection), deref(c.Component), deref(c.Instructor), deref(c.Days),
			deref(c.StartTime), deref(c.EndTime), deref(c.Location), derefInt(c.ClassCapacity),
			derefInt(c.EnrollmentAvailable), deref(c.SISClassNumber))
	}
	return s(a) == s(b)
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func derefInt(n *int) string {
	if n == nil {
		return "<nil>"
	}
	return fmt.Sprint(*n)
}

// ids returns the ids of classes.
func ids(classes []*cg.Class) []cg.ClassID {
	out := make([]cg.ClassID, len(classes))
	for i, c := range classes {
		out[i] = c.ID
	}
	return out
}

func TestListClasses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testenv.MustOpenDB(t)
	store := persistence.NewClassStore(db)
	var seed []cg.Class
	nbr := 0
	for _, term := range []string{"1262", "1268"} {
		for _, course := range []struct{ subject, number, title string }{
			{"CS", "3120", "Discrete Mathematics and Theory 2"},
			{"CS", "2120", "Discrete Mathematics and Theory 1"},
			{"CS", "31200", "A Number That Starts Alike"},
			{"MATH", "3120", "Introduction to Partial Differential Equations"},
			{"PHYS", "1425", "Introductory Physics 1"},
			{"STAT", "3220", "Introduction to Regression Analysis"},
			{"ECON", "2010", "Principles of Econ: Microeconomics 100% Fun_Time"},
		} {
			for _, section := range []string{"001", "101", "", "102"} {
				nbr++
				seed = append(seed, testClass(term, course.subject, course.number, section, fmt.Sprint(10000+nbr), course.title))
			}
		}
	}
	seedClasses(t, store, seed...)

	all, next, err := store.ListClasses(ctx, persistence.ClassFilter{Limit: persistence.MaxLimit})
	if err != nil || next != "" || len(all) != len(seed) {
		t.Fatalf("all: %d classes next=%q err=%v, want %d and no next page", len(all), next, err, len(seed))
	}
	// The order is term, subject, number, section (none first), id.
	if !slices.IsSortedFunc(all, func(a, b *cg.Class) int {
		return cmp.Or(strings.Compare(a.Term, b.Term), strings.Compare(a.Subject, b.Subject),
			strings.Compare(a.CatalogNumber, b.CatalogNumber), strings.Compare(deref0(a.ClassSection), deref0(b.ClassSection)))
	}) {
		t.Fatal("classes are not in term, subject, number, section order")
	}

	t.Run("Filters", func(t *testing.T) {
		tests := []struct {
			name string
			f    persistence.ClassFilter
			want int
		}{
			{"Term", persistence.ClassFilter{Term: "1262"}, 28},
			{"Subject", persistence.ClassFilter{Term: "1262", Subject: "cs"}, 12},
			{"CatalogNumber", persistence.ClassFilter{CatalogNumber: "3120"}, 16},
			{"SubjectAndNumber", persistence.ClassFilter{Term: "1268", Subject: "CS", CatalogNumber: "3120"}, 4},
			{"QCourse", persistence.ClassFilter{Term: "1262", Query: "CS 3120"}, 8}, // CS 3120 and CS 31200
			{"QCourseNoSpace", persistence.ClassFilter{Term: "1262", Query: "CS3120"}, 8},
			{"QCourseLower", persistence.ClassFilter{Term: "1262", Query: "  cs   3120 "}, 8},
			{"QTitle", persistence.ClassFilter{Term: "1262", Query: "discrete"}, 8},
			{"QWords", persistence.ClassFilter{Term: "1262", Query: "regression introduction"}, 4},
			{"QSubjectWord", persistence.ClassFilter{Term: "1262", Query: "math"}, 12}, // MATH and "Mathematics" twice
			{"QNumberOnly", persistence.ClassFilter{Term: "1262", Query: "1425"}, 4},
			{"QPercent", persistence.ClassFilter{Term: "1262", Query: "100%"}, 4},
			{"QWildcardIsLiteral", persistence.ClassFilter{Term: "1262", Query: "%"}, 4},
			{"QUnderscoreIsLiteral", persistence.ClassFilter{Term: "1262", Query: "n_t"}, 4}, // only Fun_Time
			{"QQuote", persistence.ClassFilter{Term: "1262", Query: "'; DROP TABLE classes; --"}, 0},
			{"QNothing", persistence.ClassFilter{Query: "quantum"}, 0},
		}
		for _, tt := range tests {
			got, _, err := store.ListClasses(ctx, tt.f)
			if err != nil || len(got) != tt.want {
				t.Errorf("%s: %d classes err=%v, want %d", tt.name, len(got), err, tt.want)
			}
		}
	})

	t.Run("Pages", func(t *testing.T) {
		for _, limit := range []int{1, 7, 50} {
			var got []*cg.Class
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > len(seed) {
					t.Fatal("paging does not end")
				}
				page, next, err := store.ListClasses(ctx, persistence.ClassFilter{Limit: limit, Cursor: cursor})
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > limit || (next != "" && len(page) != limit) {
					t.Fatalf("limit %d: page of %d with next=%q", limit, len(page), next)
				}
				got = append(got, page...)
				if next == "" {
					break
				}
				cursor = next
			}
			if !slices.Equal(ids(got), ids(all)) {
				t.Fatalf("limit %d: paging gave %d classes, not the %d of the full list in order", limit, len(got), len(all))
			}
		}
	})

	t.Run("PagesWhileWriting", func(t *testing.T) {
		// Classes added between pages appear if they sort after the cursor and never make the
		// listing repeat or skip one that existed.
		db := testenv.MustOpenDB(t)
		store := persistence.NewClassStore(db)
		seedClasses(t, store, seed[:20]...)
		page, next, err := store.ListClasses(ctx, persistence.ClassFilter{Term: "1262", Limit: 10})
		if err != nil || next == "" {
			t.Fatalf("page 1: %d next=%q err=%v", len(page), next, err)
		}
		seen := ids(page)
		// One class sorts before the cursor, one after.
		seedClasses(t, store, testClass("1262", "AAA", "1000", "001", "1", ""), testClass("1262", "ZZZ", "1000", "001", "2", ""))
		for next != "" {
			page, next, err = store.ListClasses(ctx, persistence.ClassFilter{Term: "1262", Limit: 10, Cursor: next})
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, ids(page)...)
		}
		if len(seen) != 21 {
			t.Fatalf("saw %d classes, want the 20 that existed and the one added after the cursor", len(seen))
		}
		slices.Sort(seen)
		if len(slices.Compact(seen)) != 21 {
			t.Fatal("a class was listed twice")
		}
	})

	t.Run("InstructorAndClassNumber", func(t *testing.T) {
		t.Parallel()
		store := persistence.NewClassStore(testenv.MustOpenDB(t))
		a := testClass("1262", "CS", "2150", "001", "16384", "Program and Data Representation")
		a.Instructor = sp("Nada Basit")
		b := testClass("1262", "CS", "2150", "002", "16385", "Program and Data Representation")
		b.Instructor = sp("Aaron Bloomfield")
		seedClasses(t, store, a, b)
		tests := []struct {
			q    string
			want []string
		}{
			{"basit", []string{"16384"}},
			{"Nada Basit", []string{"16384"}},
			{"16385", []string{"16385"}},
			{"1638", []string{"16384", "16385"}},
			{"cs2150", []string{"16384", "16385"}},
			{"CS 2150", []string{"16384", "16385"}},
			{"representation bloomfield", []string{"16385"}},
			{"nobody", nil},
		}
		for _, tt := range tests {
			got, _, err := store.ListClasses(ctx, persistence.ClassFilter{Query: tt.q})
			if err != nil {
				t.Fatalf("q=%q: %v", tt.q, err)
			}
			var nbrs []string
			for _, c := range got {
				nbrs = append(nbrs, deref0(c.SISClassNumber))
			}
			if !slices.Equal(nbrs, tt.want) {
				t.Errorf("q=%q: class numbers %q, want %q", tt.q, nbrs, tt.want)
			}
		}
	})

	t.Run("ErrCursor", func(t *testing.T) {
		enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
		for _, c := range []string{"garbage!", enc("{}"), enc(`["a","b","c","d"]`), enc(`["a","b","c","d","not-a-uuid"]`), enc(`[1,2,3,4,5]`)} {
			if _, _, err := store.ListClasses(ctx, persistence.ClassFilter{Cursor: c}); cg.ErrorCode(err) != cg.EINVALIDCURSOR {
				t.Fatalf("cursor %q: Code=%v, want %v", c, cg.ErrorCode(err), cg.EINVALIDCURSOR)
			}
		}
	})

	t.Run("ErrLimit", func(t *testing.T) {
		for _, l := range []int{-1, persistence.MaxLimit + 1} {
			if _, _, err := store.ListClasses(ctx, persistence.ClassFilter{Limit: l}); cg.ErrorCode(err) != cg.EINVALIDLIMIT {
				t.Fatalf("limit %d: Code=%v, want %v", l, cg.ErrorCode(err), cg.EINVALIDLIMIT)
			}
		}
	})

	t.Run("TrigramIndex", func(t *testing.T) {
		// The search expression is the one the trigram index covers: with sequential scans
		// off, the planner reaches for the index.
		conn, err := db.Pool.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Release()
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(ctx) }()
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			t.Fatal(err)
		}
		rows, err := tx.Query(ctx, `EXPLAIN SELECT id FROM classes WHERE `+persistence.ClassSearchExpr+` ILIKE $1`, "%discrete%")
		if err != nil {
			t.Fatal(err)
		}
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(line + "\n")
		}
		if rows.Err() != nil {
			t.Fatal(rows.Err())
		}
		if !strings.Contains(plan.String(), "classes_search_trgm") {
			t.Fatalf("the search does not use the trigram index:\n%s", plan.String())
		}
	})
}

func deref0(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestSearchPatterns(t *testing.T) {
	t.Parallel()
	tests := []struct {
		q    string
		want []string
	}{
		{"CS 3120", []string{"CS 3120"}},
		{"cs3120", []string{"CS 3120"}},
		{" CS \t 3120 ", []string{"CS 3120"}},
		{"math1310e", []string{"MATH 1310E"}},
		{"discrete math", []string{"discrete", "math"}},
		{"3120", []string{"3120"}},
		{"", nil},
		{"   ", nil},
	}
	for _, tt := range tests {
		if got := persistence.SearchPatterns(tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("SearchPatterns(%q)=%q, want %q", tt.q, got, tt.want)
		}
	}
}

func TestWithSyncLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := persistence.NewClassStore(testenv.MustOpenDB(t))
	held, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		ran, err := store.WithSyncLock(ctx, func(context.Context) error {
			close(held)
			<-release
			return nil
		})
		if err == nil && !ran {
			err = fmt.Errorf("the first holder did not run")
		}
		done <- err
	}()
	<-held
	ran, err := store.WithSyncLock(ctx, func(context.Context) error { return nil })
	if err != nil || ran {
		t.Fatalf("while held: ran=%v err=%v, want false", ran, err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ran, err = store.WithSyncLock(ctx, func(context.Context) error { return nil })
	if err != nil || !ran {
		t.Fatalf("after release: ran=%v err=%v, want true", ran, err)
	}
}
