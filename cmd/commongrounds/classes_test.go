package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/sis/sistest"
)

// classEnv is the environment of a class command: a fresh database and the recorded SIS.
func classEnv(t *testing.T, sisURL string) (env map[string]string, dbURL string) {
	t.Helper()
	dbURL = testenv.NewDatabase(t)
	return map[string]string{
		"DATABASE_URL": dbURL,
		"SIS_BASE_URL": sisURL,
		"SECRETS_FILE": filepath.Join(t.TempDir(), "secrets.json"),
	}, dbURL
}

// runCmd runs the command line args and returns its output and error.
func runCmd(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	return runCmdInput(t, env, strings.NewReader(""), args...)
}

// runCmdInput runs the command line args with stdin as its standard input.
func runCmdInput(t *testing.T, env map[string]string, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, func(k string) string { return env[k] }, stdin, &out, &errOut)
	return out.String(), errOut.String(), err
}

// countClasses returns the number of classes in the database at url.
func countClasses(t *testing.T, url string) int {
	t.Helper()
	db, err := persistence.Open(context.Background(), url, persistence.Options{}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n, err := persistence.NewClassStore(db).CountClasses(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSyncClasses(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		srv := sistest.NewServer(t)
		env, dbURL := classEnv(t, srv.URL)
		out, _, err := runCmd(t, env, "sync-classes", "--term", "1262")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("sync-classes printed:\n%s", out)
		if !strings.Contains(out, "term 1262: 133 sections: 133 created, 0 updated, 0 unchanged") {
			t.Fatalf("output lacks the counts:\n%s", out)
		}
		if !strings.Contains(out, "CS page 1: 44 sections: 44 created") {
			t.Fatalf("output lacks progress:\n%s", out)
		}
		if n := countClasses(t, dbURL); n != sistest.Sections {
			t.Fatalf("stored %d classes, want %d", n, sistest.Sections)
		}
		out, _, err = runCmd(t, env, "sync-classes", "--term=1262")
		if err != nil || !strings.Contains(out, "133 sections: 0 created, 0 updated, 133 unchanged") {
			t.Fatalf("again: err=%v output:\n%s", err, out)
		}
	})
	t.Run("Subject", func(t *testing.T) {
		t.Parallel()
		srv := sistest.NewServer(t)
		env, dbURL := classEnv(t, srv.URL)
		out, _, err := runCmd(t, env, "sync-classes", "--term", "1262", "--subject", "math,stat")
		want := srv.SectionsOf("MATH") + srv.SectionsOf("STAT")
		if err != nil || countClasses(t, dbURL) != want {
			t.Fatalf("err=%v stored=%d, want %d\n%s", err, countClasses(t, dbURL), want, out)
		}
	})
	t.Run("ErrSIS", func(t *testing.T) {
		t.Parallel()
		srv := sistest.NewServer(t)
		srv.Inject(sistest.Key{Subject: "MATH", Page: 1}, sistest.HTML, -1)
		env, dbURL := classEnv(t, srv.URL)
		out, _, err := runCmd(t, env, "sync-classes", "--term", "1262")
		if err == nil || !strings.Contains(err.Error(), "HTML page") || strings.Contains(oneLine(err), "\n") {
			t.Fatalf("err=%v, want a one-line error about the HTML page", err)
		}
		if !strings.Contains(out, "failed subjects (what they stored before failing stays): MATH") {
			t.Fatalf("output does not name the failed subject:\n%s", out)
		}
		if n, want := countClasses(t, dbURL), sistest.Sections-srv.SectionsOf("MATH"); n != want {
			t.Fatalf("stored %d classes, want the %d of the other subjects", n, want)
		}
	})
	t.Run("ErrUsage", func(t *testing.T) {
		t.Parallel()
		env, _ := classEnv(t, "http://127.0.0.1:1")
		noSIS := map[string]string{"DATABASE_URL": env["DATABASE_URL"], "SECRETS_FILE": env["SECRETS_FILE"]}
		tests := []struct {
			name string
			env  map[string]string
			args []string
			want string
		}{
			{"ErrNoTerm", env, []string{"sync-classes"}, "usage"},
			{"ErrBadTerm", env, []string{"sync-classes", "--term", "spring"}, "four digits"},
			{"ErrExtraArgument", env, []string{"sync-classes", "--term", "1262", "extra"}, "usage"},
			{"ErrUnknownFlag", env, []string{"sync-classes", "--year", "2026"}, "usage"},
			{"ErrBadSubject", env, []string{"sync-classes", "--term", "1262", "--subject", "C S"}, "subject"},
			{"ErrNoSISURL", noSIS, []string{"sync-classes", "--term", "1262"}, "SIS_BASE_URL"},
		}
		for _, tt := range tests {
			if _, _, err := runCmd(t, tt.env, tt.args...); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: err=%v, want one mentioning %q", tt.name, err, tt.want)
			}
		}
	})
}

func TestImportClasses(t *testing.T) {
	t.Parallel()
	// The recorded pages as one array.
	var all []byte
	for p := 1; p <= 3; p++ {
		b, err := os.ReadFile(filepath.Join(sistest.Dir(), "class-search-term-1262-page-"+string(rune('0'+p))+".json"))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.TrimSpace(b)
		if p > 1 {
			all = append(all, ',')
		}
		all = append(all, b[1:len(b)-1]...)
	}
	all = append(append([]byte{'['}, all...), ']')
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good := write("classes.json", all)
	broken := write("broken.json", all[:len(all)/2])

	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		env, dbURL := classEnv(t, "")
		out, _, err := runCmd(t, env, "import-classes", good)
		if err != nil || !strings.Contains(out, "133 sections: 133 created") {
			t.Fatalf("err=%v output:\n%s", err, out)
		}
		if n := countClasses(t, dbURL); n != sistest.Sections {
			t.Fatalf("stored %d, want %d", n, sistest.Sections)
		}
	})
	t.Run("ErrTruncated", func(t *testing.T) {
		t.Parallel()
		env, dbURL := classEnv(t, "")
		_, _, err := runCmd(t, env, "import-classes", broken)
		if err == nil || !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("err=%v, want one about truncated JSON", err)
		}
		if n := countClasses(t, dbURL); n != 0 {
			t.Fatalf("stored %d classes from a broken file, want none", n)
		}
	})
	t.Run("ErrUsage", func(t *testing.T) {
		t.Parallel()
		env, _ := classEnv(t, "")
		for _, args := range [][]string{{"import-classes"}, {"import-classes", "--file", good}, {"import-classes", filepath.Join(dir, "missing.json")}, {"import-classes", "-", "-"}} {
			if _, _, err := runCmd(t, env, args...); err == nil {
				t.Errorf("%v: err=nil, want an error", args)
			}
		}
	})

	// An SIS dump: the four pages (the last one empty) and the class-search options.
	fixtures := sistest.Dir()
	pages := []string{
		filepath.Join(fixtures, "class-search-term-1262-page-1.json"),
		filepath.Join(fixtures, "class-search-term-1262-page-2.json"),
		filepath.Join(fixtures, "class-search-term-1262-page-3.json"),
		filepath.Join(fixtures, "class-search-term-1262-page-4.json"),
	}
	options := filepath.Join(fixtures, "class-search-options-term-1262.json")
	// importOK runs import-classes on a fresh database and expects each of wants in its output
	// and n classes stored.
	importOK := func(t *testing.T, stdin io.Reader, n int, wants []string, args ...string) {
		t.Helper()
		env, dbURL := classEnv(t, "")
		out, _, err := runCmdInput(t, env, stdin, append([]string{"import-classes"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range wants {
			if !strings.Contains(out, want) {
				t.Fatalf("output lacks %q:\n%s", want, out)
			}
		}
		if got := countClasses(t, dbURL); got != n {
			t.Fatalf("stored %d, want %d", got, n)
		}
	}
	t.Run("OKSeveralFiles", func(t *testing.T) {
		t.Parallel()
		importOK(t, nil, sistest.Sections, []string{
			"[1/4] imported " + pages[0] + ": 50 sections: 50 created",
			"[4/4] imported " + pages[3] + ": 0 sections",
			"imported 4 files: 133 sections: 133 created",
		}, pages...)
	})
	t.Run("OKDirectory", func(t *testing.T) {
		t.Parallel()
		importOK(t, nil, sistest.Sections, []string{"skipped " + options + ": the class-search options", "imported 4 files: 133 sections: 133 created"}, fixtures)
	})
	t.Run("OKStandardInput", func(t *testing.T) {
		t.Parallel()
		importOK(t, bytes.NewReader(all), sistest.Sections, []string{"imported standard input: 133 sections: 133 created"}, "-")
	})
	t.Run("OKProgress", func(t *testing.T) {
		t.Parallel()
		var big strings.Builder
		big.WriteString("[")
		for i := range 2100 {
			if i > 0 {
				big.WriteString(",")
			}
			fmt.Fprintf(&big, `{"class_nbr":%d,"subject":"BIG","catalog_nbr":"%d","strm":"1262"}`, 50000+i, 1000+i)
		}
		big.WriteString("]")
		path := write("big.json", []byte(big.String()))
		importOK(t, nil, 2100, []string{"1000 of 2100 sections stored", "2000 of 2100 sections stored", "imported " + path + ": 2100 sections: 2100 created"}, path)
	})
	t.Run("ErrOptionsFile", func(t *testing.T) {
		t.Parallel()
		env, dbURL := classEnv(t, "")
		// The options file after a good page: nothing is stored, the error names the file.
		_, _, err := runCmd(t, env, "import-classes", pages[0], options)
		if err == nil || !strings.Contains(err.Error(), options+" is not a list of sections or a class-search page") {
			t.Fatalf("err=%v, want %q", err, options+" is not a list of sections or a class-search page")
		}
		if n := countClasses(t, dbURL); n != 0 {
			t.Fatalf("stored %d classes, want none", n)
		}
	})
	t.Run("Help", func(t *testing.T) {
		t.Parallel()
		out, _, err := runCmd(t, nil, "import-classes", "--help")
		if err != nil || !strings.Contains(out, "usage: commongrounds import-classes FILE|DIR|- ...") {
			t.Fatalf("err=%v output:\n%s", err, out)
		}
	})
}

// lineWriter sends each write, a log line, to a channel.
type lineWriter chan string

func (w lineWriter) Write(p []byte) (int, error) {
	w <- string(p)
	return len(p), nil
}

// TestPeriodicClassSync starts the server's periodic sync as serve does, sees a round complete,
// and stops it.
func TestPeriodicClassSync(t *testing.T) {
	t.Parallel()
	srv := sistest.NewServer(t)
	env, dbURL := classEnv(t, srv.URL)
	env["SIS_SYNC_INTERVAL"] = "1h"
	env["SIS_SYNC_TERMS"] = "1262"
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	db, err := persistence.Open(context.Background(), dbURL, persistence.Options{}, false, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lines := make(lineWriter, 100)
	stop := startClassSync(context.Background(), cfg, db, slog.New(slog.NewJSONHandler(lines, nil)))
	deadline := time.After(time.Minute) // a bound on a broken sync, not a condition
	for synced := false; !synced; {
		select {
		case l := <-lines:
			synced = strings.Contains(l, `"msg":"sis sync"`) && strings.Contains(l, `"sections":133`)
		case <-deadline:
			t.Fatal("no sync round was logged")
		}
	}
	stopped := make(chan struct{})
	go func() {
		stop()
		close(stopped)
	}()
	for done := false; !done; {
		select {
		case <-lines: // keep the logger from blocking while it stops
		case <-stopped:
			done = true
		}
	}
	if n := countClasses(t, dbURL); n != sistest.Sections {
		t.Fatalf("stored %d classes, want %d", n, sistest.Sections)
	}

	t.Run("ErrConfig", func(t *testing.T) {
		for _, change := range []map[string]string{{"SIS_SYNC_TERMS": ""}, {"SIS_BASE_URL": ""}, {"SIS_SYNC_TERMS": "spring"}, {"SIS_SYNC_INTERVAL": "often"}} {
			bad := map[string]string{}
			for k, v := range env {
				bad[k] = v
			}
			for k, v := range change {
				bad[k] = v
			}
			if _, err := config.Load(func(k string) string { return bad[k] }); err == nil {
				t.Errorf("%v: err=nil, want a configuration error", change)
			}
		}
	})
	t.Run("Off", func(t *testing.T) {
		off := *cfg
		off.SISSyncInterval = 0
		startClassSync(context.Background(), &off, db, slog.New(slog.DiscardHandler))()
	})
}

// TestServeWithClassSync runs the server with the periodic sync on, and expects it to stop
// cleanly with the server.
func TestServeWithClassSync(t *testing.T) {
	t.Parallel()
	srv := sistest.NewServer(t)
	startServer(t, map[string]string{"SIS_BASE_URL": srv.URL, "SIS_SYNC_INTERVAL": "1h", "SIS_SYNC_TERMS": "1262"})
}
