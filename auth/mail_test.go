package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/auth/authtest"
)

func TestSMTPSender(t *testing.T) {
	t.Parallel()
	msg := auth.Mail{To: "abc1de@virginia.edu", Subject: "Hello there", Text: "plain body line", HTML: "<p>html body line</p>"}
	for _, c := range []struct {
		name string
		opts authtest.SMTPOptions
	}{
		{"OKNoTLSWithAuth", authtest.SMTPOptions{TLS: "none", Username: "mailer", Password: "s3cret"}},
		{"OKNoTLS", authtest.SMTPOptions{TLS: "none"}},
		{"OKStartTLS", authtest.SMTPOptions{TLS: "starttls", Username: "mailer", Password: "s3cret"}},
		{"OKImplicitTLS", authtest.SMTPOptions{TLS: "implicit", Username: "mailer", Password: "s3cret"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			srv := authtest.StartSMTP(t, c.opts)
			s, err := auth.NewSMTPSender(srv.URL, "no-reply@virginia.edu", auth.SMTPOptions{TLSConfig: srv.ClientTLS})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SendMail(context.Background(), msg); err != nil {
				t.Fatalf("SendMail: %v", err)
			}
			got := srv.Next(t)
			if got.From != "no-reply@virginia.edu" || len(got.To) != 1 || got.To[0] != "abc1de@virginia.edu" {
				t.Fatalf("envelope from %q to %v", got.From, got.To)
			}
			if sub := got.Header("Subject"); sub != "Hello there" {
				t.Fatalf("Subject=%q", sub)
			}
			text, html, err := got.Parts()
			if err != nil || !strings.Contains(text, "plain body line") || !strings.Contains(html, "<p>html body line</p>") {
				t.Fatalf("parts text=%q html=%q err=%v", text, html, err)
			}
			if wantLogins := map[bool]int{true: 1, false: 0}[c.opts.Username != ""]; srv.Logins() != wantLogins {
				t.Fatalf("logins=%d, want %d", srv.Logins(), wantLogins)
			}
			if strings.Contains(s.String(), "s3cret") {
				t.Fatalf("String()=%q shows the password", s.String())
			}
		})
	}
	t.Run("ErrWrongPassword", func(t *testing.T) {
		t.Parallel()
		srv := authtest.StartSMTP(t, authtest.SMTPOptions{Username: "mailer", Password: "right"})
		s, err := auth.NewSMTPSender(strings.Replace(srv.URL, "right", "wrong", 1), "no-reply@virginia.edu", auth.SMTPOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SendMail(context.Background(), msg); err == nil {
			t.Fatal("SendMail with a wrong password succeeded")
		}
	})
	t.Run("ErrStartTLSUnavailable", func(t *testing.T) {
		t.Parallel()
		// A server (or a man in the middle) that does not offer STARTTLS gets no mail.
		srv := authtest.StartSMTP(t, authtest.SMTPOptions{TLS: "none"})
		s, err := auth.NewSMTPSender(strings.Replace(srv.URL, "tls=none", "tls=starttls", 1), "no-reply@virginia.edu", auth.SMTPOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SendMail(context.Background(), msg); err == nil {
			t.Fatal("SendMail without STARTTLS succeeded")
		}
		select {
		case m := <-srv.Messages:
			t.Fatalf("a message went out in clear: %q", m.Data)
		default:
		}
	})
	t.Run("ErrUntrustedCertificate", func(t *testing.T) {
		t.Parallel()
		srv := authtest.StartSMTP(t, authtest.SMTPOptions{TLS: "implicit"})
		s, err := auth.NewSMTPSender(srv.URL, "no-reply@virginia.edu", auth.SMTPOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.SendMail(context.Background(), msg); err == nil {
			t.Fatal("SendMail to a server with an untrusted certificate succeeded")
		}
	})
}

func TestNewSMTPSender(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ url, want string }{
		{"smtp://mail.example:2525?tls=none", "smtp://mail.example:2525?tls=none"},
		{"smtp://mail.example", "smtp://mail.example:587?tls=starttls"},
		{"smtp://u:p@mail.example?tls=implicit", "smtp://mail.example:465?tls=implicit"},
		{"smtps://mail.example", "smtp://mail.example:465?tls=implicit"},
		{"smtp://mail.example?tls=none", "smtp://mail.example:25?tls=none"},
	} {
		t.Run("OK_"+c.url, func(t *testing.T) {
			s, err := auth.NewSMTPSender(c.url, "no-reply@virginia.edu", auth.SMTPOptions{})
			if err != nil || s.String() != c.want {
				t.Fatalf("NewSMTPSender(%q)=%v,%v, want %s", c.url, s, err, c.want)
			}
		})
	}
	for _, c := range []struct{ url, from string }{
		{"http://mail.example", "a@b.c"},
		{"smtp://mail.example?tls=maybe", "a@b.c"},
		{"smtp://", "a@b.c"},
		{"smtp://mail.example:99999", "a@b.c"},
		{"smtp://mail.example:x", "a@b.c"},
		{"smtp://mail.example", "not an address"},
		{"::", "a@b.c"},
	} {
		t.Run("ErrInvalid_"+c.url+"_"+c.from, func(t *testing.T) {
			if _, err := auth.NewSMTPSender(c.url, c.from, auth.SMTPOptions{}); err == nil {
				t.Fatalf("NewSMTPSender(%q, %q) accepted", c.url, c.from)
			}
		})
	}
}

// scriptedSender is a MailSender whose answers the test controls.
type scriptedSender struct {
	mu      sync.Mutex
	fail    int         // fail this many sends first; guarded by mu
	sent    []auth.Mail // guarded by mu
	started chan string // receives each subject as its send starts, if not nil
	release chan struct{}
	done    chan struct{} // receives after each successful send
}

func (s *scriptedSender) SendMail(ctx context.Context, m auth.Mail) error {
	if s.started != nil {
		s.started <- m.Subject
	}
	if s.release != nil {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return errors.New("451 try again later")
	}
	s.sent = append(s.sent, m)
	if s.done != nil {
		s.done <- struct{}{}
	}
	return nil
}

func (s *scriptedSender) subjects() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.sent {
		out = append(out, m.Subject)
	}
	return out
}

func TestMailQueue(t *testing.T) {
	t.Parallel()
	t.Run("OKRetried", func(t *testing.T) {
		t.Parallel()
		s := &scriptedSender{fail: 2, done: make(chan struct{}, 1)}
		q := auth.NewMailQueue(s, auth.MailQueueOptions{Backoff: time.Millisecond, Attempts: 3})
		if err := q.Enqueue(auth.Mail{To: "a@virginia.edu", Subject: "one"}); err != nil {
			t.Fatal(err)
		}
		<-s.done
		if err := q.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := s.subjects(); len(got) != 1 || got[0] != "one" {
			t.Fatalf("sent %v, want [one] after two failures", got)
		}
	})
	t.Run("ErrFullThenDrainedOnClose", func(t *testing.T) {
		t.Parallel()
		s := &scriptedSender{started: make(chan string, 10), release: make(chan struct{})}
		q := auth.NewMailQueue(s, auth.MailQueueOptions{Workers: 1, Size: 1})
		if err := q.Enqueue(auth.Mail{Subject: "first"}); err != nil {
			t.Fatal(err)
		}
		<-s.started // the worker holds "first"; the queue is empty again
		if err := q.Enqueue(auth.Mail{Subject: "second"}); err != nil {
			t.Fatal(err)
		}
		if err := q.Enqueue(auth.Mail{Subject: "third"}); cg.ErrorCode(err) != cg.EUNAVAILABLE {
			t.Fatalf("Enqueue on a full queue: code=%q, want unavailable", cg.ErrorCode(err))
		}
		close(s.release)
		if err := q.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := s.subjects(); len(got) != 2 || got[0] != "first" || got[1] != "second" {
			t.Fatalf("sent %v, want [first second]", got)
		}
		if err := q.Enqueue(auth.Mail{Subject: "late"}); cg.ErrorCode(err) != cg.EUNAVAILABLE {
			t.Fatalf("Enqueue after Close: code=%q, want unavailable", cg.ErrorCode(err))
		}
	})
	t.Run("ErrAbandonedWhenCloseTimesOut", func(t *testing.T) {
		t.Parallel()
		s := &scriptedSender{started: make(chan string, 10), release: make(chan struct{})}
		q := auth.NewMailQueue(s, auth.MailQueueOptions{Workers: 1, Size: 5, Attempts: 1})
		_ = q.Enqueue(auth.Mail{Subject: "stuck"})
		<-s.started
		_ = q.Enqueue(auth.Mail{Subject: "waiting"})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := q.Close(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Close=%v, want context.Canceled", err)
		}
		if got := s.subjects(); len(got) != 0 {
			t.Fatalf("sent %v after giving up, want nothing", got)
		}
	})
}

// TestLogSender: a mail with a link becomes one plain line on Out, or a log record whose
// message is that line; a mail without a link is logged whole.
func TestLogSender(t *testing.T) {
	t.Parallel()
	link := "http://127.0.0.1:8080/auth/verify?token=AbC-123_x%3D"
	m := auth.Mail{To: "abc1de@virginia.edu", Subject: "Sign in", Text: "Open this link to sign in:\n\n" + link + "\n\nThe link works once."}
	want := "sign-in link for abc1de@virginia.edu: " + link
	t.Run("Out", func(t *testing.T) {
		var out, logs strings.Builder
		s := auth.LogSender{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Out: &out}
		if err := s.SendMail(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		if out.String() != want+"\n" || logs.Len() != 0 {
			t.Fatalf("Out=%q logs=%q, want %q and no log", out.String(), logs.String(), want+"\n")
		}
	})
	t.Run("Logger", func(t *testing.T) {
		var logs strings.Builder
		s := auth.LogSender{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}
		if err := s.SendMail(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(logs.String()), &rec); err != nil || rec["msg"] != want {
			t.Fatalf("log %q (%v), want a record with msg %q", logs.String(), err, want)
		}
	})
	t.Run("NoLink", func(t *testing.T) {
		var out, logs strings.Builder
		s := auth.LogSender{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Out: &out}
		if err := s.SendMail(context.Background(), auth.Mail{To: "abc1de@virginia.edu", Subject: "News", Text: "no link here"}); err != nil {
			t.Fatal(err)
		}
		if out.Len() != 0 || !strings.Contains(logs.String(), "no link here") {
			t.Fatalf("Out=%q logs=%q, want the whole mail logged", out.String(), logs.String())
		}
	})
}
