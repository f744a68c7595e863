// Package persistence stores Common Grounds in PostgreSQL through pgx. It is the only package
// that speaks SQL, and the only one that turns pgx errors (no rows, unique violations, an
// unreachable server) into the domain's error codes.
package persistence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/migrations"
)

// Options tune the connection pool. The zero value gives the documented defaults.
type Options struct {
	// MaxConns is the pool size. Default: 4 × the number of CPUs, at least 8.
	MaxConns int32
	// ConnectTimeout bounds dialing a new connection. Default: 3 s.
	ConnectTimeout time.Duration
	// StatementTimeout bounds every statement on the server side. Default: 5 s.
	StatementTimeout time.Duration
	// Report, when not nil, is filled in with what Open did to the database.
	Report *OpenReport
}

// OpenReport is what Open did: for the start-up's log.
type OpenReport struct {
	// Database is the name of the database.
	Database string
	// Created is true when Open created the database.
	Created bool
	// Migrated is true when Open applied the migrations; FromVersion and ToVersion are then the
	// schema versions before and after (equal when there was nothing to apply).
	Migrated               bool
	FromVersion, ToVersion int32
}

// DB is the connection pool all stores share.
type DB struct {
	Pool *pgxpool.Pool
}

// Open connects to the database at url, creating the database first if it does not exist and
// create is true, and applies the migrations if migrate is true.
func Open(ctx context.Context, url string, opts Options, create, migrate bool) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 3 * time.Second
	}
	if opts.StatementTimeout == 0 {
		opts.StatementTimeout = 5 * time.Second
	}
	cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(opts.StatementTimeout.Milliseconds())
	cfg.ConnConfig.RuntimeParams["application_name"] = "commongrounds"
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	} else if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	report := opts.Report
	if report == nil {
		report = new(OpenReport)
	}
	report.Database = cfg.ConnConfig.Database
	if create {
		if report.Created, err = ensureDatabase(ctx, cfg.ConnConfig); err != nil {
			return nil, err
		}
	}
	if migrate {
		if report.FromVersion, report.ToVersion, err = migrateVersions(ctx, cfg.ConnConfig); err != nil {
			return nil, err
		}
		report.Migrated = true
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open pool: %w", err)
	}
	return &DB{Pool: pool}, nil
}

// Close closes every connection of the pool.
func (db *DB) Close() { db.Pool.Close() }

// Ping reports whether the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.Pool.Ping(ctx) }

// Migrate applies the embedded migrations to the database of cfg.
func Migrate(ctx context.Context, cfg *pgx.ConnConfig) error {
	_, _, err := migrateVersions(ctx, cfg)
	return err
}

// migrateVersions is Migrate, and returns the schema versions before and after.
func migrateVersions(ctx context.Context, cfg *pgx.ConnConfig) (from, to int32, err error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, 0, fmt.Errorf("connect for migrations: %w", err)
	}
	defer conn.Close(context.Background())
	return migrations.ApplyVersions(ctx, conn)
}

// ensureDatabase creates the database named in cfg when it does not exist, connecting to the
// maintenance database "postgres" of the same server to do so; created says whether it did.
func ensureDatabase(ctx context.Context, cfg *pgx.ConnConfig) (created bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err == nil {
		return false, conn.Close(ctx)
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "3D000" { // invalid_catalog_name
		return false, fmt.Errorf("connect to database: %w", err)
	}
	admin := cfg.Copy()
	admin.Database = "postgres"
	aconn, err := pgx.ConnectConfig(ctx, admin)
	if err != nil {
		return false, fmt.Errorf("connect to maintenance database: %w", err)
	}
	defer aconn.Close(context.Background())
	_, err = aconn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{cfg.Database}.Sanitize())
	if isCode(err, "42P04") { // duplicate_database: another instance won
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create database %s: %w", cfg.Database, err)
	}
	return true, nil
}

// isCode reports whether err is a Postgres error with the given SQLSTATE.
func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// constraintOf returns the constraint named in a Postgres error, or "".
func constraintOf(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.ConstraintName
	}
	return ""
}

// isUniqueViolation reports whether err is a unique violation (23505).
func isUniqueViolation(err error) bool { return isCode(err, "23505") }

// isUnavailable reports whether err means the database could not be reached or did not answer
// in time, so that the caller may retry: a dial or network error, a timeout, a server shutting
// down, or too many connections.
func isUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		// The connection broke: whether a statement in flight committed is unknown, which is
		// why publishing is idempotent by client_msg_id.
		return true
	}
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "57014", // query_canceled (statement timeout)
			pgErr.Code == "53300",                // too_many_connections
			strings.HasPrefix(pgErr.Code, "57P"), // admin shutdown, crash shutdown, cannot connect now
			strings.HasPrefix(pgErr.Code, "08"):  // connection exceptions
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// wrap turns an error of pgx into a domain error where one applies (unavailable), and wraps it
// with the operation's name otherwise.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var appErr *cg.Error
	if errors.As(err, &appErr) {
		return err
	}
	if isUnavailable(err) {
		return &cg.Error{Code: cg.EUNAVAILABLE, Message: "The database is unavailable; try again.", RetryAfterMs: 1000, Err: fmt.Errorf("%s: %w", op, err)}
	}
	// Text the database cannot hold (NUL, invalid UTF-8) is the client's error, not the
	// server's; the handlers refuse it earlier, and this keeps a path they miss from a 500.
	// 22021 character_not_in_repertoire, 22P05 untranslatable_character.
	if isCode(err, "22021") || isCode(err, "22P05") {
		return cg.Errorf(cg.EINVALID, "The request holds text that cannot be stored (NUL or invalid UTF-8).")
	}
	return fmt.Errorf("%s: %w", op, err)
}

// notFound returns err as a domain "not found" error with code and message when it is
// pgx.ErrNoRows, and wraps it otherwise.
func notFound(op string, err error, code, msg string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return cg.Errorf(code, "%s", msg)
	}
	return wrap(op, err)
}

// EnsureEmailDomain records domain as one that users may sign in from; the users table refers
// to it (see the migration).
func (db *DB) EnsureEmailDomain(ctx context.Context, domain string) error {
	_, err := db.Pool.Exec(ctx, `INSERT INTO email_domains (domain) VALUES ($1) ON CONFLICT DO NOTHING`, strings.ToLower(domain))
	return wrap("ensure email domain", err)
}
