package postgres

// All SQL of the driver. Conventions:
//
//   - Durations travel as bigint microseconds and become intervals in SQL
//     ($n::bigint * interval '1 microsecond'), so every time is computed from
//     the database's now().
//   - A statement that sends notifications takes the channel as $1 and the
//     Store's origin id as $2, and calls pg_notify in a CTE named notes, once
//     per group, never once per job. A CTE that does not modify data runs
//     only if referenced, so the final SELECT references notes in a filter
//     that is always true (notesFilter); being an uncorrelated subquery, it
//     is evaluated once, before the first row.
//   - Times inside JSON (notification payloads, the errors array) are written
//     as RFC 3339 in UTC with to_char, independent of the session's TimeZone.

// migrationLockKey is the pg_advisory_xact_lock key serialising migrators:
// the first 8 bytes of "switchya" read as a big-endian int64, unlikely to
// clash with a user's own advisory locks.
const migrationLockKey int64 = 0x7377697463687961

const (
	sqlMigrateLock      = `SELECT pg_advisory_xact_lock($1)`
	sqlMigrateBootstrap = `CREATE SCHEMA IF NOT EXISTS switchyard;
CREATE TABLE IF NOT EXISTS switchyard.schema_migrations (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)`
	sqlMigrateApplied     = `SELECT EXISTS (SELECT 1 FROM switchyard.schema_migrations WHERE version = $1)`
	sqlMigrateTableExists = `SELECT to_regclass('switchyard.schema_migrations') IS NOT NULL`
	sqlMigrateVersions    = `SELECT version FROM switchyard.schema_migrations`
	sqlMigrateRecord      = `INSERT INTO switchyard.schema_migrations (version) VALUES ($1)`
)

const sqlNow = `SELECT now()`

// sqlPublish sends each payload of $2 on channel $1.
const sqlPublish = `SELECT pg_notify($1::text, p) FROM unnest($2::text[]) AS p`

// sqlAsyncCommit, first in a pipeline (one implicit transaction), lets that
// transaction commit without waiting for its WAL flush. Only for writes whose
// loss in a crash is harmless (notifications; sqlLease does the same inline).
const sqlAsyncCommit = `SELECT set_config('synchronous_commit', 'off', true)`

// rfc3339Pre + <timestamptz expression> + rfc3339Post formats a time for
// JSON as RFC 3339 in UTC with microseconds, which Go's time.Time unmarshals.
const (
	rfc3339Pre  = `to_char(`
	rfc3339Post = ` AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`
	nowRFC3339  = rfc3339Pre + `now()` + rfc3339Post
)

// jobColumns is the column list scanJob reads, in its order.
const jobColumns = `id, tenant_id, queue, kind, args, priority, state, attempt, max_attempts,
	run_at, created_at, started_at, finished_at, timeout_ms, unique_key, tags, result, errors,
	progress, lease_token, lease_expires_at, leased_by`

// jobColumnsJ is jobColumns qualified with the alias j.
const jobColumnsJ = `j.id, j.tenant_id, j.queue, j.kind, j.args, j.priority, j.state, j.attempt,
	j.max_attempts, j.run_at, j.created_at, j.started_at, j.finished_at, j.timeout_ms, j.unique_key,
	j.tags, j.result, j.errors, j.progress, j.lease_token, j.lease_expires_at, j.leased_by`

const liveStates = `('scheduled', 'available', 'running', 'retryable')`

// notesPre + <CTE name> + notesPost is the body of a notes CTE over a CTE
// with columns tenant_id, queue, state, run_at: one NotifyInsert per
// (tenant, queue) that got available jobs, and one NotifyScheduled for the
// whole statement if it scheduled anything, carrying the earliest run_at
// (the promoter only needs to know when to look next). Go's noteSet builds
// the same list for local delivery. $2 is the writing Store's origin id,
// which lets its listener drop the copy it already delivered locally. An
// empty channel sends nothing: the caller publishes after commit instead
// (see publisher).
const (
	notesPre = `SELECT pg_notify($1::text, json_build_object('k', 'insert', 't', tenant_id, 'q', queue, 'o', $2::text)::text)
	FROM `
	notesMid = ` WHERE $1::text <> '' AND state = 'available' GROUP BY tenant_id, queue
	UNION ALL
	SELECT pg_notify($1::text, json_build_object('k', 'scheduled',
		'a', ` + rfc3339Pre + `min(run_at)` + rfc3339Post + `, 'o', $2::text)::text)
	FROM `
	notesPost   = ` WHERE $1::text <> '' AND state IN ('scheduled', 'retryable') HAVING count(*) > 0`
	notesFilter = ` WHERE (SELECT count(*) FROM notes) >= 0`
)

// insertInput unnests the column arrays of an insert. Tags arrive flattened
// in one array, each job taking the slice [tag_lo:tag_hi] (an empty slice
// when tag_hi < tag_lo), which avoids a two-dimensional array and any text
// parsing per row. unnest pads a NULL array with NULLs, so a batch without
// tags or unique keys sends NULL for those arrays.
const insertInput = `SELECT t.tenant_id, t.queue, t.kind, t.args, t.priority, t.max_attempts,
		coalesce(t.run_at, now() + t.delay_us * interval '1 microsecond') AS run_at,
		t.timeout_ms, coalesce(($12::text[])[t.tag_lo:t.tag_hi], '{}') AS tags, t.unique_key, t.ord
	FROM unnest($3::text[], $4::text[], $5::text[], $6::jsonb[], $7::smallint[], $8::int[],
		$9::timestamptz[], $10::bigint[], $11::bigint[], $13::int[], $14::int[], $15::text[])
		WITH ORDINALITY AS t(tenant_id, queue, kind, args, priority, max_attempts, run_at, delay_us,
			timeout_ms, tag_lo, tag_hi, unique_key, ord)`

const insertColumns = `tenant_id, queue, kind, args, priority, state, max_attempts, run_at, timeout_ms, tags, unique_key`

const insertSelect = `SELECT u.tenant_id, u.queue, u.kind, u.args, u.priority,
		CASE WHEN u.run_at > now() THEN 'scheduled' ELSE 'available' END,
		u.max_attempts, u.run_at, u.timeout_ms, u.tags, u.unique_key
	FROM u ORDER BY u.ord`

// sqlInsert inserts jobs without unique keys. Ids come from the identity in
// the order of ord, so the caller maps returned rows to its input by id.
const sqlInsert = `WITH u AS (` + insertInput + `
), ins AS (
	INSERT INTO switchyard.jobs (` + insertColumns + `)
	` + insertSelect + `
	RETURNING id, tenant_id, queue, state, run_at, created_at
), notes AS (` + notesPre + `ins` + notesMid + `ins` + notesPost + `)
SELECT id, state, run_at, created_at FROM ins` + notesFilter

// sqlInsertOne inserts one job without a unique key and sends no
// notification (the Store publishes after commit). $7 RunAt, or now() plus
// $8 microseconds.
const sqlInsertOne = `INSERT INTO switchyard.jobs (` + insertColumns + `)
	SELECT $1, $2, $3, $4::jsonb, $5,
		CASE WHEN r.run_at > now() THEN 'scheduled' ELSE 'available' END,
		$6, r.run_at, $9, $10::text[], NULL
	FROM (SELECT coalesce($7::timestamptz, now() + $8::bigint * interval '1 microsecond') AS run_at) r
	RETURNING id, state, run_at, created_at`

// sqlInsertUnique inserts jobs with unique keys (distinct per tenant within
// the call). A key held by a live job conflicts on the partial unique index
// and is skipped; the live job is then read back. A conflicting job committed
// after this statement's snapshot is not visible to the read-back, so the
// caller retries the keys that got no row.
const sqlInsertUnique = `WITH u AS (` + insertInput + `
), ins AS (
	INSERT INTO switchyard.jobs (` + insertColumns + `)
	` + insertSelect + `
	ON CONFLICT (tenant_id, unique_key) WHERE unique_key IS NOT NULL AND state IN ` + liveStates + `
	DO NOTHING
	RETURNING ` + jobColumns + `
), notes AS (` + notesPre + `ins` + notesMid + `ins` + notesPost + `)
SELECT true, ` + jobColumns + ` FROM ins` + notesFilter + `
UNION ALL
SELECT false, ` + jobColumnsJ + `
	FROM u JOIN switchyard.jobs j ON j.tenant_id = u.tenant_id AND j.unique_key = u.unique_key
	WHERE j.unique_key IS NOT NULL AND j.state IN ` + liveStates + `
	AND NOT EXISTS (SELECT 1 FROM ins WHERE ins.tenant_id = u.tenant_id AND ins.unique_key = u.unique_key)`

// sqlLease picks the next jobs from the fetch index, skipping rows other
// leasers hold, and leases them in the same statement. The paused check is
// uncorrelated, so it runs once as a one-time filter.
const sqlLease = `WITH locked AS (
	SELECT id FROM switchyard.jobs
	WHERE tenant_id = $1 AND queue = $2 AND state = 'available'
		AND NOT EXISTS (SELECT 1 FROM switchyard.queues q WHERE q.tenant_id = $1 AND q.name = $2 AND q.paused)
		-- Commit without waiting for the WAL flush (see Lease). An
		-- uncorrelated subquery: evaluated once, before the first row.
		AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'
	ORDER BY priority, run_at, id
	LIMIT $3
	FOR UPDATE SKIP LOCKED
)
UPDATE switchyard.jobs j SET
	state = 'running',
	attempt = j.attempt + 1,
	lease_token = 1 + (random() * 9.2e18)::bigint,
	lease_expires_at = now() + $4::bigint * interval '1 microsecond',
	started_at = now(),
	leased_by = $5
FROM locked WHERE j.id = locked.id
RETURNING ` + jobColumnsJ

// leaseMatch fences a statement to the current lease in u.
const leaseMatch = `j.id = u.id AND j.state = 'running' AND j.attempt = u.attempt AND j.lease_token = u.token`

// sqlCompleteSucceeded is the hot path of Complete. It sends no notification:
// nothing becomes available.
const sqlCompleteSucceeded = `UPDATE switchyard.jobs j SET
	state = 'succeeded', finished_at = now(), result = u.result::jsonb,
	lease_token = 0, lease_expires_at = NULL, leased_by = NULL
FROM unnest($1::bigint[], $2::int[], $3::bigint[], $4::text[]) AS u(id, attempt, token, result)
WHERE ` + leaseMatch + `
RETURNING j.id`

// sqlCompleteOther applies every outcome but succeeded. SET expressions see
// the row before the update, so j.attempt is the attempt that ended. The
// outcome numbers are store.Outcome's values. A retry time in the past is
// kept as given (the job is due at once, and sorts by when it was due); a
// snooze of zero or less makes the job available now.
const sqlCompleteOther = `WITH upd AS (
	UPDATE switchyard.jobs j SET
		state = CASE u.outcome
			WHEN 2 THEN CASE WHEN j.attempt < j.max_attempts THEN 'retryable' ELSE 'dead' END
			WHEN 3 THEN 'dead'
			WHEN 4 THEN CASE WHEN u.delay_us > 0 THEN 'scheduled' ELSE 'available' END
			WHEN 5 THEN 'available'
			ELSE 'cancelled' END,
		attempt = CASE WHEN u.outcome IN (4, 5) THEN j.attempt - 1 ELSE j.attempt END,
		run_at = CASE
			WHEN u.outcome = 2 AND j.attempt < j.max_attempts
				THEN now() + u.delay_us * interval '1 microsecond'
			WHEN u.outcome = 4 THEN now() + greatest(u.delay_us, 0) * interval '1 microsecond'
			WHEN u.outcome = 5 THEN now()
			ELSE j.run_at END,
		finished_at = CASE
			WHEN u.outcome = 2 AND j.attempt < j.max_attempts THEN NULL
			WHEN u.outcome IN (2, 3, 6) THEN now()
			ELSE NULL END,
		errors = CASE WHEN u.outcome IN (2, 3)
			THEN j.errors || jsonb_build_array(jsonb_build_object(
				'attempt', j.attempt, 'at', ` + nowRFC3339 + `, 'message', u.error))
			ELSE j.errors END,
		lease_token = 0, lease_expires_at = NULL, leased_by = NULL
	FROM unnest($3::bigint[], $4::int[], $5::bigint[], $6::smallint[], $7::text[], $8::bigint[])
		AS u(id, attempt, token, outcome, error, delay_us)
	WHERE ` + leaseMatch + `
	RETURNING j.id, j.tenant_id, j.queue, j.state, j.run_at
), notes AS (` + notesPre + `upd` + notesMid + `upd` + notesPost + `)
SELECT id, tenant_id, queue, state, run_at FROM upd` + notesFilter

const sqlHeartbeat = `UPDATE switchyard.jobs j SET lease_expires_at = now() + $4::bigint * interval '1 microsecond'
FROM unnest($1::bigint[], $2::int[], $3::bigint[]) AS u(id, attempt, token)
WHERE ` + leaseMatch + `
RETURNING j.id`

const sqlSetProgress = `UPDATE switchyard.jobs SET progress = $4::jsonb
WHERE id = $1 AND state = 'running' AND attempt = $2 AND lease_token = $3`

const sqlGet = `SELECT ` + jobColumns + ` FROM switchyard.jobs WHERE id = $1 AND tenant_id = $2`

// List is assembled from these fragments, one cached statement per
// combination of filters, so each plan fits its filters.
const (
	sqlListBase   = `SELECT ` + jobColumns + ` FROM switchyard.jobs WHERE tenant_id = $1`
	sqlListQueue  = ` AND queue = $`
	sqlListState  = ` AND state = $`
	sqlListKind   = ` AND kind = $`
	sqlListTag    = ` AND tags @> ARRAY[$`
	sqlListTagEnd = `::text]`
	sqlListBefore = ` AND id < $`
	sqlListOrder  = ` ORDER BY id DESC LIMIT $`
)

// sqlCancel moves a live job to $5 (cancelled or dead). prev locks the row
// and, after waiting for a concurrent writer, sees its latest version, so a
// job that is already final is reported as it really is.
const sqlCancel = `WITH prev AS (
	SELECT ` + jobColumns + ` FROM switchyard.jobs WHERE id = $3 AND tenant_id = $4 FOR UPDATE
), upd AS (
	UPDATE switchyard.jobs j SET state = $5::text, finished_at = now(),
		lease_token = 0, lease_expires_at = NULL, leased_by = NULL
	FROM prev WHERE j.id = prev.id AND prev.state IN ` + liveStates + `
	RETURNING ` + jobColumnsJ + `, prev.state AS prev_state
), notes AS (
	SELECT pg_notify($1::text, json_build_object('k', 'cancel', 't', tenant_id, 'q', queue, 'j', id, 'o', $2::text)::text)
	FROM upd WHERE prev_state = 'running'
)
SELECT true, prev_state, ` + jobColumns + ` FROM upd` + notesFilter + `
UNION ALL
SELECT false, state, ` + jobColumns + ` FROM prev WHERE state NOT IN ` + liveStates

// sqlRetry makes a dead or cancelled job available again.
const sqlRetry = `WITH prev AS (
	SELECT ` + jobColumns + ` FROM switchyard.jobs WHERE id = $3 AND tenant_id = $4 FOR UPDATE
), upd AS (
	UPDATE switchyard.jobs j SET state = 'available', run_at = now(), finished_at = NULL,
		max_attempts = CASE WHEN j.attempt >= j.max_attempts THEN j.attempt + 1 ELSE j.max_attempts END,
		lease_token = 0, lease_expires_at = NULL, leased_by = NULL
	FROM prev WHERE j.id = prev.id AND prev.state IN ('dead', 'cancelled')
	RETURNING ` + jobColumnsJ + `
), notes AS (
	SELECT pg_notify($1::text, json_build_object('k', 'insert', 't', tenant_id, 'q', queue, 'o', $2::text)::text) FROM upd
)
SELECT true, ` + jobColumns + ` FROM upd` + notesFilter + `
UNION ALL
SELECT false, ` + jobColumns + ` FROM prev WHERE state NOT IN ('dead', 'cancelled')`

const sqlSetQueuePaused = `WITH up AS (
	INSERT INTO switchyard.queues AS q (tenant_id, name, paused) VALUES ($3, $4, $5)
	ON CONFLICT (tenant_id, name) DO UPDATE SET paused = excluded.paused, updated_at = now()
	RETURNING q.tenant_id, q.name
)
SELECT pg_notify($1::text, json_build_object('k', 'queue', 't', tenant_id, 'q', name, 'o', $2::text)::text) FROM up`

const sqlSetQueueConcurrency = `WITH up AS (
	INSERT INTO switchyard.queues AS q (tenant_id, name, concurrency) VALUES ($3, $4, $5)
	ON CONFLICT (tenant_id, name) DO UPDATE SET concurrency = excluded.concurrency, updated_at = now()
	RETURNING q.tenant_id, q.name
)
SELECT pg_notify($1::text, json_build_object('k', 'queue', 't', tenant_id, 'q', name, 'o', $2::text)::text) FROM up`

const sqlQueueSettings = `SELECT paused, concurrency FROM switchyard.queues WHERE tenant_id = $1 AND name = $2`

// sqlQueueNames finds the queues with waiting jobs through the indexes: a
// loose index scan over jobs_fetch for available jobs, and the (small)
// pending set for scheduled and retryable ones.
const sqlQueueNames = `WITH RECURSIVE avail AS (
	(SELECT queue FROM switchyard.jobs WHERE tenant_id = $1 AND state = 'available' ORDER BY queue LIMIT 1)
	UNION ALL
	SELECT (SELECT queue FROM switchyard.jobs WHERE tenant_id = $1 AND state = 'available' AND queue > avail.queue ORDER BY queue LIMIT 1)
	FROM avail WHERE avail.queue IS NOT NULL
)
SELECT queue FROM avail WHERE queue IS NOT NULL
UNION SELECT name FROM switchyard.queues WHERE tenant_id = $1
UNION SELECT DISTINCT queue FROM switchyard.jobs WHERE tenant_id = $1 AND state IN ('scheduled', 'retryable')`

// sqlAllQueueNames is sqlQueueNames over every tenant: the loose index scan
// walks jobs_fetch by (tenant_id, queue).
const sqlAllQueueNames = `WITH RECURSIVE avail AS (
	(SELECT tenant_id, queue FROM switchyard.jobs WHERE state = 'available' ORDER BY tenant_id, queue LIMIT 1)
	UNION ALL
	SELECT nxt.tenant_id, nxt.queue FROM avail, LATERAL (
		SELECT tenant_id, queue FROM switchyard.jobs
		WHERE state = 'available' AND (tenant_id, queue) > (avail.tenant_id, avail.queue)
		ORDER BY tenant_id, queue LIMIT 1
	) nxt
)
SELECT tenant_id, queue FROM avail
UNION SELECT tenant_id, name FROM switchyard.queues
UNION SELECT DISTINCT tenant_id, queue FROM switchyard.jobs WHERE state IN ('scheduled', 'retryable')`

const sqlDeleteJob = `WITH prev AS (
	SELECT ` + jobColumns + ` FROM switchyard.jobs WHERE id = $1 AND tenant_id = $2 FOR UPDATE
), del AS (
	DELETE FROM switchyard.jobs j USING prev WHERE j.id = prev.id AND prev.state <> 'running'
	RETURNING j.id
)
SELECT EXISTS (SELECT 1 FROM del), ` + jobColumns + ` FROM prev`

const sqlInsertKey = `INSERT INTO switchyard.api_keys (id, tenant_id, name, role, prefix, hash, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, now()), $8)`

// sqlLockKeys makes "create the first key if there is none" atomic across
// nodes starting together.
const sqlLockKeys = `LOCK TABLE switchyard.api_keys IN SHARE ROW EXCLUSIVE MODE`

const sqlTouchKey = `UPDATE switchyard.api_keys SET last_used_at = now() WHERE id = $1`

// sqlRevokeKey revokes a live key; the second column says whether the key
// exists at all (revoked already or not).
const sqlRevokeKey = `WITH upd AS (
	UPDATE switchyard.api_keys SET revoked_at = now()
	WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL
	RETURNING id
)
SELECT EXISTS (SELECT 1 FROM upd), EXISTS (SELECT 1 FROM switchyard.api_keys WHERE id = $1 AND tenant_id = $2)`

const sqlAnyKey = `SELECT EXISTS (SELECT 1 FROM switchyard.api_keys)`

const sqlKeyByHash = `SELECT id, tenant_id, name, role, prefix, hash, created_at, expires_at, last_used_at, revoked_at
FROM switchyard.api_keys WHERE hash = $1`

// sqlQueues returns one row per (queue, state with jobs), or one row with a
// NULL state for a queue that has a settings row but no jobs.
const sqlQueues = `SELECT coalesce(q.name, c.queue), coalesce(q.paused, false), coalesce(q.concurrency, 0), q.updated_at, c.state, coalesce(c.n, 0)
FROM (SELECT name, paused, concurrency, updated_at FROM switchyard.queues WHERE tenant_id = $1) q
FULL JOIN (
	SELECT queue, state, count(*) AS n FROM switchyard.jobs WHERE tenant_id = $1 GROUP BY queue, state
) c ON c.queue = q.name
ORDER BY 1`

const sqlPurgeQueue = `DELETE FROM switchyard.jobs WHERE tenant_id = $1 AND queue = $2 AND state <> 'running'`

// sqlRescueSelect locks expired leases; Go then computes each job's retry
// delay with the engine's policy.
const sqlRescueSelect = `SELECT ` + jobColumns + ` FROM switchyard.jobs
WHERE state = 'running' AND lease_expires_at < now()
ORDER BY lease_expires_at
LIMIT $1
FOR UPDATE SKIP LOCKED`

// leaseExpiredMessage is the error recorded on a rescued job.
const leaseExpiredMessage = `lease expired: the worker stopped heartbeating before the job finished`

// sqlNextLeaseExpiry answers microseconds from now to the earliest lease
// expiry, NULL if nothing runs; min() reads one end of the lease index.
const sqlNextLeaseExpiry = `SELECT (extract(epoch FROM min(lease_expires_at) - now()) * 1000000)::bigint
FROM switchyard.jobs WHERE state = 'running'`

const sqlPromote = `WITH due AS (
	SELECT id FROM switchyard.jobs
	WHERE state IN ('scheduled', 'retryable') AND run_at <= now()
	ORDER BY run_at
	LIMIT $3
	FOR UPDATE SKIP LOCKED
), upd AS (
	UPDATE switchyard.jobs j SET state = 'available' FROM due WHERE j.id = due.id
	RETURNING j.tenant_id, j.queue, j.state, j.run_at
), notes AS (` + notesPre + `upd` + notesMid + `upd` + notesPost + `)
SELECT tenant_id, queue, state, run_at FROM upd` + notesFilter

// sqlNextPending answers microseconds from now to the earliest pending
// run_at, NULL if none.
const sqlNextPending = `SELECT (extract(epoch FROM min(run_at) - now()) * 1000000)::bigint
FROM switchyard.jobs WHERE state IN ('scheduled', 'retryable')`

// sqlDeleteFinished repeats the partial index's predicate so that a generic
// plan, which cannot see $1's value, still uses the finished index.
const sqlDeleteFinished = `DELETE FROM switchyard.jobs WHERE id IN (
	SELECT id FROM switchyard.jobs
	WHERE state = $1 AND state IN ('succeeded', 'cancelled', 'dead')
		AND finished_at < now() - $2::bigint * interval '1 microsecond'
	ORDER BY finished_at
	LIMIT $3
)`

// sqlTryLead takes the row if absent, expired, already ours, or held by a
// leader whose session connection ($4 records ours) no longer exists; it
// answers whether we lead, and the pid of the session the row named before.
const sqlTryLead = `WITH up AS (
	INSERT INTO switchyard.leaders AS l (name, leader_id, leader_pid, elected_at, expires_at)
	VALUES ($1, $2, $4, now(), now() + $3::bigint * interval '1 microsecond')
	ON CONFLICT (name) DO UPDATE SET
		leader_id = excluded.leader_id,
		leader_pid = excluded.leader_pid,
		elected_at = CASE WHEN l.leader_id = excluded.leader_id THEN l.elected_at ELSE now() END,
		expires_at = excluded.expires_at
	WHERE l.leader_id = excluded.leader_id OR l.expires_at < now()
		OR (l.leader_pid <> 0 AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.leader_pid))
	RETURNING true AS ok
)
SELECT coalesce((SELECT ok FROM up), false),
	coalesce((SELECT leader_pid FROM switchyard.leaders WHERE name = $1), 0)`

// sqlSessionLock waits for the leadership session lock.
const sqlSessionLock = `SELECT pg_advisory_lock($1)`

// sqlResign deletes our row (a data-modifying CTE always runs) and wakes the
// other nodes so one of them takes over without waiting for expiry.
const sqlResign = `WITH d AS (
	DELETE FROM switchyard.leaders WHERE name = $3 AND leader_id = $4 RETURNING name
)
SELECT pg_notify($1::text, json_build_object('k', 'leader', 'o', $2::text)::text), (SELECT count(*) FROM d)`

// vacuumLockKey serialises the background vacuums of all nodes.
const vacuumLockKey int64 = migrationLockKey + 1

const (
	sqlVacuumTryLock = `SELECT pg_try_advisory_lock($1)`
	sqlVacuumUnlock  = `SELECT pg_advisory_unlock($1)`
	// TRUNCATE false: giving empty trailing pages back to the file system
	// needs an ACCESS EXCLUSIVE lock that would stall every lease; the pages
	// are reused anyway. SKIP_LOCKED: if another VACUUM holds the table,
	// that one does the job.
	sqlVacuum = `VACUUM (TRUNCATE false, SKIP_LOCKED true) switchyard.jobs`
)
