package config

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPushDevelopment: without VAPID_KEYS in development, a key is generated into the secrets
// file, also into a file written before Web Push, and read back the next time.
func TestPushDevelopment(t *testing.T) {
	t.Parallel()
	secrets := filepath.Join(t.TempDir(), "secrets.json")
	env := map[string]string{"SECRETS_FILE": secrets}
	getenv := func(k string) string { return env[k] }
	c, err := Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Push.Enabled || len(c.Push.VAPIDKey) != 32 {
		t.Fatalf("Enabled=%v key of %d bytes, want on with a 32-byte key", c.Push.Enabled, len(c.Push.VAPIDKey))
	}
	again, err := Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Push.VAPIDKey, c.Push.VAPIDKey) {
		t.Fatal("the second start has another VAPID key, want the file's")
	}

	// A file without VAPID keys keeps its other secrets and gains the keys.
	old := filepath.Join(t.TempDir(), "secrets.json")
	key := "dev1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	if err := os.WriteFile(old, []byte(`{"jwt_keys":"`+key+`","phone_peppers":"1:`+key[5:]+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	env["SECRETS_FILE"] = old
	c, err = Load(getenv)
	if err != nil {
		t.Fatal(err)
	}
	var f secretsFile
	data, _ := os.ReadFile(old)
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	if f.JWTKeys != key || f.VAPIDKeys == "" || !c.Push.Enabled {
		t.Fatalf("file %s, Enabled=%v: want the JWT keys kept and VAPID keys added", data, c.Push.Enabled)
	}
	if k, err := ParseVAPIDKeys(f.VAPIDKeys); err != nil || !bytes.Equal(k, c.Push.VAPIDKey) {
		t.Fatalf("the file's keys %q (%v) are not the ones loaded", f.VAPIDKeys, err)
	}
}

func TestPushSettings(t *testing.T) {
	t.Parallel()
	key := "k:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	prod := map[string]string{"JWT_KEYS": key, "PHONE_PEPPERS": "1:" + key[2:]}
	pair := NewVAPIDKeys()
	_, private, _ := strings.Cut(pair, ":")
	otherPublic, _, _ := strings.Cut(NewVAPIDKeys(), ":")
	for _, tc := range []struct {
		name    string
		env     map[string]string
		enabled bool
		subject string
		hosts   []string
		caFile  string
		err     string
	}{
		{name: "ProductionWithoutKeys", env: map[string]string{}, subject: "mailto:no-reply@virginia.edu"},
		{name: "PrivateKey", env: map[string]string{"VAPID_KEYS": private}, enabled: true, subject: "mailto:no-reply@virginia.edu"},
		{name: "Pair", env: map[string]string{"VAPID_KEYS": pair, "PUBLIC_BASE_URL": "https://cg.example/"}, enabled: true, subject: "https://cg.example"},
		{name: "Off", env: map[string]string{"VAPID_KEYS": pair, "PUSH_ENABLED": "false"}, subject: "mailto:no-reply@virginia.edu"},
		{name: "Subject", env: map[string]string{"VAPID_KEYS": pair, "VAPID_SUBJECT": "mailto:ops@cg.example"}, enabled: true, subject: "mailto:ops@cg.example"},
		{name: "Hosts", env: map[string]string{"VAPID_KEYS": pair, "PUSH_ALLOWED_HOSTS": " FCM.googleapis.com, *.push.apple.com,"}, enabled: true,
			subject: "mailto:no-reply@virginia.edu", hosts: []string{"fcm.googleapis.com", "*.push.apple.com"}},
		{name: "CAFile", env: map[string]string{"VAPID_KEYS": pair, "PUSH_CA_FILE": "/etc/commongrounds/push-ca.pem"}, enabled: true,
			subject: "mailto:no-reply@virginia.edu", caFile: "/etc/commongrounds/push-ca.pem"},
		{name: "ErrEnabledWithoutKeys", env: map[string]string{"PUSH_ENABLED": "true"}, err: "PUSH_ENABLED=true needs VAPID_KEYS"},
		{name: "ErrNotBase64", env: map[string]string{"VAPID_KEYS": "not base64!"}, err: "not base64url"},
		{name: "ErrShortKey", env: map[string]string{"VAPID_KEYS": private[:20]}, err: "not a P-256 key"},
		{name: "ErrOtherPublicKey", env: map[string]string{"VAPID_KEYS": otherPublic + ":" + private}, err: "not the private key's"},
		{name: "ErrSubject", env: map[string]string{"VAPID_KEYS": pair, "VAPID_SUBJECT": "http://cg.example"}, err: "VAPID_SUBJECT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"SECRETS_FILE": filepath.Join(t.TempDir(), "secrets.json")}
			for k, v := range prod {
				env[k] = v
			}
			for k, v := range tc.env {
				env[k] = v
			}
			c, err := Load(func(k string) string { return env[k] })
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err=%v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Push.Enabled != tc.enabled || c.Push.Subject != tc.subject || strings.Join(c.Push.AllowedHosts, ",") != strings.Join(tc.hosts, ",") || c.Push.CAFile != tc.caFile {
				t.Fatalf("Enabled=%v Subject=%q AllowedHosts=%q CAFile=%q, want %v %q %q %q", c.Push.Enabled, c.Push.Subject, c.Push.AllowedHosts, c.Push.CAFile, tc.enabled, tc.subject, tc.hosts, tc.caFile)
			}
			if _, err := os.Stat(env["SECRETS_FILE"]); err == nil {
				t.Fatal("a secrets file was written in production")
			}
		})
	}
}
