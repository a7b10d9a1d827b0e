package sqlite

import "strings"

// SQL of the write connection's statements. Each is prepared once, on first
// use, and kept for the life of the connection. Hot statements use plain
// '?' parameters in argument order: the driver looks numbered ones up by
// name on every execution.

// sqlJournalMode reads the journal mode, which Open checks is WAL.
const sqlJournalMode = `PRAGMA journal_mode`

// stmtID indexes writer.stmts and stmtSQL.
type stmtID int

const (
	stBegin stmtID = iota
	stCommit
	stRollback
	stSavepoint
	stRelease
	stRollbackTo
	stSyncFull
	stSyncNormal

	stMigrationsTable
	stMigrationApplied
	stMigrationRecord

	stJobByID
	stJobByUnique
	stUniqueHolder
	stLeaseSelect
	stCompleteSucceeded
	stCompleteFailed
	stCompleteDead
	stCompleteSnoozed
	stCompleteCancelled
	stHeartbeat
	stSetProgress
	stFinishLive
	stRetry
	stSetPaused
	stSetConcurrency
	stDeleteJob
	stInsertKey
	stAnyKey
	stTouchKey
	stRevokeKey
	stKeyRevoked
	stRescueRetry
	stRescueDead
	stNextLeaseExpiry
	stPromote
	stNextPending
	stDeleteSucceeded
	stDeleteCancelled
	stDeleteDead
	stPurge
	stTryLead
	stResign

	stEventBySource

	stChunkSavepoint
	stChunkRelease
	stChunkRollbackTo

	// stInsert0 .. stInsert0+insertSizes-1 insert 1, 2, 4, … rows at once.
	stInsert0
	// stInsertExact0 .. stInsertExact0+exactRows-1 insert 1, 2, 3, … rows.
	stInsertExact0 = stInsert0 + insertSizes
	// stSucceed0 .. stSucceed0+chunkSizes-1 complete 1, 2, 4, … jobs at once
	// with OutcomeSucceeded.
	stSucceed0 = stInsertExact0 + exactRows
	// stLeaseMark0 .. stLeaseMark0+chunkSizes-1 lease 1, 2, 4, … jobs.
	stLeaseMark0 = stSucceed0 + chunkSizes
	// stAudit0 .. stAudit0+auditSizes-1 append 1, 2, 4, … audit entries.
	stAudit0 = stLeaseMark0 + chunkSizes
	// stEvents0 .. stEvents0+exactRows-1 record 1, 2, 3, … events.
	stEvents0 = stAudit0 + auditSizes
	numStmts  = stEvents0 + exactRows
)

// exactRows is up to how many rows the job and event INSERTs have a
// statement for each count: every statement execution has a fixed cost
// (binding, AUTOINCREMENT's sqlite_sequence read and write), so the few
// rows of a group of ingest requests (record.go) go in one statement, not
// as chunks of 4, 2 and 1. Longer inserts run in chunks of the largest.
const exactRows = 64

// auditSizes is how many multi-row audit INSERT statements there are: for
// 1, 2, 4, … 64 entries. A server appends an entry per mutating request; a
// statement per entry, prepared each time, cost as much as inserting the
// jobs themselves.
const auditSizes = 7

// insertSizes is how many multi-row INSERT statements there are: for 1, 2,
// 4, … 1<<(insertSizes-1) rows. A batch of n jobs runs as chunks of the
// largest size and then the binary digits of the remainder, so a 1000-job
// Insert costs 13 statement executions rather than 1000.
const insertSizes = 9 // up to 256 rows, 256*insertCols = 3072 parameters

// chunkSizes is the same for the multi-row completion and lease statements.
const chunkSizes = 9

// succeedCols is how many parameters one row of a stSucceed statement takes:
// id, attempt, token, result.
const succeedCols = 4

// jobCols is every column of jobs, in the order scanJob reads them.
const jobCols = `id, tenant_id, queue, kind, args, priority, state, attempt, max_attempts,
	run_at, created_at, started_at, finished_at, timeout_ms, unique_key, tags, result,
	errors, progress, lease_token, lease_expires_at, leased_by`

// The columns Insert sets, in the order it binds them.
const (
	insertColList = `tenant_id, queue, kind, args, priority, state, max_attempts, run_at, created_at, timeout_ms, unique_key, tags`
	insertCols    = 12
	stateArg      = 5 // where state is among them
)

// leaseCols is what Lease reads: the columns a lease does not already know
// (the tenant and queue come from the request, the lease fields are new).
const leaseCols = `id, kind, args, priority, attempt, max_attempts, run_at, created_at,
	timeout_ms, unique_key, tags, result, errors, progress`

// fence matches exactly one lease: the job is running with this attempt and
// token. Parameters: id, attempt, token.
const fence = ` WHERE id = ? AND state = 'running' AND attempt = ? AND lease_token = ?`

// clearLease ends a lease: every state change out of running voids the
// token (a stale worker's completion no longer matches) and forgets the
// lease's expiry and holder.
const clearLease = `lease_token = 0, lease_expires_at = NULL, leased_by = NULL`

// liveStates is store.LiveStates as SQL, exactly as in jobs_unique's
// predicate, so that the planner sees the partial index applies.
const liveStates = `unique_key IS NOT NULL AND (state = 'scheduled' OR state = 'available' OR state = 'running' OR state = 'retryable')`

// appendError appends one {"attempt","at","message"} object to errors.
// Parameters: at (RFC 3339), message.
const appendError = `errors = json_insert(errors, '$[#]', json_object('attempt', attempt, 'at', ?, 'message', ?))`

// leaseExpiredMessage is the error a rescued job records.
const leaseExpiredMessage = "lease expired: the worker stopped heartbeating before the job finished"

var stmtSQL = func() [numStmts]string {
	var s [numStmts]string
	s[stBegin] = `BEGIN IMMEDIATE`
	s[stCommit] = `COMMIT`
	s[stRollback] = `ROLLBACK`
	s[stSavepoint] = `SAVEPOINT op`
	s[stRelease] = `RELEASE op`
	s[stRollbackTo] = `ROLLBACK TO op`
	s[stChunkSavepoint] = `SAVEPOINT chunk`
	s[stChunkRelease] = `RELEASE chunk`
	s[stChunkRollbackTo] = `ROLLBACK TO chunk`
	s[stSyncFull] = `PRAGMA synchronous = FULL`
	s[stSyncNormal] = `PRAGMA synchronous = NORMAL`

	s[stMigrationsTable] = `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT`
	s[stMigrationApplied] = `SELECT count(*) FROM schema_migrations WHERE version = ?`
	s[stMigrationRecord] = `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`

	for i := range insertSizes {
		s[stInsert0+stmtID(i)] = "INSERT INTO jobs (" + insertColList + ") VALUES " + valueRows(insertCols, 1<<i)
	}
	for i := range exactRows {
		s[stInsertExact0+stmtID(i)] = "INSERT INTO jobs (" + insertColList + ") VALUES " + valueRows(insertCols, i+1)
	}
	for i := range auditSizes {
		s[stAudit0+stmtID(i)] = `INSERT INTO audit_log (at, tenant_id, actor_type, actor_id, action, target, result,
		status, client_ip, request_id, detail) VALUES ` + valueRows(auditCols, 1<<i)
	}

	// Completing many jobs in one statement saves SQLite preparing a VM and
	// opening a cursor on the table and each index for every job. A row of c
	// that matches no current lease is simply not updated; the caller sees
	// fewer changes than rows and redoes the chunk one job at a time to find
	// which. Parameters: the rows, then finished_at.
	for i := range chunkSizes {
		s[stSucceed0+stmtID(i)] = "WITH c (id, attempt, token, result) AS (VALUES " + valueRows(succeedCols, 1<<i) + `)
	UPDATE jobs SET state = 'succeeded', result = c.result, finished_at = ?, ` + clearLease + `
	FROM c WHERE jobs.id = c.id AND jobs.state = 'running' AND jobs.attempt = c.attempt AND jobs.lease_token = c.token`
	}

	// Lease's UPDATE: the jobs and their new tokens, then lease_expires_at,
	// started_at and leased_by.
	for i := range chunkSizes {
		s[stLeaseMark0+stmtID(i)] = "WITH c (id, token) AS (VALUES " + valueRows(2, 1<<i) + `)
	UPDATE jobs SET state = 'running', attempt = attempt + 1, lease_token = c.token,
		lease_expires_at = ?, started_at = ?, leased_by = ?
	FROM c WHERE jobs.id = c.id AND jobs.state = 'available'`
	}

	s[stJobByID] = `SELECT ` + jobCols + ` FROM jobs WHERE id = ? AND tenant_id = ?`
	s[stJobByUnique] = `SELECT ` + jobCols + ` FROM jobs
		WHERE tenant_id = ? AND unique_key = ? AND ` + liveStates
	s[stUniqueHolder] = `SELECT count(*) FROM jobs
		WHERE tenant_id = ? AND unique_key = ? AND ` + liveStates + ` AND id <> ?`

	// Walks jobs_fetch in lease order and stops after LIMIT rows; the paused
	// check is a constant subquery, evaluated once.
	s[stLeaseSelect] = `SELECT ` + leaseCols + ` FROM jobs
		WHERE tenant_id = ?1 AND queue = ?2 AND state = 'available'
		  AND NOT EXISTS (SELECT 1 FROM queues WHERE tenant_id = ?1 AND name = ?2 AND paused)
		ORDER BY priority, run_at, id
		LIMIT ?3`

	// Completions. Parameters: the SET ones, then id, attempt, token.
	s[stCompleteSucceeded] = `UPDATE jobs SET state = 'succeeded', finished_at = ?, result = ?,
		` + clearLease + fence
	s[stCompleteFailed] = `UPDATE jobs SET ` + appendError + `,
		state = CASE WHEN attempt < max_attempts THEN 'retryable' ELSE 'dead' END,
		run_at = CASE WHEN attempt < max_attempts THEN ? ELSE run_at END,
		finished_at = CASE WHEN attempt < max_attempts THEN NULL ELSE ? END,
		` + clearLease + fence + `
	RETURNING state, run_at`
	s[stCompleteDead] = `UPDATE jobs SET ` + appendError + `, state = 'dead', finished_at = ?,
		` + clearLease + fence
	// Snoozed and released: the attempt is given back. Parameters: state,
	// run_at. Returns where to notify.
	s[stCompleteSnoozed] = `UPDATE jobs SET state = ?, run_at = ?, attempt = attempt - 1,
		` + clearLease + fence + `
	RETURNING tenant_id, queue`
	s[stCompleteCancelled] = `UPDATE jobs SET state = 'cancelled', finished_at = ?,
		` + clearLease + fence
	s[stHeartbeat] = `UPDATE jobs SET lease_expires_at = ?` + fence
	s[stSetProgress] = `UPDATE jobs SET progress = ?` + fence

	// Cancel and Discard. Parameters: state, finished_at, id.
	s[stFinishLive] = `UPDATE jobs SET state = ?, finished_at = ?, ` + clearLease + `
		WHERE id = ? RETURNING ` + jobCols
	// Parameters: run_at, id.
	s[stRetry] = `UPDATE jobs SET state = 'available', run_at = ?, finished_at = NULL,
		max_attempts = CASE WHEN attempt >= max_attempts THEN attempt + 1 ELSE max_attempts END,
		` + clearLease + `
		WHERE id = ? RETURNING ` + jobCols
	s[stSetPaused] = `INSERT INTO queues (tenant_id, name, paused, created_at, updated_at)
		VALUES (?1, ?2, ?3, ?4, ?4)
		ON CONFLICT (tenant_id, name) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at`
	s[stSetConcurrency] = `INSERT INTO queues (tenant_id, name, concurrency, created_at, updated_at)
		VALUES (?1, ?2, ?3, ?4, ?4)
		ON CONFLICT (tenant_id, name) DO UPDATE SET concurrency = excluded.concurrency, updated_at = excluded.updated_at`
	s[stDeleteJob] = `DELETE FROM jobs WHERE id = ?`
	s[stInsertKey] = `INSERT INTO api_keys (id, tenant_id, name, role, prefix, hash, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	s[stAnyKey] = `SELECT EXISTS (SELECT 1 FROM api_keys)`
	s[stTouchKey] = `UPDATE api_keys SET last_used_at = ? WHERE id = ?`
	s[stRevokeKey] = `UPDATE api_keys SET revoked_at = ? WHERE id = ? AND tenant_id = ? AND revoked_at IS NULL`
	s[stKeyRevoked] = `SELECT revoked_at IS NOT NULL FROM api_keys WHERE id = ? AND tenant_id = ?`

	// Parameters: at, message, run_at, then the lease (id, attempt, token)
	// and now: the job must still hold the lease the rescuer read, expired.
	s[stRescueRetry] = `UPDATE jobs SET ` + appendError + `, state = 'retryable', run_at = ?,
		` + clearLease + fence + ` AND lease_expires_at < ?`
	// Parameters: at, message, finished_at, id, attempt, token, now.
	s[stRescueDead] = `UPDATE jobs SET ` + appendError + `, state = 'dead', finished_at = ?,
		` + clearLease + fence + ` AND lease_expires_at < ?`
	s[stNextLeaseExpiry] = `SELECT min(lease_expires_at) FROM jobs WHERE state = 'running'`

	s[stPromote] = `UPDATE jobs SET state = 'available'
	WHERE id IN (
		SELECT id FROM jobs WHERE state IN ('scheduled', 'retryable') AND run_at <= ?
		ORDER BY run_at LIMIT ?)
	RETURNING tenant_id, queue`
	s[stNextPending] = `SELECT min(run_at) FROM jobs WHERE state IN ('scheduled', 'retryable')`

	// One statement per state, so that each matches jobs_finished's
	// predicate with a constant. Parameters: finished before, limit.
	for id, state := range map[stmtID]string{stDeleteSucceeded: "succeeded", stDeleteCancelled: "cancelled", stDeleteDead: "dead"} {
		s[id] = `DELETE FROM jobs WHERE id IN (
			SELECT id FROM jobs WHERE state = '` + state + `' AND finished_at < ?
			ORDER BY finished_at LIMIT ?)`
	}
	s[stPurge] = `DELETE FROM jobs WHERE tenant_id = ? AND queue = ? AND state <> 'running'`

	// Recording events, the hot path of event and webhook ingest: a repeat
	// is skipped, which the count of rows changed shows.
	s[stEventBySource] = sqlEvBySourceID
	for i := range exactRows {
		s[stEvents0+stmtID(i)] = `INSERT INTO events (` + evInsertCols + `) VALUES ` + valueRows(evInsertColN, i+1) +
			` ON CONFLICT (tenant_id, source, event_id) DO NOTHING`
	}

	// Take the row if it is absent, expired or ours; keep elected_at while
	// we keep leading. Parameters: name, node, now, expires_at.
	s[stTryLead] = `INSERT INTO leaders (name, leader_id, elected_at, expires_at) VALUES (?1, ?2, ?3, ?4)
		ON CONFLICT (name) DO UPDATE SET
			leader_id = excluded.leader_id,
			elected_at = CASE WHEN leaders.leader_id = excluded.leader_id THEN leaders.elected_at ELSE excluded.elected_at END,
			expires_at = excluded.expires_at
		WHERE leaders.leader_id = excluded.leader_id OR leaders.expires_at < excluded.elected_at`
	s[stResign] = `DELETE FROM leaders WHERE name = ? AND leader_id = ?`
	return s
}()

// Read-pool statements.

// rstmtID indexes readStmts.
type rstmtID int

const (
	rsGet rstmtID = iota
	rsQueueSettings
	rsQueueCounts
	rsQueueRows
	rsQueueNames
	rsAllQueueNames
	rsKeyByHash
	rsMigrationsTableExists
	rsMigrationApplied
	rsRescueSelect
	numReadStmts
)

var readSQL = [numReadStmts]string{
	rsGet:           `SELECT ` + jobCols + ` FROM jobs WHERE id = ? AND tenant_id = ?`,
	rsQueueSettings: `SELECT paused, concurrency FROM queues WHERE tenant_id = ? AND name = ?`,
	rsQueueCounts:   `SELECT queue, state, count(*) FROM jobs WHERE tenant_id = ? GROUP BY queue, state`,
	rsQueueRows:     `SELECT name, paused, concurrency, updated_at FROM queues WHERE tenant_id = ?`,
	rsQueueNames: `SELECT name FROM queues WHERE tenant_id = ?1
		UNION SELECT DISTINCT queue FROM jobs WHERE tenant_id = ?1 AND state IN ('available', 'scheduled', 'retryable')`,
	// Available jobs are found through jobs_fetch, which covers (tenant_id,
	// queue), and scheduled or retryable ones through jobs_pending.
	rsAllQueueNames: `SELECT tenant_id, name FROM queues
		UNION SELECT tenant_id, queue FROM jobs WHERE state = 'available'
		UNION SELECT tenant_id, queue FROM jobs WHERE state IN ('scheduled', 'retryable')`,
	rsMigrationsTableExists: `SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'schema_migrations')`,
	rsMigrationApplied:      `SELECT count(*) FROM schema_migrations WHERE version = ?`,
	rsKeyByHash: `SELECT id, tenant_id, name, role, prefix, hash, created_at, expires_at, last_used_at, revoked_at
		FROM api_keys WHERE hash = ?`,
	rsRescueSelect: `SELECT ` + jobCols + ` FROM jobs
		WHERE state = 'running' AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?`,
}

// List's query is assembled from these fragments, one per filter given.
const (
	listSelect  = `SELECT ` + jobCols + ` FROM jobs WHERE tenant_id = ?`
	listQueue   = ` AND queue = ?`
	listState   = ` AND state = ?`
	listKind    = ` AND kind = ?`
	listTag     = ` AND EXISTS (SELECT 1 FROM json_each(jobs.tags) WHERE json_each.value = ?)`
	listBefore  = ` AND id < ?`
	listOrderBy = ` ORDER BY id DESC LIMIT ?`
)

// valueRows returns n rows of cols placeholders each, "(?, ?), (?, ?)", for
// a multi-row VALUES list.
func valueRows(cols, n int) string {
	row := "(" + strings.Repeat("?, ", cols-1) + "?)"
	return strings.Repeat(row+", ", n-1) + row
}
