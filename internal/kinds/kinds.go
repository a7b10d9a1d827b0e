// Package kinds provides Switchyard's built-in job kinds, which run without
// any Go code from users: noop does nothing, sleep waits (and optionally
// fails, to show retries), and http calls a URL, so webhooks and any service
// with an HTTP API can be driven through the queue. Register adds them to a
// client.
package kinds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/switchyard-dev/switchyard"
)

// Names of the built-in kinds.
const (
	KindNoop  = "noop"
	KindSleep = "sleep"
	KindHTTP  = "http"
)

// Config configures the built-in kinds. The zero value takes every default.
type Config struct {
	// HTTPClient used by the http kind. Default: webhook.NewHTTPClient, a
	// client that refuses loopback, private, link-local (cloud metadata)
	// and other non-public addresses when it connects, uses no proxy, does
	// not follow redirects (its CheckRedirect returns
	// http.ErrUseLastResponse) and has no overall timeout (each job's
	// timeout applies). A client given here is used as it is, guard or no
	// guard.
	HTTPClient *http.Client
	// AllowPrivateTargets lets the default HTTPClient call non-public
	// addresses, such as a service on the same machine, for development
	// and tests. Off, jobs cannot be used to reach internal services
	// (server-side request forgery): their calls fail, and end dead.
	// Ignored when HTTPClient is set.
	AllowPrivateTargets bool
	// UserAgent sent by the http kind unless a job sets its own. Default
	// "switchyard".
	UserAgent string
	// MaxResponseBytes of a successful response's body kept in the job's
	// result. Default 4096.
	MaxResponseBytes int
}

// Register registers the kinds noop, sleep and http on c. Call it before
// c.Start. It fails only on an invalid Config.
func Register(c *switchyard.Client, cfg Config) error {
	if c == nil {
		return errors.New("kinds: register: client is nil")
	}
	if cfg.MaxResponseBytes < 0 {
		return fmt.Errorf("kinds: register: max response bytes must not be negative, got %d", cfg.MaxResponseBytes)
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = 4096
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "switchyard"
	}
	if !validHeaderValue(cfg.UserAgent) {
		return errors.New("kinds: register: user agent contains control characters")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = newHTTPClient(cfg.AllowPrivateTargets)
	}
	switchyard.Handle(c, runNoop)
	switchyard.Handle(c, runSleep)
	switchyard.Handle(c, (&httpKind{cfg: cfg}).run)
	return nil
}

// NoopArgs are the args of the noop kind: any JSON object, ignored.
type NoopArgs map[string]any

// Kind implements switchyard.JobArgs.
func (NoopArgs) Kind() string { return KindNoop }

// MarshalJSON encodes a nil NoopArgs as {}, since args must be an object.
func (a NoopArgs) MarshalJSON() ([]byte, error) {
	if a == nil {
		return []byte("{}"), nil
	}
	return json.Marshal(map[string]any(a))
}

func runNoop(context.Context, *switchyard.Job[NoopArgs]) error { return nil }

// maxSleep bounds the sleep kind: it is for demos and tests, and a longer
// wait is better expressed as a scheduled job.
const maxSleep = time.Hour

// SleepArgs are the args of the sleep kind.
type SleepArgs struct {
	// Duration is a Go duration such as "250ms", from 0 to 1h. Required.
	Duration string `json:"duration"`
	// Fail, if set, is the error message the attempt fails with after
	// sleeping, so demos and tests can show retries.
	Fail string `json:"fail,omitempty"`
}

// Kind implements switchyard.JobArgs.
func (SleepArgs) Kind() string { return KindSleep }

// Validate implements switchyard.Validator.
func (a SleepArgs) Validate() error {
	_, err := a.duration()
	return err
}

func (a SleepArgs) duration() (time.Duration, error) {
	if a.Duration == "" {
		return 0, errors.New(`duration is required: a Go duration such as "250ms"`)
	}
	d, err := time.ParseDuration(a.Duration)
	if err != nil {
		return 0, fmt.Errorf(`duration %q is not a Go duration such as "250ms" or "2m"`, a.Duration)
	}
	if d < 0 || d > maxSleep {
		return 0, fmt.Errorf("duration %s must be between 0 and 1h", a.Duration)
	}
	return d, nil
}

type sleepResult struct {
	SleptMS int64 `json:"slept_ms"`
}

func runSleep(ctx context.Context, job *switchyard.Job[SleepArgs]) error {
	d, err := job.Args.duration()
	if err != nil {
		return switchyard.Discard(err) // validated when decoded; kept for safety
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("sleep interrupted: %w", context.Cause(ctx))
	case <-t.C:
	}
	if job.Args.Fail != "" {
		return errors.New(job.Args.Fail)
	}
	return job.SetResult(sleepResult{SleptMS: d.Milliseconds()})
}
