// Package migrations holds the database schema as embedded SQL files and applies them.
//
// Files are named NNN_name.sql and applied in order by jackc/tern, which holds a Postgres
// advisory lock for the whole run, so that instances starting together do not race.
package migrations

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed *.sql
var files embed.FS

// VersionTable is the table in which the applied schema version is kept.
const VersionTable = "schema_version"

// Apply brings the database behind conn to the newest schema version. It is safe to call from
// several processes at once: all but one wait on the lock, then find nothing left to do.
func Apply(ctx context.Context, conn *pgx.Conn) error {
	_, _, err := ApplyVersions(ctx, conn)
	return err
}

// ApplyVersions is Apply, and reports the schema version the run found (from) and the one it
// left (to); they are equal when there was nothing to apply, as when another process applied
// the migrations while this one waited for the lock.
func ApplyVersions(ctx context.Context, conn *pgx.Conn) (from, to int32, err error) {
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return 0, 0, fmt.Errorf("new migrator: %w", err)
	}
	if err := m.LoadMigrations(files); err != nil {
		return 0, 0, fmt.Errorf("load migrations: %w", err)
	}
	from = -1
	m.OnStart = func(sequence int32, _, _, _ string) {
		if from < 0 {
			from = sequence - 1 // the first migration run under the lock follows the version found
		}
	}
	if err := m.Migrate(ctx); err != nil {
		return 0, 0, fmt.Errorf("migrate: %w", err)
	}
	if to, err = m.GetCurrentVersion(ctx); err != nil {
		return 0, 0, fmt.Errorf("schema version: %w", err)
	}
	if from < 0 {
		from = to
	}
	return from, to, nil
}
