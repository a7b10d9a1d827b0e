package hub_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/hub"
	"github.com/switchyard-dev/switchyard/internal/store"
	"github.com/switchyard-dev/switchyard/internal/store/postgres"
	"github.com/switchyard-dev/switchyard/internal/store/sqlite"
	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// waitTimeout bounds every wait. It is a failure bound, not an
// expectation: messages normally arrive within milliseconds.
const waitTimeout = 30 * time.Second

// openStore opens a store on db ("sqlite:PATH" or a postgres:// URL) and
// closes it when t ends.
func openStore(t testing.TB, db string) store.Store {
	t.Helper()
	var (
		s   store.Store
		err error
	)
	if path, ok := strings.CutPrefix(db, "sqlite:"); ok {
		s, err = sqlite.Open(t.Context(), sqlite.Config{Path: path})
	} else {
		s, err = postgres.Open(t.Context(), postgres.Config{URL: db})
	}
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("store Close: %v", err)
		}
	})
	return s
}

// startHub starts a hub on st (routing st's notifications to it) and stops
// it when t ends, before st closes.
func startHub(t testing.TB, st store.Store, cfg hub.Config) *hub.Hub {
	t.Helper()
	cfg.Store = st
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h, err := hub.New(cfg)
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	st.Listen(h.Notify)
	if err := h.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(h.Stop)
	return h
}

// node opens a store on db and starts a hub on it.
func node(t testing.TB, db string, cfg hub.Config) *hub.Hub {
	t.Helper()
	return startHub(t, openStore(t, db), cfg)
}

func subscribe(t testing.TB, h *hub.Hub, tenant, topic string, since *hub.Position) (*hub.Subscriber, hub.Replay) {
	t.Helper()
	s := h.NewSubscriber(tenant)
	t.Cleanup(s.Close)
	r, err := s.Subscribe(topic, since)
	if err != nil {
		t.Fatalf("Subscribe(%s/%s): %v", tenant, topic, err)
	}
	return s, r
}

func publish(t testing.TB, h *hub.Hub, tenant, topic, typ string, data string) {
	t.Helper()
	if err := h.Publish(t.Context(), tenant, topic, typ, json.RawMessage(data)); err != nil {
		t.Fatalf("Publish(%s/%s): %v", tenant, topic, err)
	}
}

// next returns the subscriber's next live message.
func next(t testing.TB, s *hub.Subscriber) *hub.Message {
	t.Helper()
	select {
	case m := <-s.C():
		return m
	default:
	}
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	select {
	case m := <-s.C():
		return m
	case <-s.Done():
		t.Fatalf("subscriber closed while waiting for a message: %v", s.Err())
	case <-timeout.C:
		t.Fatalf("no message within %v", waitTimeout)
	}
	return nil
}

// take returns the subscriber's next n live messages.
func take(t testing.TB, s *hub.Subscriber, n int) []*hub.Message {
	t.Helper()
	ms := make([]*hub.Message, n)
	for i := range ms {
		ms[i] = next(t, s)
	}
	return ms
}

// datas returns the messages' data as strings.
func datas(ms []*hub.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.Data)
	}
	return out
}

// checkOffsets checks that ms are numbered from, from+1, … in one epoch.
func checkOffsets(t testing.TB, what string, ms []*hub.Message, from uint64) {
	t.Helper()
	for i, m := range ms {
		if m.Offset != from+uint64(i) || m.Epoch != ms[0].Epoch {
			t.Fatalf("%s: message %d has position %d@%s, want %d@%s", what, i, m.Offset, m.Epoch, from+uint64(i), ms[0].Epoch)
		}
	}
}

// seq returns `{"i":from}` … `{"i":to-1}`.
func seq(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf(`{"i":%d}`, i))
	}
	return out
}

// quiet checks that nothing is waiting for s. Messages are delivered in
// one order, so callers first receive a later marker message that proves
// an unwanted one would have arrived by then.
func quiet(t testing.TB, s *hub.Subscriber, what string) {
	t.Helper()
	select {
	case m := <-s.C():
		t.Errorf("%s: unexpected message %s %s offset %d", what, m.Topic, m.Data, m.Offset)
	default:
	}
}
