package hub_test

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard-dev/switchyard/internal/hub"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

// History bounded by age, on the bubble's fake clock: a position whose next
// message has aged out gets a gap; a topic nobody subscribed to for the TTL
// is forgotten, and a position in it gets a gap too.
func TestGapWhenHistoryOld(t *testing.T) {
	t.Parallel()
	path := testdb.SQLitePath(t)
	synctest.Test(t, func(t *testing.T) {
		h := node(t, "sqlite:"+path, hub.Config{HistoryTTL: time.Minute})
		watch, start := subscribe(t, h, "default", "ticks", nil)
		epoch := start.Position.Epoch
		resume := func(from uint64) hub.Replay {
			t.Helper()
			s := h.NewSubscriber("default")
			defer s.Close()
			r, err := s.Subscribe("ticks", &hub.Position{Offset: from, Epoch: epoch})
			if err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			return r
		}

		for _, d := range seq(0, 3) {
			publish(t, h, "default", "ticks", "x", d)
		}
		take(t, watch, 3)
		time.Sleep(30 * time.Second)
		for _, d := range seq(3, 5) {
			publish(t, h, "default", "ticks", "x", d)
		}
		take(t, watch, 2)
		if r := resume(0); r.Gap || !slices.Equal(datas(r.Missed), seq(0, 5)) {
			t.Errorf("after 30s, resume from 0 = gap %v, %v; want all five", r.Gap, datas(r.Missed))
		}

		time.Sleep(45 * time.Second) // the first three are 75s old now
		if r := resume(0); !r.Gap {
			t.Errorf("resume from 0 with its next message aged out = %v, want a gap", datas(r.Missed))
		}
		if r := resume(3); r.Gap || !slices.Equal(datas(r.Missed), seq(3, 5)) {
			t.Errorf("resume from 3 = gap %v, %v; want the last two", r.Gap, datas(r.Missed))
		}

		time.Sleep(time.Minute) // all aged out
		if r := resume(5); r.Gap || len(r.Missed) != 0 {
			t.Errorf("resume from the newest offset = %+v, want nothing missed and no gap", r)
		}
		if r := resume(4); !r.Gap {
			t.Errorf("resume from 4 with 5 aged out = %+v, want a gap", r)
		}
		if st := h.Stats(); st.Topics != 1 || st.History != 0 {
			t.Errorf("Stats = %+v, want one topic with empty history", st)
		}

		// Nobody subscribed for longer than the TTL: the sweep forgets the
		// topic, and a position in it can no longer be matched.
		watch.Close()
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if st := h.Stats(); st.Topics != 0 || st.Subscribers != 0 {
			t.Errorf("Stats after the TTL without subscribers = %+v, want nothing", st)
		}
		if r := resume(5); !r.Gap {
			t.Errorf("resume in a forgotten topic = %+v, want a gap", r)
		}
	})
}
