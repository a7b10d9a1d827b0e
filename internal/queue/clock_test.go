package queue

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestIdlePollBacksOffAndAligns: a poll that finds nothing slows down to
// 8× its interval, firing on wall-clock multiples, and returns to its
// interval when work appears.
func TestIdlePollBacksOffAndAligns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(300 * time.Millisecond) // start off a second boundary
		p := newIdlePoll(time.Second)
		defer p.stop()
		var gaps []time.Duration
		last := time.Now()
		for range 6 {
			now := <-p.C()
			if now.Truncate(time.Second) != now {
				t.Fatalf("poll at %v, not on a second boundary", now)
			}
			gaps = append(gaps, now.Sub(last))
			last = now
			p.fired()
			p.idle()
		}
		want := []time.Duration{700 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
		for i := range want {
			if gaps[i] != want[i] {
				t.Fatalf("gaps %v, want %v", gaps, want)
			}
		}
		p.active()
		now := <-p.C()
		if gap := now.Sub(last); gap != time.Second {
			t.Fatalf("after work the next poll came %v later, want 1s", gap)
		}
	})
}

func TestIdlePollWithoutIntervalNeverFires(t *testing.T) {
	p := newIdlePoll(0)
	defer p.stop()
	if p.C() != nil {
		t.Fatal("a zero interval poll has a channel")
	}
	p.fired()
	p.idle()
	p.active()
}

func TestOnIdleTick(t *testing.T) {
	for d, want := range map[time.Duration]time.Duration{
		time.Second: time.Second, 15 * time.Second: 8 * time.Second, time.Minute: 56 * time.Second,
	} {
		if got := onIdleTick(d); got != want {
			t.Errorf("onIdleTick(%v) = %v, want %v", d, got, want)
		}
	}
}
