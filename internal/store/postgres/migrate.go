package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one embedded, numbered SQL file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the embedded migrations in version order. The version is
// the file name's numeric prefix (0001_init.sql is version 1).
func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		prefix, _, ok := strings.Cut(name, "_")
		if !ok || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
		}
		v, err := strconv.Atoi(prefix)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: bad version prefix", name)
		}
		b, err := migrationFS.ReadFile(path.Join("migrations", name))
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i := 1; i < len(ms); i++ {
		if ms[i].version == ms[i-1].version {
			return nil, fmt.Errorf("migrations %s and %s share a version", ms[i-1].name, ms[i].name)
		}
	}
	return ms, nil
}

// Migrate implements store.Store. Each pending migration runs in its own
// transaction that first takes a transaction-scoped advisory lock, so any
// number of nodes may migrate at once: the others wait, then see the version
// recorded and skip it. When every migration is applied already (the usual
// start of a node), Migrate only reads, so it needs no privilege beyond
// reading switchyard.schema_migrations.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	applied, err := s.appliedVersions(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	for _, m := range ms {
		if applied[m.version] {
			continue
		}
		if err := s.applyMigration(ctx, m); err != nil {
			return fmt.Errorf("postgres: migrate %s: %w", m.name, err)
		}
	}
	return nil
}

// appliedVersions reads the recorded versions without locking; an absent
// bookkeeping table means none.
func (s *Store) appliedVersions(ctx context.Context) (map[int]bool, error) {
	var exists bool
	if err := s.pool.QueryRow(ctx, sqlMigrateTableExists).Scan(&exists); err != nil {
		return nil, err
	}
	applied := map[int]bool{}
	if !exists {
		return applied, nil
	}
	rows, err := s.pool.Query(ctx, sqlMigrateVersions)
	if err != nil {
		return nil, err
	}
	var v int
	_, err = pgx.ForEachRow(rows, []any{&v}, func() error {
		applied[v] = true
		return nil
	})
	return applied, err
}

func (s *Store) applyMigration(ctx context.Context, m migration) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after Commit
	if _, err := tx.Exec(ctx, sqlMigrateLock, migrationLockKey); err != nil {
		return err
	}
	// Creating the schema and the bookkeeping table under the lock keeps two
	// first-time migrators from racing on CREATE ... IF NOT EXISTS, which is
	// not safe against concurrent creation.
	if _, err := tx.Exec(ctx, sqlMigrateBootstrap); err != nil {
		return err
	}
	var applied bool
	if err := tx.QueryRow(ctx, sqlMigrateApplied, m.version).Scan(&applied); err != nil {
		return err
	}
	if applied {
		return tx.Commit(ctx)
	}
	// No arguments: pgx sends it with the simple protocol, which allows a
	// file of several statements.
	if _, err := tx.Exec(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sqlMigrateRecord, m.version); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
