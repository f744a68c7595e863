// Package authtest provides the outside world of sign-in for tests: a real SMTP server that
// keeps the messages it receives, an SMS webhook that keeps the texts it is sent, and helpers to
// read tokens and codes out of them. Both speak the real wire formats.
package authtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/http/httptest"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// wait bounds every wait for a message in tests that would otherwise hang.
const wait = 10 * time.Second

// Message is one e-mail as an SMTP server received it.
type Message struct {
	From string
	To   []string
	Data []byte
}

// Parts returns the decoded plain-text and HTML bodies of the message.
func (m *Message) Parts() (text, html string, err error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return "", "", fmt.Errorf("read message: %w", err)
	}
	var walk func(h header, body io.Reader) error
	walk = func(h header, body io.Reader) error {
		mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
		if err != nil {
			mt = "text/plain"
		}
		if strings.HasPrefix(mt, "multipart/") {
			mr := multipart.NewReader(body, params["boundary"])
			for {
				p, err := mr.NextRawPart()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("multipart: %w", err)
				}
				if err := walk(p.Header, p); err != nil {
					return err
				}
			}
		}
		var r io.Reader = body
		switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
		case "quoted-printable":
			r = quotedprintable.NewReader(body)
		case "base64":
			r = base64.NewDecoder(base64.StdEncoding, body)
		}
		b, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("decode %s part: %w", mt, err)
		}
		switch mt {
		case "text/plain":
			text += string(b)
		case "text/html":
			html += string(b)
		}
		return nil
	}
	if err := walk(msg.Header, msg.Body); err != nil {
		return "", "", err
	}
	return text, html, nil
}

// header is the accessor shared by mail.Header and textproto.MIMEHeader.
type header interface{ Get(string) string }

// Header returns the value of a top-level header of the message.
func (m *Message) Header(name string) string {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return ""
	}
	return msg.Header.Get(name)
}

var tokenRE = regexp.MustCompile(`/auth/verify\?token=([A-Za-z0-9_-]{43})`)

// Link returns the first sign-in link in s and its token, or "" and "".
func Link(s string) (link, token string) {
	loc := tokenRE.FindStringSubmatchIndex(s)
	if loc == nil {
		return "", ""
	}
	start := strings.LastIndexAny(s[:loc[0]], " \n\r\t\"'>") + 1
	return s[start:loc[1]], s[loc[2]:loc[3]]
}

// SMTPOptions configure an SMTP server.
type SMTPOptions struct {
	// TLS is "none" (default), "starttls" or "implicit".
	TLS string
	// Username and Password, when set, are required through AUTH PLAIN.
	Username, Password string
}

// SMTPServer is a real SMTP server on the loopback interface.
type SMTPServer struct {
	// URL is an SMTP_URL that reaches the server with its TLS mode and credentials.
	URL string
	// ClientTLS trusts the server's certificate.
	ClientTLS *tls.Config
	// Messages receives every message the server accepts.
	Messages chan *Message

	mu     sync.Mutex
	logins int // successful AUTH PLAIN logins; guarded by mu
}

// Logins returns the number of successful logins so far.
func (s *SMTPServer) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

// Next returns the next message received, failing the test if none arrives in time.
func (s *SMTPServer) Next(tb testing.TB) *Message {
	tb.Helper()
	select {
	case m := <-s.Messages:
		return m
	case <-time.After(wait):
		tb.Fatal("authtest: no e-mail arrived")
		return nil
	}
}

// StartSMTP starts an SMTP server that is shut down when the test ends.
func StartSMTP(tb testing.TB, opts SMTPOptions) *SMTPServer {
	tb.Helper()
	s := &SMTPServer{Messages: make(chan *Message, 1000)}
	be := smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{srv: s, opts: opts}, nil
	})
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = opts.TLS == "" || opts.TLS == "none"
	srv.ReadTimeout = wait
	srv.WriteTimeout = wait
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("authtest: listen: %v", err)
	}
	mode := opts.TLS
	if mode == "" {
		mode = "none"
	}
	if mode != "none" {
		serverTLS, clientTLS := selfSigned(tb)
		s.ClientTLS = clientTLS
		srv.TLSConfig = serverTLS
		if mode == "implicit" {
			ln = tls.NewListener(ln, serverTLS)
		}
	}
	u := url.URL{Scheme: "smtp", Host: ln.Addr().String(), RawQuery: "tls=" + mode}
	if opts.Username != "" {
		u.User = url.UserPassword(opts.Username, opts.Password)
	}
	s.URL = u.String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
		<-done
	})
	return s
}

// session is one SMTP conversation.
type session struct {
	srv    *SMTPServer
	opts   SMTPOptions
	authed bool
	msg    Message
}

func (s *session) AuthMechanisms() []string {
	if s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.opts.Username || password != s.opts.Password {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		s.srv.mu.Lock()
		s.srv.logins++
		s.srv.mu.Unlock()
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.opts.Username != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.msg = Message{From: from}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.msg.To = append(s.msg.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := s.msg
	m.Data = b
	s.srv.Messages <- &m
	return nil
}

func (s *session) Reset()        { s.msg = Message{} }
func (s *session) Logout() error { return nil }

// selfSigned returns a server TLS configuration with a fresh certificate for 127.0.0.1 and
// localhost, and a client configuration that trusts it.
func selfSigned(tb testing.TB) (server, client *tls.Config) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "authtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
	client = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return server, client
}

// SMS is one text message as the webhook received it.
type SMS struct {
	To   string `json:"to"`
	Body string `json:"body"`
}

// SMSWebhook is an HTTP endpoint in the format of SMS_WEBHOOK_URL that keeps what it receives.
type SMSWebhook struct {
	// URL is the webhook's address.
	URL string
	// Texts receives every text message posted.
	Texts chan SMS

	mu     sync.Mutex
	status int // guarded by mu
}

// Fail makes the webhook answer status (0: success) from now on.
func (w *SMSWebhook) Fail(status int) {
	w.mu.Lock()
	w.status = status
	w.mu.Unlock()
}

// Next returns the next text message, failing the test if none arrives in time.
func (w *SMSWebhook) Next(tb testing.TB) SMS {
	tb.Helper()
	select {
	case m := <-w.Texts:
		return m
	case <-time.After(wait):
		tb.Fatal("authtest: no text message arrived")
		return SMS{}
	}
}

var codeRE = regexp.MustCompile(`\b(\d{6})\b`)

// Code returns the 6-digit code of a text message, or "".
func (m SMS) Code() string {
	if c := codeRE.FindStringSubmatch(m.Body); c != nil {
		return c[1]
	}
	return ""
}

// StartSMSWebhook starts an SMS webhook that is closed when the test ends.
func StartSMSWebhook(tb testing.TB) *SMSWebhook {
	tb.Helper()
	w := &SMSWebhook{Texts: make(chan SMS, 1000)}
	srv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.mu.Lock()
		status := w.status
		w.mu.Unlock()
		if status != 0 {
			http.Error(rw, "failing on purpose", status)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			http.Error(rw, "want a JSON POST", http.StatusBadRequest)
			return
		}
		var m SMS
		dec := json.NewDecoder(r.Body)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&m); err != nil || m.To == "" || m.Body == "" {
			http.Error(rw, "want {\"to\",\"body\"}", http.StatusBadRequest)
			return
		}
		w.Texts <- m
		rw.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(srv.Close)
	w.URL = srv.URL
	return w
}
