package switchyard

import (
	"context"
	"fmt"
	"time"

	"github.com/switchyard-dev/switchyard/internal/ratelimit"
)

// RateDecision is the answer of a rate limiter to one request.
type RateDecision struct {
	Allowed bool
	// Limit is the bucket's size (RateLimit-Limit).
	Limit int
	// Remaining is how many requests the bucket still holds
	// (RateLimit-Remaining).
	Remaining int
	// Reset is how long until the bucket is full again (RateLimit-Reset).
	Reset time.Duration
	// RetryAfter is, for a refused request, how long until one would be
	// allowed (Retry-After).
	RetryAfter time.Duration
}

// RateLimit takes one request's token from the bucket named bucket. On
// PostgreSQL the bucket is shared by every node (see internal/ratelimit for
// the scheme); on SQLite it lives in this process.
func (c *Client) RateLimit(ctx context.Context, bucket string, l RateLimit) (RateDecision, error) {
	d, err := c.limiter.Allow(ctx, bucket, ratelimit.Limit{Rate: l.RequestsPerSecond, Burst: l.Burst})
	if err != nil {
		return RateDecision{}, fmt.Errorf("switchyard: rate limit: %w", err)
	}
	return RateDecision{Allowed: d.Allowed, Limit: d.Limit, Remaining: d.Remaining, Reset: d.Reset, RetryAfter: d.RetryAfter}, nil
}
