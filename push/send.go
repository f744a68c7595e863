package push

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	webpush "github.com/SherClockHolmes/webpush-go"

	cg "github.com/commongrounds/commongrounds"
)

// payload is what a push carries: the fields of the notification frame, and nothing that names
// the replier beyond their pseudonym in the class or the recipient at all.
type payload struct {
	Room      cg.ClassID   `json:"room"`
	ThreadID  cg.MessageID `json:"thread_id"`
	MessageID cg.MessageID `json:"message_id"`
	AnonID    cg.AnonID    `json:"anon_id"`
	Excerpt   string       `json:"excerpt"`
	CreatedAt time.Time    `json:"created_at"`
}

// encodePayload returns n as the JSON of a push, its excerpt shortened (ending in "…") to the
// longest prefix with which the whole fits one record.
func encodePayload(n *cg.Notification) []byte {
	p := payload{Room: n.Room, ThreadID: n.ThreadID, MessageID: n.MessageID, AnonID: n.AnonID, Excerpt: n.Excerpt, CreatedAt: n.CreatedAt}
	if b := marshalPayload(&p); len(b) <= maxPayload {
		return b
	}
	full := n.Excerpt
	prefix := func(i int) string {
		for i > 0 && i < len(full) && !utf8.RuneStart(full[i]) {
			i--
		}
		return full[:i]
	}
	lo, hi := 0, len(full) // the longest prefix that fits is at least lo bytes, less than hi
	for lo < hi-1 {
		mid := (lo + hi) / 2
		p.Excerpt = prefix(mid) + "…"
		if len(marshalPayload(&p)) <= maxPayload {
			lo = mid
		} else {
			hi = mid
		}
	}
	p.Excerpt = prefix(lo) + "…"
	return marshalPayload(&p)
}

// marshalPayload encodes p without HTML escapes, which would take six bytes for one.
func marshalPayload(p *payload) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p)
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// topicOf returns the Topic header of a thread's pushes (RFC 8030 5.4: at most 32 characters
// of the base64url alphabet): a push service that still holds an undelivered push of the thread
// for a device replaces it with the newer one.
func topicOf(thread cg.MessageID) string {
	t := strings.ReplaceAll(string(thread), "-", "")
	if len(t) == 32 && strings.Trim(strings.ToLower(t), "0123456789abcdef") == "" {
		return strings.ToLower(t)
	}
	sum := sha256.Sum256([]byte(thread))
	return base64.RawURLEncoding.EncodeToString(sum[:])[:32]
}

// send makes one try of d and decides what follows: done, removed, retried or given up.
func (s *Service) send(d *delivery) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.RequestTimeout)
	defer cancel()
	// The library appends its padding to the message it is given, in place when the slice has
	// room: each try gets a copy of its own, as deliveries of one notification share payload.
	message := append([]byte(nil), d.payload...)
	resp, err := webpush.SendNotificationWithContext(ctx, message, &webpush.Subscription{
		Endpoint: d.sub.Endpoint,
		Keys: webpush.Keys{
			P256dh: base64.RawURLEncoding.EncodeToString(d.sub.P256dh),
			Auth:   base64.RawURLEncoding.EncodeToString(d.sub.Auth),
		},
	}, &webpush.Options{
		HTTPClient:      s.client,
		RecordSize:      recordSize,
		Subscriber:      s.subscriber,
		Topic:           d.topic,
		TTL:             int(s.opts.TTL / time.Second),
		Urgency:         webpush.UrgencyNormal,
		VAPIDPublicKey:  s.publicKey,
		VAPIDPrivateKey: s.privateKey,
	})
	if err != nil {
		if s.ctx.Err() != nil {
			return // closing
		}
		s.retry(d, 0, "error", err.Error())
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch st := resp.StatusCode; {
	case st >= 200 && st < 300:
		s.metrics.sent.Inc()
		s.event(event{Kind: evSent, Endpoint: d.sub.Endpoint, Status: st})
	case st == http.StatusNotFound || st == http.StatusGone:
		// The subscription has expired or the browser unsubscribed.
		s.remove(d.sub, st)
	case st == http.StatusTooManyRequests || st >= 500:
		s.retry(d, retryAfter(resp.Header.Get("Retry-After"), time.Now()), "status", strconv.Itoa(st))
	default:
		// 400, 401, 403 (a VAPID key or subject the push service refuses), 413: trying again
		// would get the same answer.
		s.logger.Warn("push: refused", "host", hostOf(d.sub.Endpoint), "status", st)
		s.metrics.failed.Inc()
		s.event(event{Kind: evFailed, Endpoint: d.sub.Endpoint, Status: st})
	}
}

// remove deletes a subscription that has ended; status is the push service's answer that said
// so, 0 when its expirationTime did.
func (s *Service) remove(sub *cg.PushSubscription, status int) {
	ctx, cancel := context.WithTimeout(s.ctx, s.opts.RequestTimeout)
	err := s.store.RemovePushSubscription(ctx, sub.Endpoint, sub.P256dh)
	cancel()
	if err != nil {
		s.logger.Warn("push: remove subscription", "host", hostOf(sub.Endpoint), "err", err)
	}
	s.metrics.removed.Inc()
	s.event(event{Kind: evRemoved, Endpoint: sub.Endpoint, Status: status})
}

// retry tries d again after the backoff of its attempt, and never before wait (a
// Retry-After), or gives up after MaxAttempts or when wait is longer than RetryMax.
func (s *Service) retry(d *delivery, wait time.Duration, what, why string) {
	if d.attempt >= s.opts.MaxAttempts || wait > s.opts.RetryMax {
		s.logger.Warn("push: given up", "host", hostOf(d.sub.Endpoint), "attempts", d.attempt, what, why)
		s.metrics.failed.Inc()
		s.event(event{Kind: evFailed, Endpoint: d.sub.Endpoint})
		return
	}
	backoff := min(s.opts.RetryBase<<(d.attempt-1), s.opts.RetryMax)
	delay := backoff/2 + rand.N(backoff/2+1)
	delay = max(delay, wait)
	d.attempt++
	s.metrics.retries.Inc()
	s.event(event{Kind: evRetry, Endpoint: d.sub.Endpoint, Delay: delay})
	s.after(delay, func() { s.toLane(d) })
}

// retryAfter parses a Retry-After header (seconds, or an HTTP date) at now; 0 when absent or
// unreadable.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(strings.TrimSpace(h), 10, 64); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(min(secs, 1<<32)) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// hostOf returns the host of an endpoint for the logs: the endpoint itself is a capability and
// is not logged.
func hostOf(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return "?"
	}
	return u.Host
}
