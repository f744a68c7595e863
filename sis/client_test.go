package sis_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/commongrounds/commongrounds/sis"
	"github.com/commongrounds/commongrounds/sis/sistest"
)

// newClient returns a client of srv that retries at once; timeout bounds each attempt.
func newClient(url string, timeout time.Duration) *sis.Client {
	return &sis.Client{BaseURL: url, Timeout: timeout, Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}
}

func TestClientPage(t *testing.T) {
	t.Parallel()
	srv := sistest.NewServer(t)
	c := newClient(srv.URL, 10*time.Second)
	ctx := context.Background()
	t.Run("OK", func(t *testing.T) {
		total := 0
		for page := 1; ; page++ {
			secs, err := c.Page(ctx, sistest.Term, "", page)
			if err != nil {
				t.Fatal(err)
			}
			if len(secs) == 0 {
				break
			}
			total += len(secs)
		}
		if total != sistest.Sections {
			t.Fatalf("sections=%d, want %d", total, sistest.Sections)
		}
	})
	t.Run("Subject", func(t *testing.T) {
		secs, err := c.Page(ctx, sistest.Term, "MATH", 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(secs) != srv.SectionsOf("MATH") || len(secs) == 0 {
			t.Fatalf("sections=%d, want %d", len(secs), srv.SectionsOf("MATH"))
		}
		for _, s := range secs {
			if s.Subject != "MATH" {
				t.Fatalf("subject %q in the MATH listing", s.Subject)
			}
		}
	})
	t.Run("Subjects", func(t *testing.T) {
		subs, err := c.Subjects(ctx, sistest.Term)
		if err != nil {
			t.Fatal(err)
		}
		if len(subs) != 6 || subs[0].Subject != "CS" {
			t.Fatalf("subjects=%v, want six starting with CS", subs)
		}
	})
	t.Run("ErrNoBaseURL", func(t *testing.T) {
		if _, err := (&sis.Client{}).Page(ctx, sistest.Term, "", 1); err == nil || !strings.Contains(err.Error(), "SIS_BASE_URL") {
			t.Fatalf("err=%v, want one naming SIS_BASE_URL", err)
		}
	})
}

// TestClientFaults checks every fault of the SIS: which are retried, and the error each leaves
// when it persists.
func TestClientFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault sistest.Fault
		// retried: a single fault passes on the next attempt; otherwise it is final at once.
		retried bool
		want    error
	}{
		{"ErrHTML", sistest.HTML, false, sis.ErrHTML},
		{"ErrUnavailable", sistest.Unavailable, true, sis.ErrStatus},
		{"ErrSlow", sistest.Slow, true, sis.ErrTimeout},
		{"ErrTruncated", sistest.Truncated, true, sis.ErrTruncated},
		{"ErrCut", sistest.Cut, true, sis.ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := sistest.NewServer(t)
			// The slow fault costs one timeout per attempt; the others answer at once, and get
			// time enough never to time out on a busy machine.
			timeout := 10 * time.Second
			if tt.fault == sistest.Slow {
				timeout = time.Second
			}
			c := newClient(srv.URL, timeout)
			ctx := context.Background()
			key := sistest.Key{Subject: "CS", Page: 1}

			srv.Inject(key, tt.fault, 1)
			secs, err := c.Page(ctx, sistest.Term, "CS", 1)
			switch {
			case tt.retried && (err != nil || len(secs) != srv.SectionsOf("CS")):
				t.Fatalf("one fault: sections=%d err=%v, want the page on the second attempt", len(secs), err)
			case tt.retried && srv.Hits(key) != 2:
				t.Fatalf("one fault: hits=%d, want 2", srv.Hits(key))
			case !tt.retried && !errors.Is(err, tt.want):
				t.Fatalf("one fault: err=%v, want %v", err, tt.want)
			case !tt.retried && srv.Hits(key) != 1:
				t.Fatalf("one fault: hits=%d, want 1 (not retried)", srv.Hits(key))
			}

			other := sistest.Key{Subject: "MATH", Page: 1}
			srv.Inject(other, tt.fault, -1)
			_, err = c.Page(ctx, sistest.Term, "MATH", 1)
			if !errors.Is(err, tt.want) {
				t.Fatalf("lasting fault: err=%v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "subject MATH page 1") {
				t.Fatalf("err=%q does not say which page failed", err)
			}
			wantHits := 1
			if tt.retried {
				wantHits = 3
			}
			if got := srv.Hits(other); got != wantHits {
				t.Fatalf("lasting fault: hits=%d, want %d", got, wantHits)
			}
		})
	}
}

func TestClientBadAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        error
		text        string
	}{
		{"ErrObject", 200, "application/json", `{"error":"no"}`, sis.ErrInvalidJSON, "expected"},
		{"ErrSyntax", 200, "application/json", `[{"class_nbr":1,}]`, sis.ErrInvalidJSON, "syntax error"},
		{"ErrTrailing", 200, "application/json", `[] []`, sis.ErrInvalidJSON, "after the JSON"},
		{"ErrEmpty", 200, "application/json", ``, sis.ErrTruncated, "empty"},
		{"ErrHTMLAsJSON", 200, "application/json", "\n<html><head><title>Sign In</title></head></html>", sis.ErrHTML, `"Sign In"`},
		{"ErrNotFound", 404, "text/plain", "no such page", sis.ErrStatus, "404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tt.contentType)
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			c := &sis.Client{BaseURL: srv.URL, Attempts: 1}
			_, err := c.Page(context.Background(), "1262", "CS", 1)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("err=%v, want %v mentioning %q", err, tt.want, tt.text)
			}
		})
	}
}

// TestClientCancel checks that a cancelled caller is not retried and gets its own error.
func TestClientCancel(t *testing.T) {
	t.Parallel()
	srv := sistest.NewServer(t)
	srv.Inject(sistest.Key{Subject: "CS", Page: 1}, sistest.Slow, -1)
	c := &sis.Client{BaseURL: srv.URL, Timeout: time.Hour, Attempts: 5}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Page(ctx, sistest.Term, "CS", 1)
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err=%v, want context.Canceled", err)
	}
}
