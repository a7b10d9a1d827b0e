package main

import (
	"context"
	"fmt"
	"io"

	"github.com/switchyard-dev/switchyard"
)

func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("migrate [--db URL]", "Applies pending migrations to the database and exits.", stderr)
	db := fs.String("db", switchyard.DefaultDatabase, "database: sqlite:PATH or a postgres:// URL")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := switchyard.Migrate(ctx, *db); err != nil {
		return err
	}
	fmt.Fprintln(stdout, "migrations applied")
	return nil
}
