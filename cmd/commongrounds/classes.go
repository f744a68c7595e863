package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/sis"
)

// runSyncClasses copies a term's classes from the SIS (SIS_BASE_URL) into the database,
// printing each page as it is stored and the counts at the end. With --subject only those
// subjects (comma-separated, or the flag repeated) are synced; without it every subject the SIS
// lists for the term.
func runSyncClasses(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("sync-classes")
	term := fs.String("term", "", "the SIS term (strm), such as 1262 for Spring 2026")
	var subjects []string
	fs.Func("subject", "sync only this subject, such as CS (comma-separated or repeated)", func(s string) error {
		for _, sub := range strings.Split(s, ",") {
			if sub = strings.TrimSpace(sub); sub != "" {
				subjects = append(subjects, sub)
			}
		}
		return nil
	})
	if done, err := parseFlags(fs, args, stdout); done || err != nil {
		return err
	}
	if fs.NArg() > 0 || *term == "" {
		return errors.New("usage: sync-classes --term T [--subject S]")
	}
	if !sis.ValidTerm(*term) {
		return fmt.Errorf("sync-classes: term %q: want four digits such as 1262", *term)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	if cfg.SISBaseURL == "" {
		return errors.New("sync-classes: SIS_BASE_URL is not set")
	}
	db, err := openDB(ctx, cfg, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	syncer := &sis.Syncer{
		Client: &sis.Client{BaseURL: cfg.SISBaseURL},
		Store:  persistence.NewClassStore(db),
		Progress: func(p sis.Progress) {
			subject := p.Subject
			if subject == "" {
				subject = "all subjects"
			}
			fmt.Fprintf(stdout, "%s page %d: %s (total %d)\n", subject, p.Page, p.Counts, p.Total.Sections)
		},
	}
	start := time.Now()
	res, err := syncer.Sync(ctx, *term, subjects)
	if res != nil {
		fmt.Fprintf(stdout, "term %s: %s in %s\n", *term, res.Counts, time.Since(start).Round(time.Millisecond))
		if len(res.Failed) > 0 {
			fmt.Fprintf(stdout, "failed subjects (what they stored before failing stays): %s\n", strings.Join(res.Failed, ", "))
		}
	}
	if err != nil {
		return fmt.Errorf("sync-classes: %w", err)
	}
	return nil
}

// importBatch is the number of sections import-classes stores in one transaction.
const importBatch = 1000

// classFile is a classes file, read and checked.
type classFile struct {
	name     string
	sections []sis.Section
}

// runImportClasses stores the classes of SIS class-search JSON files. Each argument is a file
// (a JSON array of sections, such as one page of the class search), a directory (its .json
// files in name order; the class-search options a dump keeps beside its pages are skipped), or
// "-" for standard input. Every file is read and checked before any is stored, so that a wrong
// file stores nothing; then each is stored in batches of importBatch sections, with a line after
// each file and after each batch of a large file.
func runImportClasses(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout io.Writer) error {
	fs := newFlags("import-classes")
	if done, err := parseFlags(fs, args, stdout); done || err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: import-classes FILE|DIR|- ... (commongrounds import-classes --help)")
	}
	files, err := readClassFiles(fs.Args(), stdin, stdout)
	if err != nil {
		return fmt.Errorf("import-classes: %w", err)
	}
	_, db, err := loadAndOpen(ctx, getenv)
	if err != nil {
		return err
	}
	defer db.Close()
	store := persistence.NewClassStore(db)
	var total sis.Counts
	now := time.Now()
	for i, f := range files {
		progress := func(so sis.Counts) {
			if len(f.sections) > importBatch {
				fmt.Fprintf(stdout, "  %s: %d of %d sections stored\n", f.name, so.Sections+so.Skipped, len(f.sections))
			}
		}
		c, err := sis.ImportSections(ctx, store, f.sections, now, importBatch, progress)
		total.Add(c)
		if err != nil {
			return fmt.Errorf("import-classes: %s: %w (what was stored before stays; importing again is harmless)", f.name, err)
		}
		if len(files) > 1 {
			fmt.Fprintf(stdout, "[%d/%d] ", i+1, len(files))
		}
		fmt.Fprintf(stdout, "imported %s: %s\n", f.name, c)
	}
	if len(files) > 1 {
		fmt.Fprintf(stdout, "imported %d files: %s\n", len(files), total)
	}
	return nil
}

// readClassFiles reads and checks the files that the arguments of import-classes name.
func readClassFiles(args []string, stdin io.Reader, stdout io.Writer) ([]classFile, error) {
	var files []classFile
	add := func(name string, body []byte) error {
		sections, err := sis.ParseSections(body)
		if errors.Is(err, sis.ErrNotSections) {
			return fmt.Errorf("%s is %w", name, err)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		files = append(files, classFile{name: name, sections: sections})
		return nil
	}
	stdinRead := false
	for _, arg := range args {
		if arg == "-" {
			if stdinRead {
				return nil, errors.New("- (standard input) is named twice")
			}
			stdinRead = true
			body, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read standard input: %w", err)
			}
			if err := add("standard input", body); err != nil {
				return nil, err
			}
			continue
		}
		info, err := os.Stat(arg)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			body, err := os.ReadFile(arg)
			if err != nil {
				return nil, err
			}
			if err := add(arg, body); err != nil {
				return nil, err
			}
			continue
		}
		entries, err := os.ReadDir(arg)
		if err != nil {
			return nil, err
		}
		found := 0
		for _, e := range entries {
			if e.IsDir() || !strings.EqualFold(filepath.Ext(e.Name()), ".json") {
				continue
			}
			name := filepath.Join(arg, e.Name())
			body, err := os.ReadFile(name)
			if err != nil {
				return nil, err
			}
			found++
			if sis.IsOptions(body) {
				fmt.Fprintf(stdout, "skipped %s: the class-search options, which list no sections\n", name)
				continue
			}
			if err := add(name, body); err != nil {
				return nil, err
			}
		}
		if found == 0 {
			return nil, fmt.Errorf("%s holds no .json files", arg)
		}
	}
	return files, nil
}

// startClassSync starts the periodic SIS sync when the configuration asks for one
// (SIS_SYNC_INTERVAL with SIS_SYNC_TERMS and SIS_BASE_URL), and returns the function that stops
// it and waits for it to end. Each round runs on one instance only: the one that gets the
// Postgres advisory lock.
func startClassSync(ctx context.Context, cfg *config.Config, db *persistence.DB, logger *slog.Logger) (stop func()) {
	if cfg.SISSyncInterval <= 0 {
		return func() {}
	}
	store := persistence.NewClassStore(db)
	p := &sis.Periodic{
		Syncer:   &sis.Syncer{Client: &sis.Client{BaseURL: cfg.SISBaseURL}, Store: store},
		Lock:     store,
		Terms:    cfg.SISSyncTerms,
		Interval: cfg.SISSyncInterval,
		Logger:   logger,
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			logger.Error("periodic SIS sync", "err", err)
		}
	}()
	logger.Info("periodic SIS sync", "every", cfg.SISSyncInterval.String(), "terms", cfg.SISSyncTerms)
	return func() {
		cancel()
		<-done
	}
}
