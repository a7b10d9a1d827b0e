package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	switchyard "github.com/switchyard-dev/switchyard"
)

// Error codes of the error shape.
const (
	codeInvalidArgument      = "invalid_argument"
	codeUnauthenticated      = "unauthenticated"
	codePermissionDenied     = "permission_denied"
	codeNotFound             = "not_found"
	codeMethodNotAllowed     = "method_not_allowed"
	codeConflict             = "conflict"
	codePayloadTooLarge      = "payload_too_large"
	codeUnsupportedMediaType = "unsupported_media_type"
	codeInternal             = "internal"
	codeUnavailable          = "unavailable"
	codeRateLimited          = "rate_limited"
)

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// writeError answers with the error shape.
func writeError(w http.ResponseWriter, r *http.Request, status int, code, message string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchyard"`)
	}
	writeJSON(w, status, errorBody{errorDetail{Code: code, Message: message, RequestID: requestID(r.Context())}})
}

// fail maps an error from the client to a status and code: the one place
// where error kinds become HTTP. Internal errors are logged, and their
// details stay out of the answer.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, r, http.StatusRequestEntityTooLarge, codePayloadTooLarge, "request body is larger than the limit of "+formatBytes(tooBig.Limit))
	case errors.Is(err, switchyard.ErrInvalidArgument):
		writeError(w, r, http.StatusBadRequest, codeInvalidArgument, clientMessage(err, switchyard.ErrInvalidArgument))
	case errors.Is(err, switchyard.ErrNotFound):
		writeError(w, r, http.StatusNotFound, codeNotFound, clientMessage(err, switchyard.ErrNotFound))
	case errors.Is(err, switchyard.ErrConflict):
		writeError(w, r, http.StatusConflict, codeConflict, clientMessage(err, switchyard.ErrConflict))
	case errors.Is(err, switchyard.ErrUnauthenticated):
		writeError(w, r, http.StatusUnauthorized, codeUnauthenticated, clientMessage(err, switchyard.ErrUnauthenticated))
	case errors.Is(err, switchyard.ErrPermissionDenied):
		writeError(w, r, http.StatusForbidden, codePermissionDenied, clientMessage(err, switchyard.ErrPermissionDenied))
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The client went away; nobody reads this answer.
		writeError(w, r, 499, codeUnavailable, "request cancelled")
	default:
		s.log.Error("server: internal error", "method", r.Method, "path", r.URL.Path, "request_id", requestID(r.Context()), "err", err)
		writeError(w, r, http.StatusInternalServerError, codeInternal, "internal error (request "+requestID(r.Context())+"); see the server log")
	}
}

// clientMessage turns a wrapped error into a message for the caller: without
// the package prefixes and the sentinel's own text, which the code says.
func clientMessage(err, kind error) string {
	msg := err.Error()
	msg = strings.ReplaceAll(msg, "switchyard: ", "")
	for _, driver := range []string{"sqlite: ", "postgres: "} {
		msg = strings.ReplaceAll(msg, driver, "")
	}
	msg = strings.ReplaceAll(msg, kind.Error()+": ", "")
	msg = strings.TrimSuffix(msg, ": "+kind.Error())
	return msg
}

func formatBytes(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	}
	return itoa(n) + " bytes"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types are encoded; this is a bug, not bad input.
		http.Error(w, `{"error":{"code":"internal","message":"encode response"}}`, http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b = append(b, '\n')
	_, _ = w.Write(b)
}
