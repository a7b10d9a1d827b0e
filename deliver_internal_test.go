package switchyard

import (
	"testing"
	"testing/synctest"
	"time"
)

// The circuit breaker opens after BreakerFailures failed attempts in a row,
// lets one trial through when its cooldown is over, doubles the cooldown
// when the trial fails, and closes when one succeeds. The concurrency
// limit holds deliveries back while MaxConcurrency are in flight. Time is
// synctest's, so nothing here waits for real.
func TestDeliveryBreakerAndLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := &deliverer{
			cfg:      DeliveryConfig{BreakerFailures: 3, BreakerCooldown: 30 * time.Second},
			breakers: map[string]*breaker{},
			inFlight: map[string]int{},
		}
		ep := &Endpoint{ID: "ep_1", EndpointSpec: EndpointSpec{MaxConcurrency: 2}}
		other := &Endpoint{ID: "ep_2"}
		admit := func(e *Endpoint) func(bool) {
			t.Helper()
			wait, release := d.admit(e, time.Now())
			if release == nil {
				t.Fatalf("%s: held back for %v, want admitted", e.ID, wait)
			}
			return release
		}
		heldBack := func(e *Endpoint, least time.Duration) {
			t.Helper()
			if wait, release := d.admit(e, time.Now()); release != nil || wait < least {
				t.Fatalf("%s: admitted or held back for %v; want held back at least %v", e.ID, wait, least)
			}
		}

		// The concurrency limit: two in flight, the third waits.
		r1, r2 := admit(ep), admit(ep)
		heldBack(ep, 100*time.Millisecond)
		r1(true)
		r3 := admit(ep)
		r2(true)
		r3(true)

		// Three failures in a row open the circuit; the other endpoint is
		// not affected.
		for range 3 {
			admit(ep)(false)
		}
		heldBack(ep, 29*time.Second)
		admit(other)(true)

		// After the cooldown, one trial goes; the others wait for it.
		time.Sleep(31 * time.Second)
		trial := admit(ep)
		heldBack(ep, time.Second)
		trial(false) // the trial fails: open again, for twice as long
		time.Sleep(31 * time.Second)
		heldBack(ep, 25*time.Second)
		time.Sleep(30 * time.Second)
		admit(ep)(true) // the next trial succeeds: closed
		r1, r2 = admit(ep), admit(ep)
		r1(true)
		r2(true)

		// A failure after success does not open it; only a run does.
		admit(ep)(false)
		admit(ep)(true)
		admit(ep)(false)
		admit(ep)(false)
		admit(ep)(true)
	})
}

func TestDeliveryBackoffAndRetryAfter(t *testing.T) {
	cfg := DeliveryConfig{}
	cfg.setDefaults()
	total := time.Duration(0)
	for attempt := 1; attempt < cfg.MaxAttempts; attempt++ {
		w := cfg.NextRetry(attempt)
		base := min(cfg.BackoffBase<<(attempt-1), cfg.BackoffCap)
		if w < base*8/10 || w > base*12/10 {
			t.Errorf("retry after attempt %d waits %v, want %v ± 20%%", attempt, w, base)
		}
		total += base
	}
	if total < 60*time.Hour || total > 84*time.Hour {
		t.Errorf("the default schedule spans %v, want about three days", total)
	}
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"-1":                            0,
		"soon":                          0,
		"999999999":                     maxRetryAfter,
		"Sat, 28 Nov 2026 12:00:30 GMT": 30 * time.Second,
		"Sat, 28 Nov 2026 11:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("Retry-After %q = %v, want %v", v, got, want)
		}
	}
}
