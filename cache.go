package switchyard

import (
	"sync"
	"time"
)

// authCacheTTL is how long a credential, role or tenant read from the
// store is trusted without reading it again. Reading them on every request
// cost a sixth of the server's CPU under load. A change clears every node's
// caches as its notification (store.NotifyKeys) arrives; the TTL bounds a
// notification that was lost.
const authCacheTTL = 5 * time.Second

// authCacheMax bounds each cache; when full it starts over.
const authCacheMax = 10000

// authCache remembers what authentication and authorisation read from the
// store. Values are stored and returned by value, so callers may change
// what they get.
type authCache[K comparable, V any] struct {
	mu      sync.RWMutex
	entries map[K]authCacheEntry[V]
	// gen counts clears: a value read from the store before a clear (it
	// may be the revoked key, the old role) is not cached after it.
	gen uint64
}

type authCacheEntry[V any] struct {
	value V
	until time.Time
}

func (c *authCache[K, V]) get(k K, now time.Time) (V, bool) {
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		var zero V
		return zero, false
	}
	return e.value, true
}

func (c *authCache[K, V]) clear() {
	c.mu.Lock()
	c.entries = nil
	c.gen++
	c.mu.Unlock()
}

// generation is read before a value is read from the store, for put.
func (c *authCache[K, V]) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put caches v until the earlier of now+authCacheTTL and expires (if set).
func (c *authCache[K, V]) put(k K, v V, expires, now time.Time, gen uint64) {
	until := now.Add(authCacheTTL)
	if !expires.IsZero() && expires.Before(until) {
		until = expires
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return // cleared since v was read: it may be stale
	}
	if c.entries == nil || len(c.entries) >= authCacheMax {
		c.entries = make(map[K]authCacheEntry[V])
	}
	c.entries[k] = authCacheEntry[V]{value: v, until: until}
}

// memberKey names a user's membership of a tenant.
type memberKey struct{ tenantID, userID string }

// accessCaches are the caches behind user authentication and roles; one
// clear drops them all.
type accessCaches struct {
	users    authCache[string, User]      // by id
	roles    authCache[memberKey, string] // "" = not a member
	families authCache[string, bool]      // refresh family active
	tenants  authCache[string, Tenant]    // by id; the zero Tenant for an unknown id
}

func (a *accessCaches) clear() {
	a.users.clear()
	a.roles.clear()
	a.families.clear()
	a.tenants.clear()
}
