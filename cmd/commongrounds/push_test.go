package main

import (
	"encoding/pem"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/commongrounds/commongrounds/config"
)

// TestStartPush: the start-up says whether Web Push is on, where its key comes from and where it
// sends; a bad PUSH_ALLOWED_HOSTS stops the start.
func TestStartPush(t *testing.T) {
	t.Parallel()
	key, err := config.ParseVAPIDKeys(config.NewVAPIDKeys())
	if err != nil {
		t.Fatal(err)
	}
	on := config.Push{Enabled: true, VAPIDKey: key, Subject: "mailto:ops@example.edu"}
	for _, tc := range []struct {
		name  string
		push  config.Push
		env   map[string]string
		want  string
		isErr bool
	}{
		{name: "NoKey", want: "Web Push: off (no VAPID_KEYS)"},
		{name: "Off", push: config.Push{VAPIDKey: key}, want: "Web Push: off (PUSH_ENABLED=false)"},
		{name: "SecretsFile", push: on, want: "Web Push: on, VAPID key from the secrets file, sending to fcm.googleapis.com, updates.push.services.mozilla.com, *.push.apple.com, *.notify.windows.com"},
		{name: "Configured", push: config.Push{Enabled: true, VAPIDKey: key, Subject: on.Subject, AllowedHosts: []string{"push.example.edu"}},
			env: map[string]string{"VAPID_KEYS": "set"}, want: "Web Push: on, VAPID key from VAPID_KEYS, sending to push.example.edu"},
		{name: "ErrAllowedHosts", push: config.Push{Enabled: true, VAPIDKey: key, Subject: on.Subject, AllowedHosts: []string{"https://push.example.edu/"}}, isErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			cfg := &config.Config{Push: tc.push}
			svc, err := startPush(cfg, nil, func(k string) string { return tc.env[k] }, slog.New(slog.NewTextHandler(&out, nil)), prometheus.NewRegistry())
			if tc.isErr {
				if err == nil || !strings.Contains(err.Error(), "PUSH_ALLOWED_HOSTS") {
					t.Fatalf("err=%v, want one naming PUSH_ALLOWED_HOSTS", err)
				}
				return
			}
			if err != nil || !strings.Contains(out.String(), tc.want) || (svc != nil) != tc.push.Enabled {
				t.Fatalf("startPush: service %v, err %v, log %q; want %q", svc != nil, err, out.String(), tc.want)
			}
			defer svc.Close() // Close of a nil service does nothing
			webAPI, pusher := pushDeps(svc)
			if (webAPI == nil) != (svc == nil) || (pusher == nil) != (svc == nil) {
				t.Fatalf("pushDeps: %v %v for service %v, want nil interfaces exactly when off", webAPI, pusher, svc != nil)
			}
		})
	}
}

// TestPushClient: PUSH_CA_FILE adds its certificates to the system's for the pushes; a file that
// cannot be read or holds no certificate stops the start with an error naming the setting.
func TestPushClient(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if c, err := pushClient(""); c != nil || err != nil {
		t.Fatalf("pushClient(\"\") = %v, %v; want the push package's own client", c, err)
	}
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, file := range []string{filepath.Join(dir, "missing.pem"), notPEM} {
		if _, err := pushClient(file); err == nil || !strings.Contains(err.Error(), "PUSH_CA_FILE") {
			t.Fatalf("pushClient(%s): err=%v, want one naming PUSH_CA_FILE", file, err)
		}
	}
	// A push service with a certificate of its own is reached with the file, not without it.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) }))
	defer srv.Close()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := pushClient(caFile)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	resp, err := c.Post(srv.URL, "application/octet-stream", nil)
	if err != nil {
		t.Fatalf("with PUSH_CA_FILE: %v", err)
	}
	resp.Body.Close()
	if _, err := http.Post(srv.URL, "application/octet-stream", nil); err == nil {
		t.Fatal("the server's certificate is trusted without PUSH_CA_FILE")
	}
}
