package auth_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/auth/authtest"
)

func TestWebhookSMS(t *testing.T) {
	t.Parallel()
	hook := authtest.StartSMSWebhook(t)
	s := &auth.WebhookSMS{URL: hook.URL}
	t.Run("OK", func(t *testing.T) {
		if err := s.SendSMS(context.Background(), "+14345550100", "Your code is 123456."); err != nil {
			t.Fatal(err)
		}
		if got := hook.Next(t); got.To != "+14345550100" || got.Code() != "123456" {
			t.Fatalf("webhook got %+v", got)
		}
	})
	t.Run("ErrWebhookFails", func(t *testing.T) {
		failing := authtest.StartSMSWebhook(t)
		failing.Fail(502)
		if err := (&auth.WebhookSMS{URL: failing.URL}).SendSMS(context.Background(), "+14345550100", "x"); err == nil {
			t.Fatal("SendSMS succeeded against a failing webhook")
		}
	})
}

func TestLogSMS(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := auth.LogSMS{Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	if err := s.SendSMS(context.Background(), "+14345550100", "Your code is 654321."); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "654321") || strings.Contains(buf.String(), "4345550100") {
		t.Fatalf("log %q: want the code and not the number", buf.String())
	}
}
