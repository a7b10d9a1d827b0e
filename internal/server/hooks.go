package server

import (
	"errors"
	"io"
	"net/http"

	switchyard "github.com/switchyard-dev/switchyard"
	"github.com/switchyard-dev/switchyard/internal/webhook"
)

// POST /hooks/{source}: an inbound webhook. It needs no key: the source's
// signature scheme is the credential. It answers 2xx only once the event
// (and any job its rules made) is committed, so a sender that sees an
// error retries, and its retry is recognised by its delivery id.
func (s *Server) receiveHook(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	src := r.PathValue("source")
	got, err := s.c.ReceiveWebhook(r.Context(), switchyard.Webhook{SourceID: src, Header: r.Header, Body: body})
	scheme := ""
	if got != nil {
		scheme = got.Scheme
	}
	if err != nil {
		reason := hookRejection(err)
		if reason != "" {
			s.metrics.hookRejected(scheme, reason)
		}
		if errors.Is(err, switchyard.ErrBadSignature) {
			s.record(r, switchyard.AuditEntry{
				TenantID: got.TenantID, Actor: switchyard.AuditActor{Type: "anonymous", ID: s.clientIP(r).String()},
				Action: "hooks.receive", Target: src, Result: switchyard.AuditDenied, Status: http.StatusUnauthorized,
				ClientIP: s.clientIP(r).String(), RequestID: requestID(r.Context()), Detail: scheme + ": " + reason,
			})
		}
		s.fail(w, r, err)
		return
	}
	s.metrics.hookReceived(scheme)
	status := http.StatusCreated
	if got.Existing {
		status = http.StatusOK
	}
	writeJSON(w, status, hookAnswer{EventID: got.Event.ID, Type: got.Event.CloudEvent.Type, Existing: got.Existing})
}

// hookAnswer is what a sender is told of its delivery.
type hookAnswer struct {
	EventID  string `json:"event_id"`
	Type     string `json:"type"`
	Existing bool   `json:"existing"` // a repeat of a delivery recorded before
}

// hookRejection names why a webhook was refused, for the metric; "" for a
// failure that is not the sender's (the store's).
func hookRejection(err error) string {
	switch {
	case errors.Is(err, webhook.ErrMissingSignature):
		return "missing_signature"
	case errors.Is(err, webhook.ErrTimestamp):
		return "timestamp"
	case errors.Is(err, webhook.ErrMalformed):
		return "malformed"
	case errors.Is(err, switchyard.ErrBadSignature):
		return "bad_signature"
	case errors.Is(err, switchyard.ErrNotFound):
		return "unknown_source"
	case errors.Is(err, switchyard.ErrInvalidArgument):
		return "invalid"
	}
	return ""
}

// GET /hooks/{source}: a provider's subscription handshake (Meta's
// hub.challenge), answered with the challenge as plain text.
func (s *Server) hookHandshake(w http.ResponseWriter, r *http.Request) {
	challenge, err := s.c.WebhookHandshake(r.Context(), r.PathValue("source"), r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, challenge)
}
