package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
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
func runSyncClasses(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sync-classes", flag.ContinueOnError)
	fs.SetOutput(stderr)
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
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("usage: sync-classes --term T [--subject S]: %w", err)
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
	db, err := openDB(ctx, cfg)
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

// runImportClasses stores the classes of a JSON file in the SIS format (an array of sections,
// as the class search returns them) in one transaction, and prints the counts.
func runImportClasses(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return errors.New("usage: import-classes FILE")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return fmt.Errorf("import-classes: %w", err)
	}
	defer f.Close()
	_, db, err := loadAndOpen(ctx, getenv)
	if err != nil {
		return err
	}
	defer db.Close()
	counts, err := sis.Import(ctx, persistence.NewClassStore(db), f, time.Now())
	if err != nil {
		return fmt.Errorf("import-classes: %s: %w", args[0], err)
	}
	fmt.Fprintf(stdout, "imported %s: %s\n", args[0], counts)
	return nil
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
