package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/api"
	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/hub"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/rooms"
)

// openDB opens the configured database, creating it (in development) and migrating it; report,
// when not nil, receives what it did.
func openDB(ctx context.Context, cfg *config.Config, report *persistence.OpenReport) (*persistence.DB, error) {
	db, err := persistence.Open(ctx, cfg.DatabaseURL, persistence.Options{Report: report}, true, true)
	if err != nil {
		return nil, err
	}
	if err := db.EnsureEmailDomain(ctx, cfg.AllowedEmailDomain); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// loadAndOpen reads the configuration and opens (creating and migrating) its database.
func loadAndOpen(ctx context.Context, getenv func(string) string) (*config.Config, *persistence.DB, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, nil, err
	}
	db, err := openDB(ctx, cfg, nil)
	if err != nil {
		return nil, nil, err
	}
	return cfg, db, nil
}

// runServe runs the server until ctx ends, then shuts down in the reverse order of start.
// onListen, when not nil, is told the address the server listens on.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, onListen func(addr string)) error {
	fs := newFlags("serve")
	if done, err := parseFlags(fs, args, stdout); done || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", strings.Join(fs.Args(), " "))
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	// The start-up says what it does, one line each: the secrets, the database, the mode, mail
	// and SMS, the sample classes, and the address to open.
	logger := newLogger(stderr, cfg.LogFormat)
	logSecrets(logger, cfg, getenv)
	var report persistence.OpenReport
	db, err := openDB(ctx, cfg, &report)
	if err != nil {
		return err
	}
	defer db.Close()
	logDatabase(logger, &report)
	if err := loadSampleClasses(ctx, cfg, db, logger); err != nil {
		return err
	}

	signer, err := auth.NewSigner(cfg.JWTKeys, nil)
	if err != nil {
		return err
	}
	users := persistence.NewUserStore(db)
	// Every request and every socket looks its session up; lookups that queue up while one is
	// under way go together (a restart brings thousands of sockets back at once).
	sessionStore := persistence.NewBatchingSessionStore(persistence.NewSessionStore(db), 2, 256)
	defer sessionStore.Close()
	sessions := &auth.Sessions{Store: sessionStore, Signer: signer, TTL: cfg.SessionTTL}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Redis, when configured, carries room events between instances and counts presence.
	redisClient, err := openRedis(cfg)
	if err != nil {
		return err
	}
	logMode(logger, cfg)
	if redisClient != nil {
		defer redisClient.Close()
	}
	roomBroker, presence, sockets, closeBroker := roomBroker(redisClient, cfg, logger, reg)
	defer closeBroker()

	// Rooms: the broker carries events between instances, the hub serves the sockets.
	// Publishes that queue up while a commit is under way are committed together; two
	// committers, so that a batch stuck on a lock or gone one by one does not hold every room of
	// the instance up (one was no faster: docs/benchmarks.md, (d)). Room-access checks (every
	// subscribe makes one) that queue up are looked up together.
	messageStore := persistence.NewMessageStore(db)
	messageStore.MembersCounted = cfg.AnonymityK // enough to tell a small room
	messages := persistence.NewBatchingStore(messageStore, 2, 4, 256)
	defer messages.Close()
	// History, threads, class search and details may come from a replica (DATABASE_READ_URL);
	// the hub's reads do not.
	reads, closeReads, err := readRouter(cfg, db, reg)
	if err != nil {
		return err
	}
	defer closeReads()
	roomService := &rooms.Service{
		Store:             roomStore(reads, messages),
		Broker:            roomBroker,
		Limiter:           rooms.NewRateLimiter(cfg.PublishRate, float64(cfg.PublishBurst)),
		FlagHideThreshold: cfg.FlagHideThreshold,
		AnonymityK:        cfg.AnonymityK,
		Logger:            logger,
	}
	// The erasure job: the messages of deleted accounts that asked for it, each at its time.
	eraser := &rooms.Eraser{Store: persistence.NewCleanupStore(db), Service: roomService, Logger: logger}
	eraseCtx, stopErasing := context.WithCancel(context.WithoutCancel(ctx))
	erasingDone := make(chan struct{})
	go func() {
		defer close(erasingDone)
		eraser.Run(eraseCtx)
	}()
	defer func() { stopErasing(); <-erasingDone }()
	wsTickets := &auth.Tickets{Store: persistence.NewTicketStore(db)}
	roomHub := hub.New(messages, roomBroker, roomService, wsAuthenticator(sessions, wsTickets), hub.Options{
		AllowedOrigins:    append([]string{originOf(cfg.PublicBaseURL)}, cfg.AllowedOrigins...),
		MaxSocketsPerUser: cfg.MaxSocketsPerUser,
		WriteDelay:        writeDelay(cfg.WriteDelay),
		DisableParking:    !cfg.HubPark,
		Presence:          presence,
		Sockets:           sockets,
		Logger:            logger,
		Registerer:        reg,
	})

	// Sign-in: mail, text messages, rate limits and the cleanup jobs.
	var linkOut io.Writer // nil: sign-in links are log records (JSON)
	if textLogs(stderr, cfg.LogFormat) {
		linkOut = stderr // on a line of their own, plainly
	}
	signIn, err := newSignIn(cfg, db, users, sessions, redisClient, logger, linkOut)
	if err != nil {
		return err
	}
	signIn.start()
	defer func() { _ = signIn.stop(context.Background()) }()
	// Tickets are counted per session with the sign-in limits' counters.
	wsTickets.Limiter = signIn.magicLinks.Limiter

	// The periodic SIS sync, when configured; it stops with the server.
	stopClassSync := startClassSync(ctx, cfg, db, logger)
	defer stopClassSync()

	srv := api.NewServer(api.Deps{
		Logger:            logger,
		DB:                db,
		Users:             users,
		Sessions:          sessions,
		MagicLinks:        signIn.magicLinks,
		Tickets:           wsTickets,
		Phones:            signIn.phones,
		PhoneStore:        signIn.phoneStore,
		TrustedProxies:    cfg.TrustedProxies,
		Rooms:             roomService,
		ClassReads:        classReads(reads),
		Revoker:           roomHub,
		Leaver:            roomHub,
		WebSocket:         roomHub,
		Ready:             redisReady(redisClient),
		Registerer:        reg,
		AllowedOrigins:    cfg.AllowedOrigins,
		PublicBaseURL:     cfg.PublicBaseURL,
		Quotas:            signIn.quotas,
		EnrollRate:        auth.Rate{Limit: cfg.EnrollPerDay, Window: 24 * time.Hour},
		FriendRequestRate: auth.Rate{Limit: cfg.FriendRequestsPerHour, Window: time.Hour},
		EraseSpread:       cfg.EraseSpread,
		ClientConfig:      clientConfig(cfg),
	})

	ln, err := listen(ctx, cfg.HTTPAddr, cfg.HTTPReusePort)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	httpServer := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
		ConnContext:       hub.ConnContext, // with hub.Listener: a socket's queued frames go out in one write
	}
	// Metrics, and the profiler when configured, are served apart from the public listener.
	stopMetrics, err := serveAside(ctx, "METRICS_ADDR", cfg.MetricsAddr, cfg.HTTPReusePort, metricsHandler(reg), logger)
	if err != nil {
		return err
	}
	defer stopMetrics()
	if cfg.DebugAddr != "" {
		stopDebug, err := serveAside(ctx, "DEBUG_ADDR", cfg.DebugAddr, false, debugHandler(), logger)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	logger.Info("listening on "+ln.Addr().String(), "public_base_url", cfg.PublicBaseURL)
	open := cfg.PublicBaseURL
	if open == "http://"+cfg.HTTPAddr { // PUBLIC_BASE_URL unset: the address as bound (port 0 chosen)
		open = "http://" + ln.Addr().String()
	}
	logger.Info("open " + open + " in a browser")
	if onListen != nil {
		onListen(ln.Addr().String())
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpServer.Serve(hub.Listener(ln)) }()

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// Sockets are hijacked connections, which http.Server.Shutdown does not wait for: the hub,
	// at the same time and with a budget of its own, flushes each and closes it with 1012.
	hubCtx, hubCancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer hubCancel()
	hubDone := make(chan error, 1)
	go func() { hubDone <- roomHub.Shutdown(hubCtx) }()
	if err := httpServer.Shutdown(shutdownCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	if err := <-hubDone; err != nil {
		logger.Warn("hub shutdown", "err", err)
	}
	if err := signIn.stop(shutdownCtx); err != nil {
		logger.Warn("mail left undelivered at shutdown", "err", err)
	}
	logger.Info("stopped")
	return nil
}

// runMigrate applies the migrations and exits.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("migrate")
	if done, err := parseFlags(fs, args, stdout); done || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("migrate takes no arguments")
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	var report persistence.OpenReport
	db, err := openDB(ctx, cfg, &report)
	if err != nil {
		return err
	}
	db.Close()
	fmt.Fprintf(stdout, "migrations applied: database %s at schema version %d (was %d)\n", report.Database, report.ToVersion, report.FromVersion)
	return nil
}

// runGrantModerator gives the user with the e-mail address the moderator role.
func runGrantModerator(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := newFlags("grant-moderator")
	if done, err := parseFlags(fs, args, stdout); done || err != nil {
		return err
	}
	if args = fs.Args(); len(args) != 1 {
		return fmt.Errorf("usage: grant-moderator EMAIL")
	}
	_, db, err := loadAndOpen(ctx, getenv)
	if err != nil {
		return err
	}
	defer db.Close()
	email := strings.ToLower(strings.TrimSpace(args[0]))
	if err := persistence.NewUserStore(db).SetRole(ctx, email, cg.RoleModerator); err != nil {
		return fmt.Errorf("%s: %s", email, cg.ErrorMessage(err))
	}
	fmt.Fprintf(stdout, "%s is now a moderator\n", email)
	return nil
}

// clientConfig is what the browser client learns of the server: where sign-in links go.
func clientConfig(cfg *config.Config) api.ClientConfig {
	c := api.ClientConfig{EmailDomain: cfg.AllowedEmailDomain, SignInLinks: api.SignInLinksEmail}
	if cfg.SMTPURL == "" {
		c.SignInLinks = api.SignInLinksServerOutput
	}
	return c
}

// originOf returns the scheme://host of a URL.
func originOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			return u[:i+3+j]
		}
	}
	return u
}

// serveAside serves h at addr, the address of the setting name, apart from the public
// listener, until the returned function is called. With reusePort, the next release may listen
// beside it during a restart, as on the public address.
func serveAside(ctx context.Context, name, addr string, reusePort bool, h http.Handler, logger *slog.Logger) (stop func(), err error) {
	ln, err := listen(ctx, addr, reusePort)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", name, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	logger.Info("listening aside", "setting", name, "addr", ln.Addr().String())
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

// metricsHandler serves the metrics of reg at /metrics.
func metricsHandler(reg prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux
}

// debugHandler serves the Go profiler at /debug/pprof/.
func debugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// writeDelay maps the configuration's "0: never wait" to the hub's.
func writeDelay(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
