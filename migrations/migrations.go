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
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return fmt.Errorf("new migrator: %w", err)
	}
	if err := m.LoadMigrations(files); err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}
