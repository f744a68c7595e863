package sis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// Store keeps classes. persistence.ClassStore implements it.
type Store interface {
	// UpsertClasses stores classes in one transaction, keyed on (subject, catalog_number, term,
	// sis_class_number), sets their last_synced_at, and counts the rows it created, updated and
	// found unchanged.
	UpsertClasses(ctx context.Context, classes []cg.Class, syncedAt time.Time) (created, updated, unchanged int, err error)
}

// Counts are what a sync or an import did.
type Counts struct {
	// Sections is the number of sections stored: Created + Updated + Unchanged.
	Sections  int
	Created   int
	Updated   int
	Unchanged int
	// Skipped counts sections without a subject, catalog number, term or class number.
	Skipped int
}

// Add adds o to c.
func (c *Counts) Add(o Counts) {
	c.Sections += o.Sections
	c.Created += o.Created
	c.Updated += o.Updated
	c.Unchanged += o.Unchanged
	c.Skipped += o.Skipped
}

// String reports the counts for people.
func (c Counts) String() string {
	s := fmt.Sprintf("%d sections: %d created, %d updated, %d unchanged", c.Sections, c.Created, c.Updated, c.Unchanged)
	if c.Skipped > 0 {
		s += fmt.Sprintf(", %d skipped", c.Skipped)
	}
	return s
}

// Progress is reported after each page a sync stores.
type Progress struct {
	Term    string
	Subject string // "" when the term is read without a subject filter
	Page    int
	// Page is the counts of this page; Total those of the whole sync so far.
	Counts
	Total Counts
}

// Result is the outcome of a sync.
type Result struct {
	Term string
	// Subjects is the number of subjects synced (0 when the term was read without a filter).
	Subjects int
	// Pages is the number of non-empty pages stored.
	Pages int
	Counts
	// Failed lists the subjects whose sync failed part-way; their earlier pages stay stored.
	Failed []string
}

// Syncer copies the sections of a term from the SIS into the store. Each page is stored in a
// transaction of its own as soon as it arrives: a failure part-way loses nothing stored before
// it, and a sync that is run again picks up every change.
type Syncer struct {
	Client *Client
	Store  Store
	// Concurrency is how many subjects are synced at once. Default: 4.
	Concurrency int
	// MaxPages stops a subject that never ends with an empty page. Default: 1000.
	MaxPages int
	// Progress, when set, is told about every page stored. Calls never overlap.
	Progress func(Progress)
	// Now is the clock that stamps last_synced_at. Default: time.Now.
	Now func() time.Time
}

var (
	termRE    = regexp.MustCompile(`^[0-9]{4}$`)
	subjectRE = regexp.MustCompile(`^[A-Za-z0-9]{1,10}$`)
)

// ValidTerm reports whether term looks like an SIS term (strm): four digits such as 1262.
func ValidTerm(term string) bool { return termRE.MatchString(term) }

// Sync copies term from the SIS: the given subjects, or, when there are none, every subject the
// SIS lists for the term (the whole term unfiltered when it lists none). Subjects run
// concurrently; a subject that fails does not stop the others. The error joins every
// subject's failure; the result counts what was stored all the same.
func (s *Syncer) Sync(ctx context.Context, term string, subjects []string) (*Result, error) {
	if !ValidTerm(term) {
		return nil, fmt.Errorf("sis: term %q: want four digits such as 1262", term)
	}
	subjects = slices.Clone(subjects)
	for i, sub := range subjects {
		if !subjectRE.MatchString(sub) {
			return nil, fmt.Errorf("sis: subject %q: want letters and digits such as CS", sub)
		}
		subjects[i] = strings.ToUpper(sub)
	}
	if len(subjects) == 0 {
		list, err := s.Client.Subjects(ctx, term)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, sub := range list {
			code := strings.ToUpper(strings.TrimSpace(sub.Subject))
			if code != "" && !seen[code] {
				seen[code] = true
				subjects = append(subjects, code)
			}
		}
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	run := &syncRun{Syncer: s, term: term, syncedAt: now().UTC(), res: &Result{Term: term, Subjects: len(subjects)}}
	if len(subjects) == 0 {
		err := run.subject(ctx, "")
		return run.res, err
	}
	workers := s.Concurrency
	if workers <= 0 {
		workers = 4
	}
	work := make(chan string)
	var errs []error
	var wg sync.WaitGroup
	for range min(workers, len(subjects)) {
		wg.Go(func() {
			for sub := range work {
				if err := run.subject(ctx, sub); err != nil {
					run.mu.Lock()
					run.res.Failed = append(run.res.Failed, sub)
					errs = append(errs, err)
					run.mu.Unlock()
				}
			}
		})
	}
feed:
	for _, sub := range subjects {
		select {
		case work <- sub:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	err := errors.Join(errs...)
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("sis: sync of term %s: %w", term, ctx.Err())
	}
	return run.res, err
}

// syncRun is one sync in progress.
type syncRun struct {
	*Syncer
	term     string
	syncedAt time.Time
	mu       sync.Mutex // guards res and serialises Progress
	res      *Result
}

// subject pages through one subject (or the whole term for ""), storing each page.
func (r *syncRun) subject(ctx context.Context, subject string) error {
	maxPages := r.MaxPages
	if maxPages <= 0 {
		maxPages = 1000
	}
	for page := 1; ; page++ {
		if page > maxPages {
			return fmt.Errorf("sis: term %s subject %s: no empty page after %d pages", r.term, subject, maxPages)
		}
		sections, err := r.Client.Page(ctx, r.term, subject, page)
		if err != nil {
			return err
		}
		if len(sections) == 0 {
			return nil
		}
		var c Counts
		classes := make([]cg.Class, 0, len(sections))
		for i := range sections {
			if sections[i].Strm == "" {
				sections[i].Strm = FlexString(r.term)
			}
			class, err := sections[i].Class()
			if err != nil {
				c.Skipped++
				continue
			}
			classes = append(classes, class)
		}
		if len(classes) > 0 {
			c.Created, c.Updated, c.Unchanged, err = r.Store.UpsertClasses(ctx, classes, r.syncedAt)
			if err != nil {
				return fmt.Errorf("sis: store term %s subject %s page %d: %w", r.term, subject, page, err)
			}
			c.Sections = c.Created + c.Updated + c.Unchanged
		}
		r.mu.Lock()
		r.res.Pages++
		r.res.Add(c)
		if r.Progress != nil {
			r.Progress(Progress{Term: r.term, Subject: subject, Page: page, Counts: c, Total: r.res.Counts})
		}
		r.mu.Unlock()
	}
}

// Import stores the sections of a JSON array in the SIS format (as the class search returns
// them) in one transaction: all of them or, on error, none. Sections without a subject, catalog
// number, term or class number are skipped and counted. Input that is not such an array is
// ErrNotSections (see ParseSections).
func Import(ctx context.Context, store Store, r io.Reader, syncedAt time.Time) (Counts, error) {
	body, err := io.ReadAll(r)
	if err != nil {
		return Counts{}, fmt.Errorf("read classes: %w", err)
	}
	sections, err := ParseSections(body)
	if err != nil {
		return Counts{}, fmt.Errorf("classes file: %w", err)
	}
	return ImportSections(ctx, store, sections, syncedAt, 0, nil)
}

// Locker runs a function while holding a lock shared by every instance, or reports that
// another instance holds it. persistence.ClassStore implements it with an advisory lock.
type Locker interface {
	WithSyncLock(ctx context.Context, fn func(context.Context) error) (ran bool, err error)
}

// Periodic syncs terms on a timer, on one instance at a time: each round runs only if it gets
// the lock, and an instance that does not get it waits for the next round.
type Periodic struct {
	Syncer *Syncer
	Lock   Locker
	// Terms are synced in turn, each with every subject.
	Terms []string
	// Interval is the time between the starts of two rounds; the first round starts at once.
	Interval time.Duration
	Logger   *slog.Logger
	// OnRound, when set, is told after each round whether this instance ran it, and how.
	OnRound func(ran bool, results []*Result, err error)
}

// Run syncs until ctx ends, then returns nil. A round in progress is cancelled with ctx;
// what it stored stays stored.
func (p *Periodic) Run(ctx context.Context) error {
	if p.Interval <= 0 {
		return errors.New("sis: periodic sync needs a positive interval")
	}
	logger := p.Logger
	if logger == nil {
		logger = slog.Default()
	}
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		var results []*Result
		ran, err := p.Lock.WithSyncLock(ctx, func(ctx context.Context) error {
			var errs []error
			for _, term := range p.Terms {
				start := time.Now()
				res, err := p.Syncer.Sync(ctx, term, nil)
				if res != nil {
					results = append(results, res)
					logger.Info("sis sync", "term", term, "sections", res.Sections, "created", res.Created,
						"updated", res.Updated, "unchanged", res.Unchanged, "skipped", res.Skipped,
						"failed_subjects", res.Failed, "duration", time.Since(start).Round(time.Millisecond).String())
				}
				if err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		})
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			logger.Warn("sis sync failed; what was stored before stays", "err", err)
		} else if !ran {
			logger.Debug("sis sync skipped: another instance holds the lock")
		}
		if p.OnRound != nil {
			p.OnRound(ran, results, err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
