package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

var hubTests = []suiteTest{
	{"OwnSends", testHubOwnSends},
	{"OneOrder", testHubOneOrder},
	{"LargePayloads", testHubLargePayloads},
	{"SweepPayloads", testHubSweep},
}

// siblingOpener is implemented by every driver's Store: it opens a second
// Store on the same database (file), as another node (client) would.
type siblingOpener interface {
	OpenSibling(ctx context.Context) (store.Store, error)
}

// openSibling opens a second Store on s's database and closes it when t
// ends, before s.
func openSibling(t *testing.T, s store.Store) store.Store {
	t.Helper()
	so, ok := s.(siblingOpener)
	if !ok {
		t.Fatalf("%T has no OpenSibling: the hub tests need a second Store on one database", s)
	}
	sib, err := so.OpenSibling(t.Context())
	if err != nil {
		t.Fatalf("OpenSibling: %v", err)
	}
	t.Cleanup(func() {
		if err := sib.Close(); err != nil {
			t.Errorf("sibling Close: %v", err)
		}
	})
	return sib
}

// hubRecorder keeps the hub payloads one Store hears, in order, resolving
// stored ones. add never blocks: it only records the notification.
type hubRecorder struct {
	s    store.Store
	mu   sync.Mutex
	got  []store.Notification
	wake chan struct{} // closed and replaced on every hub notification
}

func listenHub(s store.Store) *hubRecorder {
	r := &hubRecorder{s: s, wake: make(chan struct{})}
	s.Listen(func(n store.Notification) {
		if n.Kind != store.NotifyHub {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		r.got = append(r.got, n)
		close(r.wake)
		r.wake = make(chan struct{})
	})
	return r
}

// wait returns the first n payloads heard, fetching stored ones.
func (r *hubRecorder) wait(t *testing.T, what string, n int) [][]byte {
	t.Helper()
	timeout := time.NewTimer(waitTimeout)
	defer timeout.Stop()
	for {
		r.mu.Lock()
		got, wake := slices.Clone(r.got), r.wake
		r.mu.Unlock()
		if len(got) >= n {
			out := make([][]byte, n)
			for i, note := range got[:n] {
				out[i] = r.resolve(t, note)
			}
			return out
		}
		select {
		case <-wake:
		case <-timeout.C:
			t.Fatalf("%s: %d hub notifications within %v, want %d", what, len(got), waitTimeout, n)
		}
	}
}

func (r *hubRecorder) resolve(t *testing.T, n store.Notification) []byte {
	t.Helper()
	if n.HubRef == 0 {
		return []byte(n.Payload)
	}
	if n.Payload != "" {
		t.Errorf("hub notification with both a payload and a ref %d", n.HubRef)
	}
	p, err := r.s.HubPayload(t.Context(), n.HubRef)
	if err != nil {
		t.Fatalf("HubPayload(%d): %v", n.HubRef, err)
	}
	return p
}

// The sender hears its own sends, through the same path as everyone.
func testHubOwnSends(t *testing.T, open opener) {
	s := open(t)
	rec := listenHub(s)
	for i := range 3 {
		if err := s.HubSend(t.Context(), fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatalf("HubSend: %v", err)
		}
	}
	got := rec.wait(t, "own sends", 3)
	for i, p := range got {
		if want := fmt.Sprintf(`{"n":%d}`, i); string(p) != want {
			t.Errorf("payload %d = %q, want %q", i, p, want)
		}
	}
}

// Concurrent sends through two Stores on one database reach both in one
// order, which keeps each sender's own order.
func testHubOneOrder(t *testing.T, open opener) {
	a := open(t)
	recA := listenHub(a)
	b := openSibling(t, a)
	recB := listenHub(b)

	const senders, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		s := a
		if g%2 == 1 {
			s = b
		}
		wg.Go(func() {
			for i := range each {
				if err := s.HubSend(t.Context(), fmt.Appendf(nil, "%d/%d", g, i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("HubSend: %v", err)
	}
	gotA := recA.wait(t, "first store", senders*each)
	gotB := recB.wait(t, "second store", senders*each)
	for i := range gotA {
		if !bytes.Equal(gotA[i], gotB[i]) {
			t.Fatalf("payload %d: %q on one store, %q on the other: not one order", i, gotA[i], gotB[i])
		}
	}
	next := make([]int, senders)
	for _, p := range gotA {
		var g, i int
		if _, err := fmt.Sscanf(string(p), "%d/%d", &g, &i); err != nil {
			t.Fatalf("unexpected payload %q", p)
		}
		if i != next[g] {
			t.Fatalf("sender %d: payload %d arrived when %d was next", g, i, next[g])
		}
		next[g]++
	}
}

// Payloads too large for a notification, or not text, arrive intact on both
// Stores (on PostgreSQL through HubRef).
func testHubLargePayloads(t *testing.T, open opener) {
	a := open(t)
	recA := listenHub(a)
	b := openSibling(t, a)
	recB := listenHub(b)

	pattern := func(n int) []byte {
		p := make([]byte, n)
		for i := range p {
			p[i] = 'a' + byte(i%26)
		}
		return p
	}
	binary := []byte("nul\x00and\xff\xfeinvalid utf-8")
	want := [][]byte{
		pattern(7998), // with its one-byte prefix, the largest NOTIFY payload
		pattern(7999),
		pattern(20000),
		binary,
		[]byte(`{"small":true}`),
		bytes.Repeat([]byte("é"), 5000), // 10,000 bytes of valid UTF-8
	}
	for _, p := range want {
		if err := a.HubSend(t.Context(), p); err != nil {
			t.Fatalf("HubSend(%d bytes): %v", len(p), err)
		}
	}
	for name, rec := range map[string]*hubRecorder{"sender": recA, "other store": recB} {
		got := rec.wait(t, name, len(want))
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("%s: payload %d: got %d bytes, want %d, intact", name, i, len(got[i]), len(want[i]))
			}
		}
		if a.Backend() == "postgres" {
			// NOTIFY takes less than 8000 bytes of text: the rest must
			// have travelled by reference.
			rec.mu.Lock()
			for i, n := range rec.got[:len(want)] {
				if inline := n.HubRef == 0; inline != (i == 0 || i == 4) {
					t.Errorf("%s: payload %d (%d bytes) inline = %v", name, i, len(want[i]), inline)
				}
			}
			rec.mu.Unlock()
		}
	}
}

// Stored payloads are swept by age; an unknown ref is ErrNotFound.
func testHubSweep(t *testing.T, open opener) {
	s := open(t)
	rec := listenHub(s)
	ctx := t.Context()

	if _, err := s.HubPayload(ctx, unknownID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("HubPayload(unknown) error = %v, want ErrNotFound", err)
	}
	if err := s.HubSend(ctx, bytes.Repeat([]byte("x"), 50000)); err != nil {
		t.Fatalf("HubSend: %v", err)
	}
	rec.wait(t, "large payload", 1)
	rec.mu.Lock()
	ref := rec.got[0].HubRef
	rec.mu.Unlock()

	if n, err := s.DeleteHubPayloadsBefore(ctx, time.Now().Add(-time.Hour), 0); err != nil || n != 0 {
		t.Errorf("DeleteHubPayloadsBefore(an hour ago) = %d, %v; want 0", n, err)
	}
	n, err := s.DeleteHubPayloadsBefore(ctx, time.Now().Add(time.Hour), 10)
	if err != nil {
		t.Fatalf("DeleteHubPayloadsBefore: %v", err)
	}
	if ref == 0 {
		// Delivered inline (SQLite): nothing was stored.
		if n != 0 {
			t.Errorf("DeleteHubPayloadsBefore = %d with nothing stored, want 0", n)
		}
		return
	}
	if n != 1 {
		t.Errorf("DeleteHubPayloadsBefore(an hour ahead) = %d, want 1", n)
	}
	if _, err := s.HubPayload(ctx, ref); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("HubPayload(swept %d) error = %v, want ErrNotFound", ref, err)
	}
}
