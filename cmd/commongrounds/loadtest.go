package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/internal/loadgen"
	"github.com/commongrounds/commongrounds/persistence"
)

// loadtestTerm is the term and subject of the classes loadtest-seed creates, which keeps them
// apart from real ones.
const loadtestTerm = "LOAD"

// seedPlan is what loadtest-seed writes: users load00001@… to loadNNNNN@…, rooms LOAD 00001 to
// LOAD KKKKK, and the members of each room.
type seedPlan struct {
	users, rooms, members int
	ttl                   time.Duration
}

// member returns the user index of the j-th member of room r. The memberships of all rooms are
// laid end to end over the users, wrapping around, so every user is in rooms×members/users rooms
// (±1) and no room holds a user twice.
func (p seedPlan) member(r, j int) int { return (r*p.members + j) % p.users }

// runLoadtestSeed prepares a load test: it writes users, classes, enrollments, pseudonyms and
// sessions straight into the database and the session tokens into a file for cgload. It only
// adds rows; running it again reuses the users and classes and issues fresh sessions.
func runLoadtestSeed(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlags("loadtest-seed")
	var plan seedPlan
	fs.IntVar(&plan.users, "users", 0, "number of users (required)")
	fs.IntVar(&plan.rooms, "rooms", 1, "number of class rooms")
	fs.IntVar(&plan.members, "members-per-room", 0, "members of each room (default: users/rooms rounded up, so that every user is in a room)")
	fs.DurationVar(&plan.ttl, "ttl", 24*time.Hour, "lifetime of the sessions")
	out := fs.String("out", "", "file to write the tokens and rooms to (required)")
	yes := fs.Bool("yes", false, "allow writing to a database that is not on this machine")
	if done, err := parseFlags(fs, args, stdout); done || err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("loadtest-seed: unexpected argument %q", fs.Arg(0))
	}
	if plan.members == 0 && plan.rooms > 0 {
		plan.members = (plan.users + plan.rooms - 1) / plan.rooms
	}
	switch {
	case plan.users < 1 || plan.users > 1_000_000:
		return errors.New("loadtest-seed: --users must be from 1 to 1000000")
	case plan.rooms < 1 || plan.rooms > 99_999:
		return errors.New("loadtest-seed: --rooms must be from 1 to 99999")
	case plan.members < 1 || plan.members > plan.users:
		return errors.New("loadtest-seed: --members-per-room must be from 1 to --users")
	case plan.ttl <= 0:
		return errors.New("loadtest-seed: --ttl must be positive")
	case *out == "":
		return errors.New("loadtest-seed: --out FILE is required")
	}

	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	local, host, err := localDatabase(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	if !local && !*yes {
		return fmt.Errorf("loadtest-seed: the database is on %s, not this machine: add --yes to write load-test users to it", host)
	}
	signer, err := auth.NewSigner(cfg.JWTKeys, nil)
	if err != nil {
		return err
	}
	// A local development database is created and migrated as the server would; any other is
	// only written to.
	db, err := persistence.Open(ctx, cfg.DatabaseURL, persistence.Options{}, local, local)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.EnsureEmailDomain(ctx, cfg.AllowedEmailDomain); err != nil {
		return err
	}

	start := time.Now()
	seed, err := writeSeed(ctx, db, signer, plan, cfg.AllowedEmailDomain)
	if err != nil {
		return fmt.Errorf("loadtest-seed: %w", err)
	}
	data, err := json.Marshal(seed)
	if err != nil {
		return fmt.Errorf("loadtest-seed: encode: %w", err)
	}
	// The file holds live session tokens: only its owner may read it.
	if err := os.WriteFile(*out, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("loadtest-seed: %w", err)
	}
	fmt.Fprintf(stdout, "loadtest-seed: %d users (load%05d@%s…), %d rooms of %d members (term %s), %d enrollments, %d sessions valid for %s on %s, in %s; wrote %s\n",
		plan.users, 1, cfg.AllowedEmailDomain, plan.rooms, plan.members, loadtestTerm, plan.rooms*plan.members,
		plan.users, plan.ttl, host, time.Since(start).Round(time.Millisecond), *out)
	return nil
}

// localDatabase reports whether the database URL names this machine (a loopback address or a
// Unix socket), and the host it names.
func localDatabase(url string) (bool, string, error) {
	pc, err := pgx.ParseConfig(url)
	if err != nil {
		return false, "", fmt.Errorf("DATABASE_URL: %w", err)
	}
	h := pc.Host
	local := h == "localhost" || h == "::1" || strings.HasPrefix(h, "127.") || strings.HasPrefix(h, "/")
	return local, h, nil
}

// writeSeed writes the plan in one transaction and returns the users' tokens and rooms.
func writeSeed(ctx context.Context, db *persistence.DB, signer *auth.Signer, plan seedPlan, domain string) (*loadgen.Seed, error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	// Users, by e-mail: existing ones keep their ids.
	emails := make([]string, plan.users)
	for i := range emails {
		emails[i] = fmt.Sprintf("load%05d@%s", i+1, domain)
	}
	userIDs, err := upsertByKey(ctx, tx, "load_users", emails,
		`INSERT INTO users (id, email, email_verified) SELECT id, key, true FROM load_users ON CONFLICT (email) DO NOTHING`,
		`SELECT u.id, u.email FROM users u JOIN load_users l ON l.key = u.email`)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}

	// Classes, by catalog number.
	numbers := make([]string, plan.rooms)
	for i := range numbers {
		numbers[i] = fmt.Sprintf("%05d", i+1)
	}
	classIDs, err := upsertByKey(ctx, tx, "load_classes", numbers,
		`INSERT INTO classes (id, subject, catalog_number, term, title, class_section, component)
		 SELECT id, '`+loadtestTerm+`', key, '`+loadtestTerm+`', 'Load test room ' || key, '001', 'Lecture' FROM load_classes
		 ON CONFLICT (subject, catalog_number, term, sis_class_number) DO NOTHING`,
		`SELECT c.id, c.catalog_number FROM classes c JOIN load_classes l ON l.key = c.catalog_number
		  WHERE c.subject = '`+loadtestTerm+`' AND c.term = '`+loadtestTerm+`' AND c.sis_class_number IS NULL`)
	if err != nil {
		return nil, fmt.Errorf("classes: %w", err)
	}

	// Enrollments and pseudonyms (as if every member had already opened the room once). A
	// pseudonym is Anon_ followed by the member's index in the room under a random 24-bit mask of
	// the room: unique in the room, unrelated across rooms.
	seed := &loadgen.Seed{Users: make([]loadgen.SeedUser, plan.users), Rooms: make([]string, plan.rooms)}
	enroll := make([][]any, 0, plan.rooms*plan.members)
	for r := range plan.rooms {
		class := classIDs[numbers[r]]
		seed.Rooms[r] = class.String()
		mask := randomUint32() & 0xffffff
		for j := range plan.members {
			u := plan.member(r, j)
			anon := fmt.Sprintf("Anon_%06x", uint32(j)^mask)
			enroll = append(enroll, []any{userIDs[emails[u]], class, anon})
			seed.Users[u].Rooms = append(seed.Users[u].Rooms, class.String())
		}
	}
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE load_enroll (user_id uuid, class_id uuid, anon_id text) ON COMMIT DROP`); err != nil {
		return nil, fmt.Errorf("enrollments: %w", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"load_enroll"}, []string{"user_id", "class_id", "anon_id"}, pgx.CopyFromRows(enroll)); err != nil {
		return nil, fmt.Errorf("enrollments: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO user_classes (user_id, class_id) SELECT user_id, class_id FROM load_enroll ON CONFLICT DO NOTHING`); err != nil {
		return nil, fmt.Errorf("enrollments: %w", err)
	}
	// A conflict with a pseudonym of an earlier run leaves the member without one; the server
	// then draws one on first use.
	if _, err := tx.Exec(ctx, `INSERT INTO class_pseudonyms (class_id, user_id, anon_id) SELECT class_id, user_id, anon_id FROM load_enroll ON CONFLICT DO NOTHING`); err != nil {
		return nil, fmt.Errorf("pseudonyms: %w", err)
	}

	// Sessions, signed as auth.Sessions.Create signs them.
	expires := time.Now().Add(plan.ttl).UTC().Truncate(time.Second)
	sessions := make([][]any, plan.users)
	for i, email := range emails {
		sid, user := uuid.New(), userIDs[email]
		token, err := signer.Sign(sid.String(), user.String(), expires)
		if err != nil {
			return nil, err
		}
		seed.Users[i].Email = email
		seed.Users[i].Token = token
		if seed.Users[i].Rooms == nil {
			seed.Users[i].Rooms = []string{}
		}
		sessions[i] = []any{sid, user, auth.HashToken(token), expires}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"sessions"}, []string{"id", "user_id", "token_hash", "expires_at"}, pgx.CopyFromRows(sessions)); err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return seed, nil
}

// upsertByKey copies keys with fresh ids into a temporary table named table (columns id, key),
// runs insert to add the missing rows, and returns the id of every key as select reads it.
func upsertByKey(ctx context.Context, tx pgx.Tx, table string, keys []string, insert, sel string) (map[string]uuid.UUID, error) {
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE `+table+` (id uuid, key text) ON COMMIT DROP`); err != nil {
		return nil, err
	}
	rows := make([][]any, len(keys))
	for i, k := range keys {
		rows[i] = []any{uuid.New(), k}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{table}, []string{"id", "key"}, pgx.CopyFromRows(rows)); err != nil {
		return nil, err
	}
	if _, err := tx.Exec(ctx, insert); err != nil {
		return nil, err
	}
	res, err := tx.Query(ctx, sel)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]uuid.UUID, len(keys))
	var id uuid.UUID
	var key string
	if _, err := pgx.ForEachRow(res, []any{&id, &key}, func() error {
		ids[key] = id
		return nil
	}); err != nil {
		return nil, err
	}
	if len(ids) != len(keys) {
		return nil, fmt.Errorf("found %d of %d rows after insert", len(ids), len(keys))
	}
	return ids, nil
}

func randomUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint32(b[:])
}
