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
	// ErrUnauthenticated: the credential (API key, access or refresh
	// token, email and password) is unknown, wrong, revoked or expired.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: the caller's role does not allow the operation.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrTokenReused: a refresh token was used a second time; its whole
	// session (family) has been revoked. It also matches
	// ErrUnauthenticated.
	ErrTokenReused = store.ErrTokenReused
)
