package main

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/api"
	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/push"
)

// startPush starts the Web Push service when push is on (nil when off), and says which.
func startPush(cfg *config.Config, db *persistence.DB, getenv func(string) string, logger *slog.Logger, reg prometheus.Registerer) (*push.Service, error) {
	if !cfg.Push.Enabled {
		why := "no VAPID_KEYS"
		if cfg.Push.VAPIDKey != nil {
			why = "PUSH_ENABLED=false"
		}
		logger.Info("Web Push: off (" + why + "); replies reach students only while a tab is open")
		return nil, nil
	}
	svc, err := push.New(persistence.NewPushSubscriptionStore(db), push.Options{
		PrivateKey:   cfg.Push.VAPIDKey,
		Subject:      cfg.Push.Subject,
		AllowedHosts: cfg.Push.AllowedHosts,
		Logger:       logger,
		Registerer:   reg,
	})
	if err != nil {
		return nil, fmt.Errorf("PUSH_ALLOWED_HOSTS, VAPID_SUBJECT: %w", err)
	}
	from := "the secrets file"
	if getenv("VAPID_KEYS") != "" {
		from = "VAPID_KEYS"
	}
	hosts := cfg.Push.AllowedHosts
	if hosts == nil {
		hosts = push.DefaultAllowedHosts
	}
	logger.Info("Web Push: on, VAPID key from "+from+", sending to "+strings.Join(hosts, ", "), "subject", cfg.Push.Subject)
	return svc, nil
}

// pushDeps returns the Web Push service as the API and the notifications take it: nil
// interfaces, not interfaces holding a nil pointer, when push is off.
func pushDeps(svc *push.Service) (api.WebPush, cg.Pusher) {
	if svc == nil {
		return nil, nil
	}
	return svc, svc
}
