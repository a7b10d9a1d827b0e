package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	msqlite "modernc.org/sqlite"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// Op states. A caller whose ctx ends while its op is still pending takes it
// back (pending → abandoned) and the writer skips it; once the writer has
// claimed it (pending → started) it runs to the end and the caller waits.
const (
	opPending int32 = iota
	opStarted
	opAbandoned
)

// op is one write operation waiting for, or running in, a group commit.
type op struct {
	ctx     context.Context
	fn      func(t *wtx) error
	durable bool // false: losing it to a power cut is harmless (leases)
	// oneStatement: fn writes with at most one statement, which SQLite
	// undoes by itself if it fails, so the op needs no savepoint.
	oneStatement bool
	state        atomic.Int32
	err          error         // written by the writer before done is closed
	done         chan struct{} // closed when err is final
}

func (o *op) finish(err error) {
	o.err = err
	close(o.done)
}

// writer owns the write connection. Only its goroutine touches conn, stmts,
// batch and notes.
type writer struct {
	path  string
	db    *sql.DB
	conn  *sql.Conn
	stmts [numStmts]*sql.Stmt
	// ops is unbuffered: a send succeeds only when the writer takes the op,
	// so no op can be left in a buffer when the writer stops; senders
	// blocked on it are the queue the writer drains into a batch.
	ops      chan *op
	quit     chan struct{}
	done     chan struct{}
	maxBatch int
	fullSync bool         // configured durability
	syncFull bool         // the synchronous level currently set on conn
	bus      *bus         // where committed notifications go
	commits  atomic.Int64 // successful COMMITs, for tests
	ckpt     *checkpointer
	closing  sync.Once
	closeErr error

	tx       wtx
	leaseRow *leaseRow // Lease's reused scan destinations
	args     []any     // reused argument buffer
	batch    []*op
	notes    []store.Notification
}

// wtx is what an op sees: the open write transaction.
type wtx struct {
	w     *writer
	now   time.Time // the op's now, taken when it starts
	nowUS int64
}

func startWriter(ctx context.Context, path string, fullSync bool, maxBatch int) (*writer, error) {
	// Commit with fdatasync(2), as SQLite's own Linux builds do: fsync(2)
	// also pushes the WAL's timestamps through the file system's journal,
	// which on ext4 is most of what a commit waits for, and adds nothing to
	// its durability (the data and the file's size are synced either way).
	// The setting is process-wide; where the call is unavailable (macOS,
	// Windows) SQLite keeps its own way of syncing.
	_, _ = msqlite.Fdatasync(true)
	bt := strconv.Itoa(busyTimeoutMS)
	db, err := sql.Open("sqlite", path+
		"?_pragma=busy_timeout("+bt+")"+
		"&_pragma=journal_mode(WAL)"+
		"&_pragma=synchronous(FULL)"+
		// 8 MiB of page cache holds the hot pages (the tails of the job and
		// event tables, the partial indexes) between batches. A bigger one
		// costs every commit: at the end of each write transaction SQLite
		// truncates the cache (pcache1TruncateUnsafe) by walking a hash
		// table sized to it. With 64 MiB that walk was 12% of the writer's
		// CPU, and commits took ~20% longer (BenchmarkRecordEvents).
		"&_pragma=cache_size(-8192)"+
		"&_pragma=temp_store(MEMORY)"+
		// Checkpoints run on their own connection (see checkpointer); the
		// writer checkpoints itself only if the WAL grows past 64 MiB
		// anyway, as a bound should that one fall behind.
		"&_pragma=wal_autocheckpoint("+strconv.Itoa(walBackstopPages)+")")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, err
	}
	var mode string
	if err := conn.QueryRowContext(ctx, sqlJournalMode).Scan(&mode); err != nil {
		conn.Close()
		db.Close()
		return nil, err
	}
	if mode != "wal" {
		conn.Close()
		db.Close()
		return nil, fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	w := &writer{
		path:     path,
		db:       db,
		conn:     conn,
		ops:      make(chan *op),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
		maxBatch: maxBatch,
		fullSync: fullSync,
		syncFull: true,
	}
	w.tx.w = w
	w.leaseRow = newLeaseRow()
	w.ckpt, err = startCheckpointer(path)
	if err != nil {
		conn.Close()
		db.Close()
		return nil, err
	}
	go w.run()
	return w, nil
}

// close stops the writer goroutine once its current batch is done and
// closes the write connection. Idempotent.
func (w *writer) close() error {
	w.closing.Do(func() {
		close(w.quit)
		<-w.done
		var errs []error
		for i, st := range w.stmts {
			if st != nil {
				errs = append(errs, st.Close())
				w.stmts[i] = nil
			}
		}
		errs = append(errs, w.ckpt.close(), w.conn.Close(), w.db.Close())
		w.closeErr = errors.Join(errs...)
	})
	return w.closeErr
}

// do runs fn in the writer's next group commit and returns its error, or
// the commit's. durable=false marks an op whose loss in a power cut is
// harmless. ctx only matters until the writer starts the op.
func (w *writer) do(ctx context.Context, durable bool, fn func(t *wtx) error) error {
	return w.submit(ctx, &op{ctx: ctx, fn: fn, durable: durable})
}

// doOneStatement is do for an fn that writes with at most one statement.
// Such an op runs without the savepoint that isolates other ops' failures:
// a statement that fails is undone by SQLite itself. A savepoint and its
// release cost as much as a one-row insert, and single-job enqueues are the
// bulk of the HTTP API's writes.
func (w *writer) doOneStatement(ctx context.Context, durable bool, fn func(t *wtx) error) error {
	return w.submit(ctx, &op{ctx: ctx, fn: fn, durable: durable, oneStatement: true})
}

func (w *writer) submit(ctx context.Context, o *op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.done = make(chan struct{})
	select {
	case w.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.quit:
		return ErrClosed
	}
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opPending, opAbandoned) {
			return ctx.Err()
		}
		<-o.done
		return o.err
	}
}

func (w *writer) run() {
	defer close(w.done)
	for {
		var first *op
		select {
		case first = <-w.ops:
		case <-w.quit:
			return
		}
		batch := append(w.batch[:0], first)
	drain:
		for len(batch) < w.maxBatch {
			select {
			case o := <-w.ops:
				batch = append(batch, o)
			default:
				break drain
			}
		}
		w.runBatch(batch)
		clear(batch) // let the ops and their closures be collected
		w.batch = batch[:0]
	}
}

// runBatch runs the ops in one transaction, each in its own savepoint, and
// answers them after the commit.
func (w *writer) runBatch(batch []*op) {
	n := 0
	durable := false
	for _, o := range batch {
		if !o.state.CompareAndSwap(opPending, opStarted) {
			continue // its caller gave up before we got to it
		}
		if err := o.ctx.Err(); err != nil {
			o.finish(err)
			continue
		}
		batch[n] = o
		n++
		durable = durable || o.durable
	}
	batch = batch[:n]
	if n == 0 {
		return
	}

	if err := w.setSync(durable && w.fullSync); err != nil {
		w.failAll(batch, fmt.Errorf("set synchronous: %w", err))
		return
	}
	if _, err := w.exec(stBegin); err != nil {
		w.failAll(batch, fmt.Errorf("begin: %w", err))
		return
	}
	w.notes = w.notes[:0]
	single := n == 1
	for _, o := range batch {
		t := &w.tx
		t.now = time.Now()
		t.nowUS = t.now.UnixMicro()
		if single {
			// Without other ops to protect, the transaction itself is the
			// savepoint: a failure rolls it back below.
			o.err = o.fn(t)
			if o.err != nil {
				w.rollback()
				o.finish(o.err)
				return
			}
			continue
		}
		mark := len(w.notes)
		if o.oneStatement {
			o.err = o.fn(t)
			if o.err != nil {
				w.notes = w.notes[:mark]
				if !statementUndone(o.err) {
					// The transaction itself may be gone (an I/O error
					// rolls it back): nothing in the batch can commit.
					w.abort(batch, o.err)
					return
				}
			}
			continue
		}
		if _, err := w.exec(stSavepoint); err != nil {
			w.abort(batch, fmt.Errorf("savepoint: %w", err))
			return
		}
		o.err = o.fn(t)
		if o.err != nil {
			w.notes = w.notes[:mark]
			if _, err := w.exec(stRollbackTo); err != nil {
				w.abort(batch, fmt.Errorf("rollback to savepoint: %w", err))
				return
			}
		}
		if _, err := w.exec(stRelease); err != nil {
			w.abort(batch, fmt.Errorf("release savepoint: %w", err))
			return
		}
	}
	if _, err := w.exec(stCommit); err != nil {
		w.abort(batch, fmt.Errorf("commit: %w", err))
		return
	}
	if n := w.commits.Add(1); n%checkpointEvery == 0 {
		w.ckpt.poke()
	}
	w.deliver()
	for _, o := range batch {
		o.finish(o.err)
	}
}

// setSync switches the connection's synchronous level between batches (it
// cannot change inside a transaction).
func (w *writer) setSync(full bool) error {
	if full == w.syncFull {
		return nil
	}
	id := stSyncNormal
	if full {
		id = stSyncFull
	}
	if _, err := w.exec(id); err != nil {
		return err
	}
	w.syncFull = full
	return nil
}

// abort rolls the whole transaction back and gives every op err.
func (w *writer) abort(batch []*op, err error) {
	w.rollback()
	w.failAll(batch, err)
}

// statementUndone reports whether a failed one-statement op left the
// transaction as it was: it failed in Go before writing, or its statement
// broke a constraint, which SQLite undoes alone (ABORT). Any other SQLite
// error may have ended the whole transaction.
func statementUndone(err error) bool {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return true
	}
	const sqliteConstraint = 19 // SQLITE_CONSTRAINT, the primary result code
	return se.Code()&0xff == sqliteConstraint
}

func (w *writer) rollback() {
	// An error here means there was no transaction left to roll back (SQLite
	// already did, after an I/O error): nothing more to undo.
	_, _ = w.exec(stRollback)
	w.notes = w.notes[:0]
}

func (w *writer) failAll(batch []*op, err error) {
	for _, o := range batch {
		o.finish(err)
	}
}

// deliver hands the batch's notifications, duplicates removed, to every
// Store of this process on the same file.
func (w *writer) deliver() {
	for _, n := range coalesce(w.notes) {
		w.bus.publish(n)
	}
	w.notes = w.notes[:0]
}

// coalesce removes duplicate notifications in place, keeping first
// occurrences in order; all NotifyScheduled become one carrying the earliest
// time, since a waiter only needs to know when to wake next.
func coalesce(ns []store.Notification) []store.Notification {
	if len(ns) <= 1 {
		return ns
	}
	out := ns[:0]
	sched := -1
	var seen map[store.Notification]struct{}
	if len(ns) > 8 {
		seen = make(map[store.Notification]struct{}, len(ns))
	}
	for _, n := range ns {
		if n.Kind == store.NotifyScheduled {
			if sched < 0 {
				sched = len(out)
				out = append(out, n)
			} else if n.At.Before(out[sched].At) {
				out[sched].At = n.At
			}
			continue
		}
		if seen != nil {
			if _, dup := seen[n]; dup {
				continue
			}
			seen[n] = struct{}{}
		} else if containsNote(out, n) {
			continue
		}
		out = append(out, n)
	}
	return out
}

func containsNote(ns []store.Notification, n store.Notification) bool {
	for _, m := range ns {
		if m == n {
			return true
		}
	}
	return false
}

// stmt returns the cached prepared statement id, preparing it on first use:
// statements are prepared lazily because the tables they name only exist
// once the migrations ran.
func (w *writer) stmt(id stmtID) (*sql.Stmt, error) {
	if st := w.stmts[id]; st != nil {
		return st, nil
	}
	st, err := w.conn.PrepareContext(context.Background(), stmtSQL[id])
	if err != nil {
		return nil, err
	}
	w.stmts[id] = st
	return st, nil
}

// exec runs a cached statement. The writer passes context.Background():
// a started op always completes, and a cancellable context would make the
// driver start a watcher goroutine for every statement.
func (w *writer) exec(id stmtID, args ...any) (sql.Result, error) {
	st, err := w.stmt(id)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(context.Background(), args...)
}

func (t *wtx) exec(id stmtID, args ...any) (sql.Result, error) {
	return t.w.exec(id, args...)
}

// execN runs a cached statement and returns the number of rows it changed.
func (t *wtx) execN(id stmtID, args ...any) (int64, error) {
	res, err := t.w.exec(id, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t *wtx) query(id stmtID, args ...any) (*sql.Rows, error) {
	st, err := t.w.stmt(id)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(context.Background(), args...)
}

// queryRow runs a cached single-row query; the statement's preparation error,
// if any, comes back from Scan.
func (t *wtx) queryRow(id stmtID, args ...any) rowScanner {
	st, err := t.w.stmt(id)
	if err != nil {
		return rowScanner{err: err}
	}
	return rowScanner{row: st.QueryRowContext(context.Background(), args...)}
}

type rowScanner struct {
	row *sql.Row
	err error
}

func (r rowScanner) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.row.Scan(dest...)
}

// notify records a notification to be delivered if this op commits.
func (t *wtx) notify(n store.Notification) {
	ns := t.w.notes
	// Cheap guard against the common run of identical ones (a thousand jobs
	// of one queue); coalesce removes the rest after the commit.
	if len(ns) > 0 && ns[len(ns)-1] == n {
		return
	}
	t.w.notes = append(ns, n)
}
