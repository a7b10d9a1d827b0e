package queue

import "time"

// On a virtual machine every wake-up from idle costs milliseconds of CPU
// (measured here: ~1 ms for a C program's sleep, ~4.6 ms for Go's, ~12 ms
// for a wake plus one query), while further work in the same burst is
// nearly free. So an idle engine's cost is how often it wakes, and periodic
// work is shaped to wake rarely and together:
//   - it fires on multiples of its interval on the wall clock, so duties with
//     related intervals (polls, leadership renewal, rescue) share one wake;
//   - the fallback poll slows down while it finds nothing, up to
//     idlePollFactor times its interval, and speeds up again as soon as
//     there is work.

// idlePollFactor bounds how far an idle fallback poll slows down. A power
// of two, so that the backed-off poll (1, 2, 4, 8 × its interval) keeps
// landing on the same wall-clock multiples as the other periodic work.
const idlePollFactor = 8

// idleTick is the period that idle periodic work lines up on: the default
// poll backed off (8 × 1s), leadership renewal on PostgreSQL (24s / 3), and
// the default rescue and retention intervals, rounded down to it.
const idleTick = 8 * time.Second

// onIdleTick rounds d down to a multiple of idleTick when it is longer, so
// that work every d shares its wake-ups with the rest.
func onIdleTick(d time.Duration) time.Duration {
	if d < idleTick {
		return d
	}
	return d.Truncate(idleTick)
}

// alignedAfter returns the first multiple of every after now.
func alignedAfter(now time.Time, every time.Duration) time.Time {
	return now.Truncate(every).Add(every)
}

// idlePoll is a fallback poll that backs off while idle. A zero interval
// never fires.
type idlePoll struct {
	base, cur time.Duration
	timer     *time.Timer
}

func newIdlePoll(base time.Duration) *idlePoll {
	p := &idlePoll{base: base, cur: base}
	if base > 0 {
		p.timer = time.NewTimer(time.Until(alignedAfter(time.Now(), base)))
	}
	return p
}

// C is the channel to wait on; nil (never ready) without a poll.
func (p *idlePoll) C() <-chan time.Time {
	if p.timer == nil {
		return nil
	}
	return p.timer.C
}

// fired schedules the next poll after the timer fired.
func (p *idlePoll) fired() {
	if p.timer != nil {
		p.timer.Reset(time.Until(alignedAfter(time.Now(), p.cur)))
	}
}

// idle records a poll that found nothing: the next ones come slower.
func (p *idlePoll) idle() { p.cur = min(2*p.cur, idlePollFactor*p.base) }

// active records work: polls return to their base interval.
func (p *idlePoll) active() {
	if p.timer != nil && p.cur != p.base {
		p.cur = p.base
		if !p.timer.Stop() {
			select {
			case <-p.timer.C:
			default:
			}
		}
		p.timer.Reset(time.Until(alignedAfter(time.Now(), p.base)))
	}
}

func (p *idlePoll) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}
