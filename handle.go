package switchyard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/switchyard-dev/switchyard/internal/queue"
)

// HandleOption adjusts how a kind is handled.
type HandleOption func(*queue.Kind)

// WithRetry sets the kind's retry policy (default: the client's).
func WithRetry(p RetryPolicy) HandleOption { return func(k *queue.Kind) { k.Retry = p } }

// WithTimeout bounds each attempt of jobs of this kind that set no timeout
// of their own.
func WithTimeout(d time.Duration) HandleOption { return func(k *queue.Kind) { k.Timeout = d } }

// Validator is implemented by args that check themselves; Enqueue calls it
// and rejects the job with ErrInvalidArgument if it fails.
type Validator interface {
	Validate() error
}

// Handle registers fn to run jobs of T's kind. Register before Start.
// Enqueued args of this kind must decode into T exactly (unknown fields are
// rejected) and pass T's Validate method if it has one.
//
// fn returns nil on success, Snooze(d) to run again later without using an
// attempt, Discard(err) to end the job dead at once, or any other error to
// fail the attempt (retried with backoff while attempts remain). A panic is
// a failure. ctx is cancelled when the job is cancelled (context.Cause is
// ErrJobCancelled), times out, or the client shuts down.
func Handle[T JobArgs](c *Client, fn func(ctx context.Context, job *Job[T]) error, opts ...HandleOption) {
	var zero T
	anyObject := acceptsAnyObject[T]()
	k := &queue.Kind{
		Name: zero.Kind(),
		Validate: func(value any, encoded []byte) error {
			if v, ok := value.(T); ok {
				// Already a T: only its own checks remain.
				return validateArgs(v)
			}
			if anyObject {
				return nil // encoded is a JSON object: it decodes
			}
			_, err := decodeArgs[T](encoded)
			return err
		},
		Handler: func(ctx context.Context, exec *queue.Execution) error {
			args, err := decodeArgs[T](exec.Job.Args)
			if err != nil {
				return Discard(fmt.Errorf("args do not decode: %w", err))
			}
			return fn(ctx, &Job[T]{JobRow: rowFromStore(exec.Job), Args: args, exec: exec})
		},
	}
	for _, o := range opts {
		o(k)
	}
	c.registry.Add(k)
}

func decodeArgs[T JobArgs](data []byte) (T, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, err
	}
	if dec.More() {
		return v, errors.New("trailing data after the args object")
	}
	return v, validateArgs(v)
}

// acceptsAnyObject reports whether every JSON object decodes into T and T
// has no checks of its own, as for a map[string]any of args that are
// ignored or read loosely. Enqueue has already checked that encoded args are
// one JSON object, so for such a T decoding them again, which costs about
// as much as the rest of validating a rule's job, cannot fail.
func acceptsAnyObject[T JobArgs]() bool {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Map || t.Key() != reflect.TypeFor[string]() || t.Elem() != reflect.TypeFor[any]() {
		return false
	}
	var zero T
	_, checks := any(zero).(Validator)
	_, checksPtr := any(&zero).(Validator)
	_, decodes := any(&zero).(json.Unmarshaler)
	return !checks && !checksPtr && !decodes
}

// validateArgs runs T's Validate method, on a value or pointer receiver.
func validateArgs[T JobArgs](v T) error {
	if val, ok := any(v).(Validator); ok {
		return val.Validate()
	}
	if val, ok := any(&v).(Validator); ok {
		return val.Validate()
	}
	return nil
}

// Snooze returns an error that reschedules the job d from now without using
// an attempt: for polling an external system with growing intervals.
func Snooze(d time.Duration) error { return &queue.SnoozeError{Delay: d} }

// RetryAfter returns an error that fails the attempt with err and, if
// attempts remain, retries d from now instead of after the retry policy's
// backoff: for a remote service that said when to come back.
func RetryAfter(d time.Duration, err error) error { return &queue.RetryAfterError{Delay: d, Err: err} }

// Discard returns an error that ends the job dead at once, recording err,
// whatever attempts remain.
func Discard(err error) error { return &queue.DiscardError{Err: err} }

// Context causes a handler can test with errors.Is(context.Cause(ctx), …).
var (
	// ErrJobCancelled: the job was cancelled or discarded while running.
	ErrJobCancelled = queue.ErrJobCancelled
	// ErrShutdown: the client's shutdown deadline passed; the job will run
	// again.
	ErrShutdown = queue.ErrShutdown
	// ErrLeaseLost: the job's lease was taken over; its outcome is ignored.
	ErrLeaseLost = queue.ErrLeaseLost
)
