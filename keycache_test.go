package switchyard

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestKeyCacheHonoursTTLAndExpiry(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var kc keyCache
	a, b := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))
	kc.put(a, APIKey{ID: "a"}, time.Time{}, now, 0)
	kc.put(b, APIKey{ID: "b"}, now.Add(time.Second), now, 0) // expires before the TTL

	if k, ok := kc.get(a, now.Add(authCacheTTL-time.Millisecond)); !ok || k.ID != "a" {
		t.Fatalf("get within the TTL = %v, %v", k, ok)
	}
	if _, ok := kc.get(a, now.Add(authCacheTTL)); ok {
		t.Errorf("a key is trusted past the TTL")
	}
	if _, ok := kc.get(b, now.Add(time.Second)); ok {
		t.Errorf("a key is trusted past its own expiry")
	}
	// What get returns is a copy: changing it does not change the cache.
	k, _ := kc.get(a, now)
	k.ID = "changed"
	if k2, _ := kc.get(a, now); k2.ID != "a" {
		t.Errorf("the cached key was changed through a returned copy")
	}
	// A key read before a clear is not cached after it.
	gen := kc.generation()
	kc.clear()
	kc.put(a, APIKey{ID: "stale"}, time.Time{}, now, gen)
	if _, ok := kc.get(a, now); ok {
		t.Errorf("a key read before a clear was cached after it")
	}
	// A full cache starts over rather than growing.
	for i := range authCacheMax {
		kc.put(sha256.Sum256([]byte{byte(i), byte(i >> 8)}), APIKey{}, time.Time{}, now, 0)
	}
	if n := len(kc.entries); n > authCacheMax {
		t.Errorf("cache holds %d entries, bound %d", n, authCacheMax)
	}
}

// Authenticate records a key's last use, at most once a minute.
func TestAuthenticateRecordsLastUse(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	c, err := Open(ctx, Config{Database: "sqlite:" + testdb.SQLitePath(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	secret, key, err := c.CreateAPIKey(ctx, NewAPIKey{Name: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if key.LastUsedAt != nil {
		t.Fatalf("a new key has a last use: %v", key.LastUsedAt)
	}
	before := time.Now()
	got, err := c.Authenticate(ctx, secret)
	if err != nil || got.LastUsedAt == nil || got.LastUsedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("Authenticate = %+v, %v", got, err)
	}
	sum := sha256.Sum256([]byte(secret))
	stored, err := c.store.APIKeyByHash(ctx, sum[:])
	if err != nil || stored.LastUsedAt.Before(before.Add(-time.Second)) {
		t.Fatalf("stored last use %v, %v; want about %v", stored.LastUsedAt, err, before)
	}
}

// A revoked key stops working at once on the node that revoked it, and on
// every other node when the store's notification arrives, though it was
// cached there.
func TestRevokedKeyStopsEverywhere(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	db := testdb.PostgresURL(t)
	open := func() *Client {
		c, err := Open(ctx, Config{Database: db})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := open(), open()
	secret, key, err := a.CreateAPIKey(ctx, NewAPIKey{Name: "soon revoked"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Client{a, b} {
		if _, err := c.Authenticate(ctx, secret); err != nil { // now cached
			t.Fatal(err)
		}
	}
	genB := b.keys.generation()
	if err := a.RevokeAPIKey(ctx, key.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, secret); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("the revoking node still accepts the key: %v", err)
	}
	// The other node's cache is cleared by the revocation's notification
	// (only a clear moves the generation), and then it refuses the key.
	testdb.Poll(t, 30*time.Second, "the other node's cache to be cleared", func() bool {
		return b.keys.generation() != genB
	})
	if _, err := b.Authenticate(ctx, secret); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("the other node still accepts the revoked key: %v", err)
	}
	if err := a.RevokeAPIKey(ctx, key.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("revoking twice: %v", err)
	}
	if err := a.RevokeAPIKey(ctx, "key_unknown"); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoking an unknown key: %v", err)
	}
}
