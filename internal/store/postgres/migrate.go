package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/switchyard-dev/switchyard/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations returns the driver's embedded migrations in version order.
func migrations() ([]store.Migration, error) {
	return store.LoadMigrations(migrationFS, "migrations")
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
		if applied[m.Version] {
			continue
		}
		if err := s.applyMigration(ctx, m); err != nil {
			return fmt.Errorf("postgres: migrate %s: %w", m.Name, err)
		}
	}
	return nil
}

// PendingMigrations implements store.Store.
func (s *Store) PendingMigrations(ctx context.Context) (int, error) {
	ms, err := migrations()
	if err != nil {
		return 0, fmt.Errorf("postgres: pending migrations: %w", err)
	}
	applied, err := s.appliedVersions(ctx)
	if err != nil {
		return 0, fmt.Errorf("postgres: pending migrations: %w", err)
	}
	n := 0
	for _, m := range ms {
		if !applied[m.Version] {
			n++
		}
	}
	return n, nil
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

func (s *Store) applyMigration(ctx context.Context, m store.Migration) error {
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
	if err := tx.QueryRow(ctx, sqlMigrateApplied, m.Version).Scan(&applied); err != nil {
		return err
	}
	if applied {
		return tx.Commit(ctx)
	}
	// No arguments: pgx sends it with the simple protocol, which allows a
	// file of several statements.
	if _, err := tx.Exec(ctx, m.SQL); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sqlMigrateRecord, m.Version); err != nil {
		return err
	}
	return tx.Commit(ctx)
}
