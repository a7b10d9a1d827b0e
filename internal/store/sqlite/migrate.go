package sqlite

import (
	"context"
	"embed"
	"fmt"

	"github.com/switchyard-dev/switchyard/internal/store"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations returns the driver's embedded migrations in version order.
func migrations() ([]store.Migration, error) {
	return store.LoadMigrations(migrationFS, "migrations")
}

// Migrate applies the pending embedded migrations, each in its own
// transaction (its own write op). It is idempotent, and safe against other
// processes migrating the same file: each migration checks whether it was
// applied while holding the write lock.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("sqlite: migrate: %w", err)
	}
	for _, m := range ms {
		err := s.w.do(ctx, true, func(t *wtx) error {
			if _, err := t.exec(stMigrationsTable); err != nil {
				return err
			}
			var applied sqlInt
			if err := t.queryRow(stMigrationApplied, int64(m.Version)).Scan(&applied); err != nil {
				return err
			}
			if applied > 0 {
				return nil
			}
			// A script: the driver runs its statements one after another.
			if _, err := t.w.conn.ExecContext(context.Background(), m.SQL); err != nil {
				return err
			}
			_, err := t.exec(stMigrationRecord, int64(m.Version), t.nowUS)
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", m.Name, err)
		}
	}
	return nil
}

// PendingMigrations counts the embedded migrations the file lacks.
func (s *Store) PendingMigrations(ctx context.Context) (int, error) {
	ms, err := migrations()
	if err != nil {
		return 0, fmt.Errorf("sqlite: pending migrations: %w", err)
	}
	var exists bool
	if err := s.read.QueryRowContext(ctx, readSQL[rsMigrationsTableExists]).Scan(&exists); err != nil {
		return 0, fmt.Errorf("sqlite: pending migrations: %w", err)
	}
	if !exists {
		return len(ms), nil
	}
	n := 0
	for _, m := range ms {
		var applied sqlInt
		if err := s.read.QueryRowContext(ctx, readSQL[rsMigrationApplied], int64(m.Version)).Scan(&applied); err != nil {
			return 0, fmt.Errorf("sqlite: pending migrations: %w", err)
		}
		if applied == 0 {
			n++
		}
	}
	return n, nil
}
