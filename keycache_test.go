package switchyard

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testdb"
)

func TestKeyCacheHonoursTTLAndExpiry(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var kc keyCache
	a, b := sha256.Sum256([]byte("a")), sha256.Sum256([]byte("b"))
	kc.put(a, &APIKey{ID: "a"}, time.Time{}, now)
	kc.put(b, &APIKey{ID: "b"}, now.Add(time.Second), now) // expires before the TTL

	if k, ok := kc.get(a, now.Add(keyCacheTTL-time.Millisecond)); !ok || k.ID != "a" {
		t.Fatalf("get within the TTL = %v, %v", k, ok)
	}
	if _, ok := kc.get(a, now.Add(keyCacheTTL)); ok {
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
	// A full cache starts over rather than growing.
	for i := range keyCacheMax {
		kc.put(sha256.Sum256([]byte{byte(i), byte(i >> 8)}), &APIKey{}, time.Time{}, now)
	}
	if n := len(kc.entries); n > keyCacheMax {
		t.Errorf("cache holds %d entries, bound %d", n, keyCacheMax)
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
