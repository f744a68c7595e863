package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"
)

// SMSSender sends a text message to a phone number in E.164 form.
type SMSSender interface {
	SendSMS(ctx context.Context, to, body string) error
}

// WebhookSMS sends text messages by POSTing {"to":"+14345550100","body":"..."} as JSON to a
// webhook (an SMS gateway, or a small adapter in front of one). Any 2xx reply is success.
type WebhookSMS struct {
	// URL receives the POSTs.
	URL string
	// Client sends them. Default: a client with a 10 s timeout.
	Client *http.Client
}

var _ SMSSender = (*WebhookSMS)(nil)

var defaultSMSClient = &http.Client{Timeout: 10 * time.Second}

// SendSMS implements SMSSender.
func (w *WebhookSMS) SendSMS(ctx context.Context, to, body string) error {
	payload, err := json.Marshal(struct {
		To   string `json:"to"`
		Body string `json:"body"`
	}{to, body})
	if err != nil {
		return fmt.Errorf("sms: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("sms: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	client := w.Client
	if client == nil {
		client = defaultSMSClient
	}
	resp, err := client.Do(req)
	if err != nil {
		// The error of the HTTP client names the URL, never the number.
		return fmt.Errorf("sms: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("sms: webhook answered %s", resp.Status)
	}
	return nil
}

// LogSMS "sends" text messages by logging their body: the development mode, without a
// webhook. The number is never logged.
type LogSMS struct {
	Logger *slog.Logger
}

var _ SMSSender = LogSMS{}

// SendSMS implements SMSSender.
func (l LogSMS) SendSMS(ctx context.Context, to, body string) error {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger.InfoContext(ctx, "text message not sent (no SMS_WEBHOOK_URL): logged instead", "body", body)
	return nil
}
