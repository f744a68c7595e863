package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/persistence"
)

// signIn holds the sign-in services of the server and the background work they need: the mail
// queue and the cleanup jobs. start runs the jobs; stop ends both.
type signIn struct {
	magicLinks *auth.MagicLinks
	phones     *auth.Phones
	quotas     *auth.Quotas
	phoneStore *persistence.PhoneStore
	mailQueue  *auth.MailQueue
	janitor    *auth.Janitor

	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

// newSignIn builds the sign-in services from the configuration: mail over SMTP_URL (without
// it, each sign-in link is printed to linkOut, or logged when linkOut is nil), text messages to
// SMS_WEBHOOK_URL (logged without it), rate limits in Redis when it is configured (in process
// otherwise).
func newSignIn(cfg *config.Config, db *persistence.DB, users *persistence.UserStore, sessions *auth.Sessions, rdb redis.UniversalClient, logger *slog.Logger, linkOut io.Writer) (*signIn, error) {
	var sender auth.MailSender = auth.LogSender{Logger: logger, Out: linkOut}
	if cfg.SMTPURL != "" {
		s, err := auth.NewSMTPSender(cfg.SMTPURL, cfg.MailFrom, auth.SMTPOptions{})
		if err != nil {
			return nil, err
		}
		logger.Info("mail: sign-in links are e-mailed through " + s.String())
		sender = s
	} else {
		logger.Info("mail: SMTP_URL is not set, so sign-in links are printed here, each on a line \"sign-in link for ADDRESS: URL\"")
	}
	var sms auth.SMSSender = auth.LogSMS{Logger: logger}
	if cfg.SMSWebhookURL != "" {
		sms = &auth.WebhookSMS{URL: cfg.SMSWebhookURL}
	}
	logSMS(logger, cfg)
	var limiter auth.Limiter = auth.NewMemoryLimiter(nil)
	if rdb != nil {
		limiter = auth.NewRedisLimiter(rdb, redisPrefix+"rl:")
	}
	hasher, err := auth.NewPhoneHasher(cfg.PhonePeppers)
	if err != nil {
		return nil, err
	}
	window := 15 * time.Minute
	s := &signIn{
		mailQueue:  auth.NewMailQueue(sender, auth.MailQueueOptions{Logger: logger}),
		phoneStore: persistence.NewPhoneStore(db),
		janitor:    &auth.Janitor{Store: persistence.NewCleanupStore(db), Logger: logger},
		done:       make(chan struct{}),
	}
	s.magicLinks = &auth.MagicLinks{
		Store:    persistence.NewMagicLinkStore(db),
		Users:    users,
		Sessions: sessions,
		Mailer:   s.mailQueue,
		Limiter:  limiter,
		Domain:   cfg.AllowedEmailDomain,
		BaseURL:  cfg.PublicBaseURL,
		PerEmail: auth.Rate{Limit: cfg.RateMagicLinkPerEmail, Window: window},
		PerIP:    auth.Rate{Limit: cfg.RateMagicLinkPerIP, Window: window},
	}
	// Quotas that must survive deleting and re-creating an account are kept per e-mail address,
	// under a hash keyed with the newest phone pepper (a secret the server already has).
	s.quotas = &auth.Quotas{Limiter: limiter, Users: users, Key: cfg.PhonePeppers[0].Secret}
	s.phones = &auth.Phones{Store: s.phoneStore, Hasher: hasher, SMS: sms, Limiter: limiter, Quotas: s.quotas}
	return s, nil
}

// start runs the cleanup jobs in the background until stop.
func (s *signIn) start() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		s.janitor.Run(ctx)
	}()
}

// stop ends the cleanup jobs and delivers the mail still queued, until ctx ends. It may be
// called more than once.
func (s *signIn) stop(ctx context.Context) error {
	var err error
	s.stopOnce.Do(func() {
		if s.cancel != nil {
			s.cancel()
			<-s.done
		}
		err = s.mailQueue.Close(ctx)
	})
	return err
}
