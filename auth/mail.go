package auth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"sync"
	"time"

	mail "github.com/wneessen/go-mail"

	cg "github.com/commongrounds/commongrounds"
)

// Mail is one e-mail with a plain-text and an HTML body.
type Mail struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// MailSender delivers one e-mail now.
type MailSender interface {
	SendMail(ctx context.Context, m Mail) error
}

// Mailer accepts e-mails for delivery later, off the request path.
type Mailer interface {
	// Enqueue accepts m for delivery without waiting for it; unavailable when it cannot take
	// more mail now.
	Enqueue(m Mail) error
}

// TLS modes of an SMTP connection.
const (
	SMTPTLSNone     = "none"     // plain text (development and local relays only)
	SMTPTLSStartTLS = "starttls" // STARTTLS, required
	SMTPTLSImplicit = "implicit" // TLS from the first byte (SMTPS)
)

// SMTPSender delivers mail over SMTP, one connection per message.
type SMTPSender struct {
	host     string
	port     int
	tlsMode  string
	username string
	password string
	from     string
	tls      *tls.Config
	timeout  time.Duration
}

var _ MailSender = (*SMTPSender)(nil)

// SMTPOptions tune an SMTPSender. The zero value gives the defaults.
type SMTPOptions struct {
	// TLSConfig verifies the server's certificate. Default: the system roots, for the host of the
	// URL.
	TLSConfig *tls.Config
	// Timeout bounds connecting to the server. Default: 15 s.
	Timeout time.Duration
}

// NewSMTPSender returns a sender for the server at rawURL, of the form
// smtp://user:pass@host:port?tls=none|starttls|implicit (smtps:// means tls=implicit). The
// default TLS mode is starttls; the default port is 587 for starttls, 465 for implicit and 25
// for none. Credentials are optional; over tls=none they are sent only to a server on the
// loopback interface. Mail is sent from the address from.
func NewSMTPSender(rawURL, from string, opts SMTPOptions) (*SMTPSender, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("SMTP_URL: %w", err)
	}
	s := &SMTPSender{from: from, timeout: opts.Timeout}
	switch u.Scheme {
	case "smtp":
		s.tlsMode = SMTPTLSStartTLS
	case "smtps":
		s.tlsMode = SMTPTLSImplicit
	default:
		return nil, fmt.Errorf("SMTP_URL: scheme %q, want smtp or smtps", u.Scheme)
	}
	if m := u.Query().Get("tls"); m != "" {
		switch m {
		case SMTPTLSNone, SMTPTLSStartTLS, SMTPTLSImplicit:
			s.tlsMode = m
		default:
			return nil, fmt.Errorf("SMTP_URL: tls=%q, want none, starttls or implicit", m)
		}
	}
	s.host = u.Hostname()
	if s.host == "" {
		return nil, errors.New("SMTP_URL: no host")
	}
	switch s.tlsMode {
	case SMTPTLSImplicit:
		s.port = 465
	case SMTPTLSStartTLS:
		s.port = 587
	default:
		s.port = 25
	}
	if p := u.Port(); p != "" {
		if s.port, err = strconv.Atoi(p); err != nil || s.port < 1 || s.port > 65535 {
			return nil, fmt.Errorf("SMTP_URL: port %q", p)
		}
	}
	if u.User != nil {
		s.username = u.User.Username()
		s.password, _ = u.User.Password()
	}
	if err := mail.NewMsg().From(from); err != nil {
		return nil, fmt.Errorf("MAIL_FROM %q: %w", from, err)
	}
	if opts.TLSConfig != nil {
		s.tls = opts.TLSConfig.Clone()
	} else {
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	if s.tls.ServerName == "" {
		s.tls.ServerName = s.host
	}
	if s.timeout == 0 {
		s.timeout = 15 * time.Second
	}
	return s, nil
}

// String describes the server without its credentials.
func (s *SMTPSender) String() string {
	return fmt.Sprintf("smtp://%s?tls=%s", net.JoinHostPort(s.host, strconv.Itoa(s.port)), s.tlsMode)
}

// SendMail implements MailSender.
func (s *SMTPSender) SendMail(ctx context.Context, m Mail) error {
	msg := mail.NewMsg()
	if err := msg.From(s.from); err != nil {
		return fmt.Errorf("mail from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("mail to: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageID()
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	}
	opts := []mail.Option{
		mail.WithPort(s.port),
		mail.WithTimeout(s.timeout),
		mail.WithTLSConfig(s.tls),
	}
	switch s.tlsMode {
	case SMTPTLSImplicit:
		opts = append(opts, mail.WithSSL())
	case SMTPTLSStartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	}
	if s.username != "" {
		// PLAIN; the library refuses it over an unencrypted connection except to the loopback.
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthPlain), mail.WithUsername(s.username), mail.WithPassword(s.password))
	}
	c, err := mail.NewClient(s.host, opts...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return fmt.Errorf("smtp send: %w", err)
	}
	return nil
}

// LogSender "delivers" mail by printing it: the development mode, without a mail server. A
// sign-in e-mail becomes one plain line that is hard to miss,
//
//	sign-in link for abc1de@virginia.edu: http://127.0.0.1:8080/auth/verify?token=…
//
// written to Out, or, when Out is nil, logged as the message of a record of its own. Mail
// without a link is logged whole.
type LogSender struct {
	Logger *slog.Logger
	// Out, when not nil, receives the line of each link in one Write; it must take concurrent
	// writes (os.Stderr does). Default: nil, the line goes to Logger.
	Out io.Writer
}

var _ MailSender = LogSender{}

// linkRE finds the link of a mail's text.
var linkRE = regexp.MustCompile(`https?://[^\s<>"]+`)

// SendMail implements MailSender.
func (l LogSender) SendMail(ctx context.Context, m Mail) error {
	logger := l.Logger
	if logger == nil {
		logger = slog.Default()
	}
	link := linkRE.FindString(m.Text)
	if link == "" {
		logger.InfoContext(ctx, "mail not sent (no SMTP_URL): logged instead", "to", m.To, "subject", m.Subject, "text", m.Text)
		return nil
	}
	line := "sign-in link for " + m.To + ": " + link
	if l.Out == nil {
		logger.InfoContext(ctx, line)
		return nil
	}
	if _, err := io.WriteString(l.Out, line+"\n"); err != nil {
		return fmt.Errorf("print sign-in link: %w", err)
	}
	return nil
}

// MailQueueOptions tune a MailQueue. The zero value gives the defaults.
type MailQueueOptions struct {
	// Size bounds the mail waiting for delivery. Default: 1000.
	Size int
	// Workers is the number of concurrent deliveries. Default: 2.
	Workers int
	// Attempts is the number of tries per message. Default: 3.
	Attempts int
	// Backoff is the wait after the first failed try; it doubles after each. Default: 2 s.
	Backoff time.Duration
	// SendTimeout bounds one try. Default: 30 s.
	SendTimeout time.Duration
	// Logger reports failed deliveries. Default: slog.Default().
	Logger *slog.Logger
}

// MailQueue delivers mail through a MailSender in background goroutines, so that the request
// that produced the mail neither waits for the mail server nor takes longer when it sends mail.
// It starts with NewMailQueue and stops with Close.
type MailQueue struct {
	sender MailSender
	opts   MailQueueOptions
	ctx    context.Context // cancelled when Close gives up waiting
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex
	ch     chan Mail // closed by Close; guarded by mu for sends
	closed bool      // guarded by mu
}

var _ Mailer = (*MailQueue)(nil)

// NewMailQueue starts the delivery goroutines of a queue in front of sender.
func NewMailQueue(sender MailSender, opts MailQueueOptions) *MailQueue {
	if opts.Size <= 0 {
		opts.Size = 1000
	}
	if opts.Workers <= 0 {
		opts.Workers = 2
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 3
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 2 * time.Second
	}
	if opts.SendTimeout <= 0 {
		opts.SendTimeout = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	q := &MailQueue{sender: sender, opts: opts, ctx: ctx, cancel: cancel, ch: make(chan Mail, opts.Size)}
	for range opts.Workers {
		q.wg.Add(1)
		go q.work()
	}
	return q
}

// Enqueue implements Mailer. It never blocks: a full or closed queue gives unavailable.
func (q *MailQueue) Enqueue(m Mail) error {
	q.mu.RLock()
	defer q.mu.RUnlock()
	if q.closed {
		return &cg.Error{Code: cg.EUNAVAILABLE, Message: "The server is shutting down; try again.", RetryAfterMs: 5000}
	}
	select {
	case q.ch <- m:
		return nil
	default:
		q.opts.Logger.Warn("mail queue full: message dropped")
		return &cg.Error{Code: cg.EUNAVAILABLE, Message: "Too much mail is waiting; try again shortly.", RetryAfterMs: 30000}
	}
}

// Close stops taking mail and delivers what is queued, until ctx ends; then it abandons the
// rest (logging how much) and returns once every delivery goroutine has stopped.
func (q *MailQueue) Close(ctx context.Context) error {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.ch)
	}
	q.mu.Unlock()
	done := make(chan struct{})
	go func() {
		q.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-done
		return fmt.Errorf("mail queue: %w", ctx.Err())
	}
}

// work delivers queued mail until the queue is closed and empty.
func (q *MailQueue) work() {
	defer q.wg.Done()
	for m := range q.ch {
		if q.ctx.Err() != nil {
			q.opts.Logger.Warn("mail abandoned at shutdown")
			continue
		}
		q.deliver(m)
	}
}

// deliver tries to send m up to Attempts times, waiting Backoff (doubling) between tries.
func (q *MailQueue) deliver(m Mail) {
	backoff := q.opts.Backoff
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(q.ctx, q.opts.SendTimeout)
		err := q.sender.SendMail(ctx, m)
		cancel()
		if err == nil {
			return
		}
		if attempt >= q.opts.Attempts || q.ctx.Err() != nil {
			// The recipient's address is personal data: the log names only the failure.
			q.opts.Logger.Error("mail not delivered", "attempts", attempt, "err", err)
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-q.ctx.Done():
			t.Stop()
		}
		backoff *= 2
	}
}
