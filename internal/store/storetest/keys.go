package storetest

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

var deleteTests = []suiteTest{
	{"States", testDeleteStates},
}

func testDeleteStates(t *testing.T, open opener) {
	for _, from := range store.AllStates {
		t.Run(from, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, open)
			j, _ := e.inState(params(tenantA, "q", "k"), from)
			// Another tenant's id is unknown, exactly like a missing one.
			_, err := e.s.Delete(e.ctx(), tenantB, j.ID)
			wantErrIs(t, "Delete by another tenant", err, store.ErrNotFound)
			_, err = e.s.Delete(e.ctx(), tenantA, j.ID+1000)
			wantErrIs(t, "Delete of an unknown id", err, store.ErrNotFound)

			got, err := e.s.Delete(e.ctx(), tenantA, j.ID)
			if from == store.StateRunning {
				wantErrIs(t, "Delete of a running job", err, store.ErrConflict)
				if got == nil || got.ID != j.ID {
					t.Errorf("Delete returned %+v with the conflict, want the job", got)
				}
				sameJob(t, e.get(tenantA, j.ID), j)
				return
			}
			if err != nil || got == nil || got.ID != j.ID || got.State != from {
				t.Fatalf("Delete of a %s job = %+v, %v", from, got, err)
			}
			if _, err := e.s.Get(e.ctx(), tenantA, j.ID); err == nil {
				t.Errorf("the deleted job is still there")
			}
		})
	}
}

var apiKeyTests = []suiteTest{
	{"CreateAndFind", testAPIKeyCreateAndFind},
	{"FirstKeyOnce", testAPIKeyFirstOnce},
	{"PendingMigrations", testPendingMigrations},
	{"Touch", testAPIKeyTouch},
	{"Revoke", testAPIKeyRevoke},
}

func testKey(tenant, name string) store.APIKey {
	secret := fmt.Sprintf("secret-%s-%s-%d", tenant, name, time.Now().UnixNano())
	h := sha256.Sum256([]byte(secret))
	return store.APIKey{
		ID: "key_" + name, TenantID: tenant, Name: name, Role: "admin",
		Prefix: secret[:10], Hash: h[:],
	}
}

func testAPIKeyCreateAndFind(t *testing.T, open opener) {
	e := newEnv(t, open)
	if _, err := e.s.APIKeyByHash(e.ctx(), make([]byte, 32)); err == nil {
		t.Fatalf("APIKeyByHash found a key in an empty store")
	} else {
		wantErrIs(t, "APIKeyByHash of an unknown hash", err, store.ErrNotFound)
	}
	k := testKey(tenantA, "ci")
	k.Role = "viewer"
	k.ExpiresAt = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	before := e.now()
	created, err := e.s.CreateAPIKey(e.ctx(), k, false)
	after := e.now()
	if err != nil || !created {
		t.Fatalf("CreateAPIKey = %v, %v", created, err)
	}
	got, err := e.s.APIKeyByHash(e.ctx(), k.Hash)
	if err != nil {
		t.Fatalf("APIKeyByHash: %v", err)
	}
	if got.ID != k.ID || got.TenantID != tenantA || got.Name != "ci" || got.Role != "viewer" || got.Prefix != k.Prefix ||
		!bytes.Equal(got.Hash, k.Hash) || !got.ExpiresAt.Equal(k.ExpiresAt) || !got.LastUsedAt.IsZero() || !got.RevokedAt.IsZero() {
		t.Errorf("APIKeyByHash = %+v, want %+v", got, k)
	}
	within(t, "CreatedAt", got.CreatedAt, before.Add(-time.Second), after.Add(time.Second))
	// A second key with the same hash is refused.
	if _, err := e.s.CreateAPIKey(e.ctx(), store.APIKey{ID: "key_dup", TenantID: tenantA, Name: "dup", Role: "admin", Prefix: "x", Hash: k.Hash}, false); err == nil {
		t.Errorf("CreateAPIKey accepted a duplicate hash")
	}
}

func testAPIKeyFirstOnce(t *testing.T, open opener) {
	e := newEnv(t, open)
	// Nodes starting together race to create the first key: exactly one wins.
	const racers = 8
	var wg sync.WaitGroup
	results := make([]bool, racers)
	errs := make([]error, racers)
	for i := range racers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = e.s.CreateAPIKey(e.ctx(), testKey(tenantA, fmt.Sprintf("first-%d", i)), true)
		}()
	}
	wg.Wait()
	won := 0
	for i := range racers {
		if errs[i] != nil {
			t.Errorf("racer %d: %v", i, errs[i])
		}
		if results[i] {
			won++
		}
	}
	if won != 1 {
		t.Errorf("%d racers created the first key, want exactly 1", won)
	}
	// Later keys are created normally.
	if created, err := e.s.CreateAPIKey(e.ctx(), testKey(tenantA, "later"), false); err != nil || !created {
		t.Errorf("CreateAPIKey after the first = %v, %v", created, err)
	}
}

func testPendingMigrations(t *testing.T, open opener) {
	e := newEnv(t, open)
	if n, err := e.s.PendingMigrations(e.ctx()); err != nil || n != 0 {
		t.Errorf("PendingMigrations on a migrated store = %d, %v; want 0", n, err)
	}
}

func testAPIKeyTouch(t *testing.T, open opener) {
	e := newEnv(t, open)
	k := testKey(tenantA, "touched")
	if _, err := e.s.CreateAPIKey(e.ctx(), k, false); err != nil {
		t.Fatal(err)
	}
	before := e.now()
	if err := e.s.TouchAPIKey(e.ctx(), k.ID); err != nil {
		t.Fatalf("TouchAPIKey: %v", err)
	}
	after := e.now()
	got, err := e.s.APIKeyByHash(e.ctx(), k.Hash)
	if err != nil {
		t.Fatal(err)
	}
	within(t, "LastUsedAt", got.LastUsedAt, before, after)
	wantErrIs(t, "TouchAPIKey of an unknown id", e.s.TouchAPIKey(e.ctx(), "key_unknown"), store.ErrNotFound)
}

func testAPIKeyRevoke(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	k := testKey(tenantA, "revoked")
	if _, err := e.s.CreateAPIKey(e.ctx(), k, false); err != nil {
		t.Fatal(err)
	}
	wantErrIs(t, "RevokeAPIKey of an unknown id", e.s.RevokeAPIKey(e.ctx(), tenantA, "key_unknown"), store.ErrNotFound)
	wantErrIs(t, "RevokeAPIKey by another tenant", e.s.RevokeAPIKey(e.ctx(), tenantB, k.ID), store.ErrNotFound)
	if got, err := e.s.APIKeyByHash(e.ctx(), k.Hash); err != nil || !got.RevokedAt.IsZero() {
		t.Fatalf("a refused revocation changed the key: %+v, %v", got, err)
	}
	before := e.now()
	if err := e.s.RevokeAPIKey(e.ctx(), tenantA, k.ID); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	after := e.now()
	got, err := e.s.APIKeyByHash(e.ctx(), k.Hash)
	if err != nil {
		t.Fatal(err)
	}
	within(t, "RevokedAt", got.RevokedAt, before, after)
	e.waitFor(store.NotifyKeys, func(n store.Notification) bool { return n.Kind == store.NotifyKeys })
	wantErrIs(t, "a second RevokeAPIKey", e.s.RevokeAPIKey(e.ctx(), tenantA, k.ID), store.ErrConflict)
}
