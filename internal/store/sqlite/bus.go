package sqlite

import (
	"path/filepath"
	"sync"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// A bus carries notifications between the Stores of this process that have
// the same file open, so that two clients sharing a file (an API server and
// an embedded worker, or tests) hear each other's writes at once, as they
// would on PostgreSQL. Other processes sharing the file hear nothing; they
// rely on the engine's fallback poll (and hear no hub messages at all).
type bus struct {
	path string
	mu   sync.RWMutex
	subs map[*Store]func(store.Notification)
	refs int // Stores holding this bus
	// hubMu serialises hub sends, so that two concurrent sends reach every
	// subscriber in the same order (see store.Hub).
	hubMu sync.Mutex
}

var buses = struct {
	sync.Mutex
	m map[string]*bus
}{m: map[string]*bus{}}

// joinBus returns the bus of path's file, creating it on first use.
func joinBus(path string) *bus {
	key := path
	if abs, err := filepath.Abs(path); err == nil {
		key = abs
	}
	buses.Lock()
	defer buses.Unlock()
	b := buses.m[key]
	if b == nil {
		b = &bus{path: key, subs: map[*Store]func(store.Notification){}}
		buses.m[key] = b
	}
	b.refs++
	return b
}

// leave drops s's subscription and the bus itself once no Store holds it.
func (b *bus) leave(s *Store) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
	buses.Lock()
	defer buses.Unlock()
	if b.refs--; b.refs == 0 {
		delete(buses.m, b.path)
	}
}

func (b *bus) subscribe(s *Store, fn func(store.Notification)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.subs[s] = fn
}

func (b *bus) publish(n store.Notification) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for _, fn := range b.subs {
		fn(n)
	}
}

// hubSend delivers a hub notification to every Store on the file before it
// returns, one send at a time.
func (b *bus) hubSend(n store.Notification) {
	b.hubMu.Lock()
	defer b.hubMu.Unlock()
	b.publish(n)
}
