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

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/api"
	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/hub"
	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/rooms"
)

// openDB opens the configured database, creating it (in development) and migrating it.
func openDB(ctx context.Context, cfg *config.Config) (*persistence.DB, error) {
	db, err := persistence.Open(ctx, cfg.DatabaseURL, persistence.Options{}, true, true)
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
	db, err := openDB(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, db, nil
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// runServe runs the server until ctx ends, then shuts down in the reverse order of start.
// onListen, when not nil, is told the address the server listens on.
func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, onListen func(addr string)) error {
	if len(args) > 0 {
		return fmt.Errorf("serve takes no arguments, got %q", strings.Join(args, " "))
	}
	logger := newLogger(stderr)
	cfg, db, err := loadAndOpen(ctx, getenv)
	if err != nil {
		return err
	}
	defer db.Close()

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
	messages := persistence.NewBatchingStore(persistence.NewMessageStore(db), 2, 4, 256)
	defer messages.Close()
	// History and threads may come from a replica (DATABASE_READ_URL); the hub's reads do not.
	serviceStore, closeReads, err := roomStore(cfg, db, messages)
	if err != nil {
		return err
	}
	defer closeReads()
	roomService := &rooms.Service{
		Store:             serviceStore,
		Broker:            roomBroker,
		Limiter:           rooms.NewRateLimiter(cfg.PublishRate, float64(cfg.PublishBurst)),
		FlagHideThreshold: cfg.FlagHideThreshold,
		Logger:            logger,
	}
	wsTickets := &auth.Tickets{Store: persistence.NewTicketStore(db)}
	roomHub := hub.New(messages, roomBroker, roomService, wsAuthenticator(sessions, wsTickets), hub.Options{
		AllowedOrigins:    append([]string{originOf(cfg.PublicBaseURL)}, cfg.AllowedOrigins...),
		MaxSocketsPerUser: cfg.MaxSocketsPerUser,
		WriteDelay:        writeDelay(cfg.WriteDelay),
		Presence:          presence,
		Sockets:           sockets,
		Logger:            logger,
		Registerer:        reg,
	})

	// Sign-in: mail, text messages, rate limits and the cleanup jobs.
	signIn, err := newSignIn(cfg, db, users, sessions, redisClient, logger)
	if err != nil {
		return err
	}
	signIn.start()
	defer func() { _ = signIn.stop(context.Background()) }()

	// The periodic SIS sync, when configured; it stops with the server.
	stopClassSync := startClassSync(ctx, cfg, db, logger)
	defer stopClassSync()

	srv := api.NewServer(api.Deps{
		Logger:         logger,
		DB:             db,
		Users:          users,
		Sessions:       sessions,
		MagicLinks:     signIn.magicLinks,
		Tickets:        wsTickets,
		Phones:         signIn.phones,
		PhoneStore:     signIn.phoneStore,
		TrustedProxies: cfg.TrustedProxies,
		Rooms:          roomService,
		Revoker:        roomHub,
		Leaver:         roomHub,
		WebSocket:      roomHub,
		Ready:          redisReady(redisClient),
		Metrics:        reg,
		Registerer:     reg,
		AllowedOrigins: cfg.AllowedOrigins,
		PublicBaseURL:  cfg.PublicBaseURL,
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
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, logger)
		if err != nil {
			return err
		}
		defer stopDebug()
	}
	logger.Info("listening", "addr", ln.Addr().String(), "public_base_url", cfg.PublicBaseURL)
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
	if len(args) > 0 {
		return fmt.Errorf("migrate takes no arguments")
	}
	_, db, err := loadAndOpen(ctx, getenv)
	if err != nil {
		return err
	}
	db.Close()
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}

// runGrantModerator gives the user with the e-mail address the moderator role.
func runGrantModerator(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) != 1 {
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

// originOf returns the scheme://host of a URL.
func originOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			return u[:i+3+j]
		}
	}
	return u
}

// serveDebug serves the Go profiler at addr, apart from the public listener, until the
// returned function is called.
func serveDebug(addr string, logger *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on DEBUG_ADDR: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("profiler listening", "addr", ln.Addr().String())
	go func() { _ = srv.Serve(ln) }()
	return func() { _ = srv.Close() }, nil
}

// writeDelay maps the configuration's "0: never wait" to the hub's.
func writeDelay(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
