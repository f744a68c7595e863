package auth

import (
	"context"
	"log/slog"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// CleanupStore deletes what sign-in leaves behind. Each method runs only if no other instance
// is running the same job at that moment (ran is false when another one is), so that many
// instances can share one schedule.
type CleanupStore interface {
	// PurgeSignIns deletes magic links, WebSocket tickets and phone verifications that have
	// expired by now, and magic links used more than 7 days ago.
	PurgeSignIns(ctx context.Context, now time.Time) (deleted int64, ran bool, err error)
	// PurgeSessions deletes the sessions that have expired by now.
	PurgeSessions(ctx context.Context, now time.Time) (deleted int64, ran bool, err error)
	// PurgeNotifications deletes the notifications past their retention (30 days) at now.
	PurgeNotifications(ctx context.Context, now time.Time) (deleted int64, ran bool, err error)
}

// Janitor runs the cleanup jobs on a schedule: expired and used sign-in links, tickets and
// codes hourly; expired sessions and notifications past their retention daily.
type Janitor struct {
	Store CleanupStore
	// SignInsEvery and SessionsEvery are the periods of the two jobs. Defaults: 1 h and 24 h.
	SignInsEvery, SessionsEvery time.Duration
	// Logger reports each run. Default: slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default: time.Now.
	Now func() time.Time
}

func (j *Janitor) now() time.Time {
	if j.Now != nil {
		return j.Now()
	}
	return time.Now()
}

func (j *Janitor) logger() *slog.Logger {
	if j.Logger != nil {
		return j.Logger
	}
	return slog.Default()
}

// Run runs both jobs once at once and then on their schedules, until ctx ends.
func (j *Janitor) Run(ctx context.Context) {
	signIns, sessions := j.SignInsEvery, j.SessionsEvery
	if signIns <= 0 {
		signIns = time.Hour
	}
	if sessions <= 0 {
		sessions = 24 * time.Hour
	}
	j.RunSignIns(ctx)
	j.RunSessions(ctx)
	j.RunNotifications(ctx)
	t1, t2 := time.NewTicker(signIns), time.NewTicker(sessions)
	defer t1.Stop()
	defer t2.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t1.C:
			j.RunSignIns(ctx)
		case <-t2.C:
			j.RunSessions(ctx)
			j.RunNotifications(ctx)
		}
	}
}

// RunSignIns runs the hourly job once and reports whether this instance ran it.
func (j *Janitor) RunSignIns(ctx context.Context) bool {
	return j.run(ctx, "sign-ins", j.Store.PurgeSignIns)
}

// RunSessions runs the daily job once and reports whether this instance ran it.
func (j *Janitor) RunSessions(ctx context.Context) bool {
	return j.run(ctx, "sessions", j.Store.PurgeSessions)
}

// RunNotifications runs the daily notification purge once and reports whether this instance
// ran it.
func (j *Janitor) RunNotifications(ctx context.Context) bool {
	return j.run(ctx, "notifications", j.Store.PurgeNotifications)
}

func (j *Janitor) run(ctx context.Context, name string, job func(context.Context, time.Time) (int64, bool, error)) bool {
	n, ran, err := job(ctx, j.now())
	switch {
	case err != nil && ctx.Err() == nil:
		j.logger().Log(ctx, cg.LogLevel(err), "cleanup failed", "job", name, "err", err)
	case err != nil:
	case ran:
		j.logger().InfoContext(ctx, "cleanup done", "job", name, "deleted", n)
	default:
		j.logger().DebugContext(ctx, "cleanup skipped: another instance is running it", "job", name)
	}
	return ran && err == nil
}
