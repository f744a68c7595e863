package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/commongrounds/commongrounds/auth/authtest"
	"github.com/commongrounds/commongrounds/internal/testenv"
)

// TestServeSignIn runs the server as configured from the environment, with a real SMTP server
// and SMS webhook, and goes through sign-in, phone verification and logout.
func TestServeSignIn(t *testing.T) {
	t.Parallel()
	smtpd := authtest.StartSMTP(t, authtest.SMTPOptions{TLS: "none", Username: "cg", Password: "pw"})
	hook := authtest.StartSMSWebhook(t)
	base := startServer(t, map[string]string{
		"SMTP_URL":                  smtpd.URL,
		"MAIL_FROM":                 "sign-in@virginia.edu",
		"SMS_WEBHOOK_URL":           hook.URL,
		"PUBLIC_BASE_URL":           "https://cg.example",
		"RATE_MAGIC_LINK_PER_EMAIL": "2",
	})
	post := func(path, token, body string) (*http.Response, map[string]any) {
		t.Helper()
		req, err := http.NewRequest("POST", base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		return resp, m
	}

	if resp, body := post("/api/v1/auth/magic-link", "", `{"email":"Serve1A@virginia.edu"}`); resp.StatusCode != 202 {
		t.Fatalf("magic-link: %d %v", resp.StatusCode, body)
	}
	msg := smtpd.Next(t)
	if msg.From != "sign-in@virginia.edu" || smtpd.Logins() != 1 {
		t.Fatalf("from %q, %d logins", msg.From, smtpd.Logins())
	}
	text, _, err := msg.Parts()
	if err != nil {
		t.Fatal(err)
	}
	link, token := authtest.Link(text)
	if !strings.HasPrefix(link, "https://cg.example/auth/verify?token=") {
		t.Fatalf("link %q", link)
	}
	resp, body := post("/api/v1/auth/verify", "", `{"token":"`+token+`"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("verify: %d %v", resp.StatusCode, body)
	}
	session := body["token"].(string)

	if resp, body := post("/api/v1/me/phone", session, `{"phone":"+1 434 555 0100"}`); resp.StatusCode != 202 {
		t.Fatalf("phone: %d %v", resp.StatusCode, body)
	}
	sms := hook.Next(t)
	if resp, body := post("/api/v1/me/phone/verify", session, `{"code":"`+sms.Code()+`"}`); resp.StatusCode != 200 {
		t.Fatalf("phone verify: %d %v", resp.StatusCode, body)
	}
	if resp, body := post("/api/v1/auth/ws-ticket", session, ""); resp.StatusCode != 200 || body["ticket"] == nil {
		t.Fatalf("ws-ticket: %d %v", resp.StatusCode, body)
	}
	// RATE_MAGIC_LINK_PER_EMAIL=2: the second request passes, the third is refused.
	if resp, _ := post("/api/v1/auth/magic-link", "", `{"email":"serve1a@virginia.edu"}`); resp.StatusCode != 202 {
		t.Fatalf("second magic-link: %d", resp.StatusCode)
	}
	if resp, body := post("/api/v1/auth/magic-link", "", `{"email":"serve1a@virginia.edu"}`); resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third magic-link: %d %v, want 429 with Retry-After", resp.StatusCode, body)
	}
	if resp, _ := post("/api/v1/auth/logout", session, ""); resp.StatusCode != 204 {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := post("/api/v1/auth/ws-ticket", session, ""); resp.StatusCode != 401 {
		t.Fatalf("after logout: %d, want 401", resp.StatusCode)
	}
}

// TestServeRefusesShortKeys: the server does not start with a JWT key or a phone pepper under
// 32 bytes.
func TestServeRefusesShortKeys(t *testing.T) {
	t.Parallel()
	short := base64.StdEncoding.EncodeToString(make([]byte, 31))
	good := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	for name, env := range map[string]map[string]string{
		"ErrShortJWTKey":      {"JWT_KEYS": "k1:" + short, "PHONE_PEPPERS": "1:" + good},
		"ErrShortPhonePepper": {"JWT_KEYS": "k1:" + good, "PHONE_PEPPERS": "1:" + short},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			env["DATABASE_URL"] = testenv.DatabaseURL("cgtest_never_created")
			env["HTTP_ADDR"] = "127.0.0.1:0"
			env["SECRETS_FILE"] = filepath.Join(t.TempDir(), "secrets.json")
			var logs bytes.Buffer
			err := runServe(context.Background(), nil, func(k string) string { return env[k] }, &logs, &logs, func(string) {
				t.Error("the server started listening")
			})
			if err == nil || !strings.Contains(err.Error(), "at least 32") {
				t.Fatalf("runServe=%v, want a refusal of the short key", err)
			}
		})
	}
}
