package switchyard

import (
	"errors"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// Errors callers test with errors.Is. The HTTP server maps them to status
// codes in one place.
var (
	// ErrInvalidArgument: the request is malformed; nothing was written.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: no such job (or not in this tenant).
	ErrNotFound = store.ErrNotFound
	// ErrConflict: the operation does not apply in the job's current state.
	ErrConflict = store.ErrConflict
	// ErrStaleLease: the lease token is not the job's current one; a newer
	// attempt, a cancel or a rescue took the job from this worker.
	ErrStaleLease = store.ErrStaleLease
	// ErrUnsupported: the operation needs another backend.
	ErrUnsupported = errors.New("unsupported")
	// ErrUnauthenticated: the API key is unknown, revoked or expired.
	ErrUnauthenticated = errors.New("unauthenticated")
)
