package switchyard

import (
	"crypto/sha256"
	"testing"
	"time"
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
