package sqlite

import (
	"database/sql"
	"strconv"
)

// A WAL checkpoint copies committed pages into the database file and syncs
// it. Run by the writer (SQLite's default, every 1000 pages), it stalls the
// commit that crosses the threshold and every operation queued behind it:
// under HTTP ingest that is what set the p99. A checkpointer runs passive
// checkpoints on a connection of its own instead, concurrently with the
// writer's commits.
const (
	// checkpointEvery is how many commits pass between checkpoints.
	checkpointEvery = 64
	// walBackstopPages is when the writer checkpoints itself after all
	// (64 MiB of 4 KiB pages): only if the checkpointer fell far behind.
	walBackstopPages = 16384
)

type checkpointer struct {
	db   *sql.DB
	wake chan struct{}
	done chan struct{}
}

func startCheckpointer(path string) (*checkpointer, error) {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout("+strconv.Itoa(busyTimeoutMS)+")")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	c := &checkpointer{db: db, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go c.run()
	return c, nil
}

// poke asks for a checkpoint without waiting for it.
func (c *checkpointer) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *checkpointer) run() {
	defer close(c.done)
	for range c.wake {
		// PASSIVE never waits for readers or the writer; what it cannot
		// copy now, a later one will. Errors (busy) are retried the same
		// way, and the writer's backstop bounds the WAL meanwhile.
		_, _ = c.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
	}
}

func (c *checkpointer) close() error {
	close(c.wake)
	<-c.done
	return c.db.Close()
}
