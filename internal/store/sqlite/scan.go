package sqlite

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// scanner is *sql.Rows, *sql.Row or rowScanner.
type scanner interface {
	Scan(dest ...any) error
}

// sqlInt and sqlNullInt scan INTEGER columns. database/sql converts an
// int64 into a *int64 or *int through reflection; a Scanner is called
// directly, which matters when a lease reads back hundreds of rows.
type sqlInt int64

func (v *sqlInt) Scan(src any) error {
	i, ok := src.(int64)
	if !ok {
		return fmt.Errorf("want INTEGER, got %T", src)
	}
	*v = sqlInt(i)
	return nil
}

type sqlNullInt struct {
	v     int64
	valid bool
}

func (v *sqlNullInt) Scan(src any) error {
	switch x := src.(type) {
	case nil:
		*v = sqlNullInt{}
	case int64:
		*v = sqlNullInt{v: x, valid: true}
	default:
		return fmt.Errorf("want INTEGER or NULL, got %T", src)
	}
	return nil
}

func (v sqlNullInt) time() time.Time {
	if !v.valid {
		return time.Time{}
	}
	return fromMicros(v.v)
}

// sqlNullText scans a nullable TEXT column into a string ("" for NULL).
type sqlNullText string

func (v *sqlNullText) Scan(src any) error {
	switch x := src.(type) {
	case nil:
		*v = ""
	case string:
		*v = sqlNullText(x)
	case []byte:
		*v = sqlNullText(x)
	default:
		return fmt.Errorf("want TEXT or NULL, got %T", src)
	}
	return nil
}

// jobRow holds the scan destinations of one jobs row (jobCols order). It is
// reused across rows so that scanning allocates only the values themselves.
type jobRow struct {
	id, priority, attempt, maxAttempts, runAt, createdAt, timeoutMS, leaseToken sqlInt
	startedAt, finishedAt, leaseExpiresAt                                       sqlNullInt
	tenantID, queue, kind, state, tags                                          string
	uniqueKey, leasedBy                                                         sqlNullText
	args, result, errors, progress                                              []byte
	dest                                                                        []any
}

func newJobRow() *jobRow {
	r := &jobRow{}
	r.dest = []any{&r.id, &r.tenantID, &r.queue, &r.kind, &r.args, &r.priority, &r.state,
		&r.attempt, &r.maxAttempts, &r.runAt, &r.createdAt, &r.startedAt, &r.finishedAt,
		&r.timeoutMS, &r.uniqueKey, &r.tags, &r.result, &r.errors, &r.progress,
		&r.leaseToken, &r.leaseExpiresAt, &r.leasedBy}
	return r
}

// scan reads one row into a new Job.
func (r *jobRow) scan(sc scanner) (*store.Job, error) {
	if err := sc.Scan(r.dest...); err != nil {
		return nil, err
	}
	tags, err := decodeTags(r.tags)
	if err != nil {
		return nil, fmt.Errorf("job %d: %w", r.id, err)
	}
	return &store.Job{
		ID:             int64(r.id),
		TenantID:       r.tenantID,
		Queue:          r.queue,
		Kind:           r.kind,
		Args:           r.args,
		Priority:       int(r.priority),
		State:          r.state,
		Attempt:        int(r.attempt),
		MaxAttempts:    int(r.maxAttempts),
		RunAt:          fromMicros(int64(r.runAt)),
		CreatedAt:      fromMicros(int64(r.createdAt)),
		StartedAt:      r.startedAt.time(),
		FinishedAt:     r.finishedAt.time(),
		Timeout:        time.Duration(r.timeoutMS) * time.Millisecond,
		UniqueKey:      string(r.uniqueKey),
		Tags:           tags,
		Result:         r.result,
		Errors:         r.errors,
		Progress:       r.progress,
		LeaseToken:     int64(r.leaseToken),
		LeaseExpiresAt: r.leaseExpiresAt.time(),
		LeasedBy:       string(r.leasedBy),
	}, nil
}

// scanJob reads a single row (a QueryRow) into a Job.
func scanJob(sc scanner) (*store.Job, error) {
	return newJobRow().scan(sc)
}

// leaseRow holds the scan destinations of stLeaseSelect (leaseCols).
type leaseRow struct {
	id, priority, attempt, maxAttempts, runAt, createdAt, timeoutMS sqlInt
	kind, tags                                                      string
	uniqueKey                                                       sqlNullText
	args, result, errors, progress                                  []byte
	dest                                                            []any
}

func newLeaseRow() *leaseRow {
	r := &leaseRow{}
	r.dest = []any{&r.id, &r.kind, &r.args, &r.priority, &r.attempt, &r.maxAttempts,
		&r.runAt, &r.createdAt, &r.timeoutMS, &r.uniqueKey, &r.tags, &r.result,
		&r.errors, &r.progress}
	return r
}

// decodeTags parses the tags column; never returns nil.
func decodeTags(s string) ([]string, error) {
	if s == "[]" || s == "" {
		return []string{}, nil
	}
	tags := []string{}
	if err := json.Unmarshal([]byte(s), &tags); err != nil {
		return nil, fmt.Errorf("decode tags: %w", err)
	}
	return tags, nil
}

// encodeTags renders tags as a JSON array. Plain tags (the usual case) are
// written directly; anything needing escapes goes through encoding/json.
func encodeTags(tags []string) (string, error) {
	if len(tags) == 0 {
		return "[]", nil
	}
	n := 2
	for _, t := range tags {
		if !plainJSONString(t) {
			b, err := json.Marshal(tags)
			if err != nil {
				return "", fmt.Errorf("encode tags: %w", err)
			}
			return string(b), nil
		}
		n += len(t) + 3
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, t := range tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, t...)
		b = append(b, '"')
	}
	b = append(b, ']')
	return string(b), nil
}

// plainJSONString reports whether s can be put between quotes as it is.
func plainJSONString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// nullText maps a nil JSON value to SQL NULL. JSON is bound as a string: a
// []byte would be stored as a BLOB, which the STRICT TEXT columns reject.
func nullText(b []byte) any {
	if b == nil {
		return nil
	}
	return string(b)
}

// nullString maps "" to SQL NULL.
func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// isFinal reports whether a state is final.
func isFinal(state string) bool {
	switch state {
	case store.StateSucceeded, store.StateDead, store.StateCancelled:
		return true
	}
	return false
}
