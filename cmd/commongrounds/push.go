package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
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
	client, err := pushClient(cfg.Push.CAFile)
	if err != nil {
		return nil, err
	}
	svc, err := push.New(persistence.NewPushSubscriptionStore(db), push.Options{
		Client:       client,
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

// pushClient returns the client pushes go out with: nil (the push package's own) unless caFile
// names certificates to trust besides the system's.
func pushClient(caFile string) (*http.Client, error) {
	if caFile == "" {
		return nil, nil
	}
	pemCerts, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("PUSH_CA_FILE: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system certificates: only the file's
	}
	if !pool.AppendCertsFromPEM(pemCerts) {
		return nil, fmt.Errorf("PUSH_CA_FILE %s: no PEM certificate in it", caFile)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	t.MaxIdleConnsPerHost = 4 // as many as the push package's senders per host
	return &http.Client{Transport: t}, nil
}

// pushDeps returns the Web Push service as the API and the notifications take it: nil
// interfaces, not interfaces holding a nil pointer, when push is off.
func pushDeps(svc *push.Service) (api.WebPush, cg.Pusher) {
	if svc == nil {
		return nil, nil
	}
	return svc, svc
}
