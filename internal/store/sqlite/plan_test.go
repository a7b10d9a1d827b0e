package sqlite

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// placeholders returns as many nil arguments as q has parameters.
func placeholders(q string) []any {
	n, hi := 0, 0 // plain '?' count, highest '?N'
	for _, m := range regexp.MustCompile(`\?(\d*)`).FindAllStringSubmatch(q, -1) {
		n++
		if m[1] != "" {
			k, _ := strconv.Atoi(m[1])
			hi = max(hi, k)
		}
	}
	if hi > 0 {
		return make([]any, hi)
	}
	return make([]any, n)
}

// The statements that run per job must not build temporary b-trees, and
// every statement must find its rows through the index meant for it: a
// schema or query edit that silently loses either turns into a full scan
// or a several-fold slowdown.
func TestStatementPlans(t *testing.T) {
	t.Parallel()
	s := openTest(t)
	conn := s.w.conn
	cases := []struct {
		id          stmtID
		uses        string // in EXPLAIN QUERY PLAN
		noEphemeral bool
	}{
		{stInsert0, "", true},
		{stInsert0 + insertSizes - 1, "", true},
		{stInsertExact0 + exactRows - 1, "", true},
		{stEvents0 + exactRows - 1, "", true},
		{stJobByID, "INTEGER PRIMARY KEY", true},
		{stJobByUnique, "INDEX jobs_unique", true},
		{stUniqueHolder, "INDEX jobs_unique", true},
		{stLeaseSelect, "INDEX jobs_fetch", false},
		{stLeaseMark0, "INTEGER PRIMARY KEY", false},
		{stLeaseMark0 + chunkSizes - 1, "INTEGER PRIMARY KEY", false},
		{stCompleteSucceeded, "INTEGER PRIMARY KEY", true},
		{stSucceed0 + 1, "INTEGER PRIMARY KEY", false},
		{stSucceed0 + chunkSizes - 1, "INTEGER PRIMARY KEY", false},
		// RETURNING collects its rows in a temporary b-tree; these outcomes
		// are the rare ones.
		{stCompleteFailed, "INTEGER PRIMARY KEY", false},
		{stCompleteDead, "INTEGER PRIMARY KEY", true},
		{stCompleteSnoozed, "INTEGER PRIMARY KEY", false},
		{stCompleteCancelled, "INTEGER PRIMARY KEY", true},
		{stHeartbeat, "INTEGER PRIMARY KEY", true},
		{stSetProgress, "INTEGER PRIMARY KEY", true},
		{stRescueRetry, "INTEGER PRIMARY KEY", true},
		{stRescueDead, "INTEGER PRIMARY KEY", true},
		{stNextLeaseExpiry, "INDEX jobs_lease", false},
		{stPromote, "INDEX jobs_pending", false},
		{stNextPending, "INDEX jobs_pending", false},
		{stDeleteSucceeded, "INDEX jobs_finished", false},
		{stDeleteCancelled, "INDEX jobs_finished", false},
		{stDeleteDead, "INDEX jobs_finished", false},
		{stEventBySource, "INDEX sqlite_autoindex_events_1", true},
	}
	for _, c := range cases {
		q := stmtSQL[c.id]
		args := placeholders(q)
		if c.uses != "" {
			rows, err := conn.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+q, args...)
			if err != nil {
				t.Fatalf("plan of %s: %v", q, err)
			}
			var plan []string
			for rows.Next() {
				var id, parent, notused int
				var detail string
				if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, detail)
			}
			rows.Close()
			if !strings.Contains(strings.Join(plan, "\n"), c.uses) {
				t.Errorf("plan of %s\n%s\ndoes not use %s", q, strings.Join(plan, "\n"), c.uses)
			}
		}
		if c.noEphemeral {
			rows, err := conn.QueryContext(context.Background(), "EXPLAIN "+q, args...)
			if err != nil {
				t.Fatalf("explain %s: %v", q, err)
			}
			cols, _ := rows.Columns()
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			for rows.Next() {
				if err := rows.Scan(ptrs...); err != nil {
					t.Fatal(err)
				}
				if vals[1] == "OpenEphemeral" {
					t.Errorf("%s builds a temporary b-tree", q)
					break
				}
			}
			rows.Close()
		}
	}
}
