package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"time"

	"github.com/lmittmann/tint"
	"golang.org/x/term"

	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/sis"
)

// textLogs reports whether the log on w is readable text: LOG_FORMAT=text, or LOG_FORMAT unset
// and w a terminal. Otherwise it is JSON, one object a line, for log collectors.
func textLogs(w io.Writer, format string) bool {
	switch format {
	case config.LogText:
		return true
	case config.LogJSON:
		return false
	}
	return isTerminal(w)
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newLogger returns the server's logger on w, in the format textLogs chooses: text lines such
// as "22:15:03 INF created database commongrounds" (coloured on a terminal), or JSON.
func newLogger(w io.Writer, format string) *slog.Logger {
	if textLogs(w, format) {
		return slog.New(tint.NewTextHandler(w, &tint.Options{Level: slog.LevelInfo, TimeFormat: "15:04:05", NoColor: !isTerminal(w)}))
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// logDatabase says what opening the database did: created or found, and the migrations.
func logDatabase(logger *slog.Logger, r *persistence.OpenReport) {
	if r.Created {
		logger.Info("created database " + r.Database)
	} else {
		logger.Info("found database " + r.Database)
	}
	if !r.Migrated {
		return
	}
	if r.FromVersion == r.ToVersion {
		logger.Info(fmt.Sprintf("schema up to date at version %d", r.ToVersion))
		return
	}
	logger.Info(fmt.Sprintf("applied %d migrations: schema version %d → %d", r.ToVersion-r.FromVersion, r.FromVersion, r.ToVersion))
}

// logSecrets says where the secrets come from.
func logSecrets(logger *slog.Logger, cfg *config.Config, getenv func(string) string) {
	switch {
	case getenv("JWT_KEYS") != "" && getenv("PHONE_PEPPERS") != "":
		logger.Info("secrets from JWT_KEYS and PHONE_PEPPERS")
	case cfg.SecretsGenerated:
		logger.Info("generated development secrets in " + cfg.SecretsFile + " (keep it out of git; production sets JWT_KEYS, PHONE_PEPPERS and VAPID_KEYS)")
	default:
		logger.Info("read development secrets from " + cfg.SecretsFile)
	}
}

// logSMS says how phone codes are sent.
func logSMS(logger *slog.Logger, cfg *config.Config) {
	if cfg.SMSWebhookURL == "" {
		logger.Info("SMS: SMS_WEBHOOK_URL is not set, so phone codes are logged here instead of sent")
		return
	}
	host := "the webhook"
	if u, err := url.Parse(cfg.SMSWebhookURL); err == nil {
		host = u.Host
	}
	logger.Info("SMS: phone codes are sent through the webhook at " + host)
}

// loadSampleClasses loads the sample catalogue into a database without classes, when
// SAMPLE_CLASSES allows it (the default in development) and no SIS is configured; on a
// database without classes that does not get it, it says how classes get in.
func loadSampleClasses(ctx context.Context, cfg *config.Config, db *persistence.DB, logger *slog.Logger) error {
	store := persistence.NewClassStore(db)
	n, err := store.CountClasses(ctx, "")
	if err != nil {
		return fmt.Errorf("sample classes: %w", err)
	}
	switch {
	case n > 0:
		return nil
	case cfg.SISBaseURL != "":
		logger.Info("no classes yet: they come from the SIS at SIS_BASE_URL (commongrounds sync-classes --term T, or SIS_SYNC_INTERVAL)")
		return nil
	case !cfg.SampleClasses:
		logger.Info("no classes yet: add them with commongrounds import-classes FILE|DIR (sample classes are off; SAMPLE_CLASSES=true loads them)")
		return nil
	}
	c, err := sis.ImportSample(ctx, store, time.Now())
	if err != nil {
		return fmt.Errorf("sample classes: %w", err)
	}
	logger.Info(fmt.Sprintf("loaded the sample catalogue: %d classes of term %s, made up for trying things out (SAMPLE_CLASSES=false turns this off)", c.Sections, sis.SampleTerm))
	return nil
}
