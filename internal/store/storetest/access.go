package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/store"
)

var tenantTests = []suiteTest{
	{"Default", testTenantDefault},
	{"CreateGetUpdate", testTenantCreateGetUpdate},
	{"List", testTenantList},
}

var userTests = []suiteTest{
	{"CreateAndFind", testUserCreateAndFind},
	{"SetPassword", testUserSetPassword},
}

var membershipTests = []suiteTest{
	{"SetGetDelete", testMembershipSetGetDelete},
	{"Lists", testMembershipLists},
}

var accessKeyTests = []suiteTest{
	{"TenantScoped", testAPIKeyTenantScoped},
}

var refreshTests = []suiteTest{
	{"Rotate", testRefreshRotate},
	{"Reuse", testRefreshReuse},
	{"ConcurrentRotation", testRefreshConcurrent},
	{"Expired", testRefreshExpired},
	{"RevokeFamily", testRefreshRevokeFamily},
}

var auditTests = []suiteTest{
	{"AppendAndList", testAuditAppendList},
	{"Filters", testAuditFilters},
	{"DefaultLimit", testAuditDefaultLimit},
	{"DeleteBefore", testAuditDeleteBefore},
}

var rateTests = []suiteTest{
	{"Burst", testRateBurst},
	{"Refill", testRateRefill},
	{"Concurrent", testRateConcurrent},
	{"BadInput", testRateBadInput},
	{"DeleteIdle", testRateDeleteIdle},
}

var secretTests = []suiteTest{
	{"GetOrCreate", testInstanceSecret},
}

// isKeys matches the notification every credential or role change sends.
func isKeys(n store.Notification) bool { return n.Kind == store.NotifyKeys }

// waitKeys waits for a NotifyKeys sent after the last drain.
func (e *env) waitKeys(what string) {
	e.t.Helper()
	e.waitFor(store.NotifyKeys+" after "+what, isKeys)
}

func testTenantDefault(t *testing.T, open opener) {
	e := newEnv(t, open)
	tn, err := e.s.GetTenant(e.ctx(), "default")
	if err != nil {
		t.Fatalf("GetTenant(default): %v", err)
	}
	if tn.ID != "default" || tn.Name != "Default" || tn.CreatedAt.IsZero() || tn.RateLimit != 0 || tn.RateBurst != 0 {
		t.Errorf("the migrated default tenant = %+v, want id default, name Default, a creation time, no rate limit", tn)
	}
}

func testTenantCreateGetUpdate(t *testing.T, open opener) {
	e := newEnv(t, open)
	_, err := e.s.GetTenant(e.ctx(), "acme")
	wantErrIs(t, "GetTenant of an unknown id", err, store.ErrNotFound)

	before := e.now()
	if err := e.s.CreateTenant(e.ctx(), store.Tenant{ID: "acme", Name: "Acme Inc.", RateLimit: 12.5, RateBurst: 40}); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	after := e.now()
	got, err := e.s.GetTenant(e.ctx(), "acme")
	if err != nil {
		t.Fatalf("GetTenant: %v", err)
	}
	if got.ID != "acme" || got.Name != "Acme Inc." || got.RateLimit != 12.5 || got.RateBurst != 40 {
		t.Errorf("GetTenant = %+v", got)
	}
	within(t, "CreatedAt", got.CreatedAt, before, after)

	err = e.s.CreateTenant(e.ctx(), store.Tenant{ID: "acme", Name: "Another"})
	wantErrIs(t, "CreateTenant of an existing id", err, store.ErrConflict)
	if again, err := e.s.GetTenant(e.ctx(), "acme"); err != nil || again.Name != "Acme Inc." {
		t.Errorf("a refused CreateTenant changed the tenant: %+v, %v", again, err)
	}

	if err := e.s.UpdateTenant(e.ctx(), store.Tenant{ID: "acme", Name: "Acme", RateLimit: 0.5, RateBurst: 1}); err != nil {
		t.Fatalf("UpdateTenant: %v", err)
	}
	upd, err := e.s.GetTenant(e.ctx(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if upd.Name != "Acme" || upd.RateLimit != 0.5 || upd.RateBurst != 1 || !upd.CreatedAt.Equal(got.CreatedAt) {
		t.Errorf("after UpdateTenant: %+v, want name Acme, limit 0.5/1 and CreatedAt %v kept", upd, got.CreatedAt)
	}
	wantErrIs(t, "UpdateTenant of an unknown id", e.s.UpdateTenant(e.ctx(), store.Tenant{ID: "nope", Name: "x"}), store.ErrNotFound)
}

func testTenantList(t *testing.T, open opener) {
	e := newEnv(t, open)
	for _, id := range []string{"t-c", "t-a", "t-d", "t-b"} {
		if err := e.s.CreateTenant(e.ctx(), store.Tenant{ID: id, Name: id}); err != nil {
			t.Fatalf("CreateTenant(%s): %v", id, err)
		}
	}
	want := []string{"default", "t-a", "t-b", "t-c", "t-d"}
	var walked []string
	after := ""
	for range len(want) + 1 {
		page, err := e.s.ListTenants(e.ctx(), after, 2)
		if err != nil {
			t.Fatalf("ListTenants(%q, 2): %v", after, err)
		}
		if len(page) > 2 {
			t.Fatalf("ListTenants(limit 2) returned %d tenants", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, tn := range page {
			walked = append(walked, tn.ID)
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(walked, want) {
		t.Errorf("walking ListTenants by pages of 2 = %q, want %q", walked, want)
	}
	page, err := e.s.ListTenants(e.ctx(), "t-b", 10)
	if err != nil || len(page) != 2 || page[0].ID != "t-c" || page[1].ID != "t-d" {
		t.Errorf("ListTenants(after t-b) = %v, %v; want t-c, t-d", tenantIDs(page), err)
	}
}

func tenantIDs(ts []*store.Tenant) []string {
	out := make([]string, len(ts))
	for i, tn := range ts {
		out[i] = tn.ID
	}
	return out
}

func (e *env) createUser(id, email string) store.User {
	e.t.Helper()
	u := store.User{ID: id, Email: email, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$" + id}
	if err := e.s.CreateUser(e.ctx(), u); err != nil {
		e.t.Fatalf("CreateUser(%s): %v", id, err)
	}
	return u
}

func testUserCreateAndFind(t *testing.T, open opener) {
	e := newEnv(t, open)
	before := e.now()
	u := store.User{ID: "usr_1", Email: "ada@example.com", PasswordHash: "$argon2id$hash", InstanceAdmin: true}
	if err := e.s.CreateUser(e.ctx(), u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	after := e.now()
	for name, get := range map[string]func() (*store.User, error){
		"GetUser":     func() (*store.User, error) { return e.s.GetUser(e.ctx(), "usr_1") },
		"UserByEmail": func() (*store.User, error) { return e.s.UserByEmail(e.ctx(), "ada@example.com") },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.ID != u.ID || got.Email != u.Email || got.PasswordHash != u.PasswordHash || !got.InstanceAdmin {
			t.Errorf("%s = %+v, want %+v", name, got, u)
		}
		within(t, name+" CreatedAt", got.CreatedAt, before, after)
	}
	e.createUser("usr_2", "bob@example.com")
	if got, err := e.s.GetUser(e.ctx(), "usr_2"); err != nil || got.InstanceAdmin {
		t.Errorf("GetUser(usr_2) = %+v, %v; want a user who is not an instance administrator", got, err)
	}

	err := e.s.CreateUser(e.ctx(), store.User{ID: "usr_3", Email: "ada@example.com", PasswordHash: "x"})
	wantErrIs(t, "CreateUser with a taken email", err, store.ErrConflict)
	_, err = e.s.GetUser(e.ctx(), "usr_3")
	wantErrIs(t, "GetUser of the refused user", err, store.ErrNotFound)
	_, err = e.s.UserByEmail(e.ctx(), "nobody@example.com")
	wantErrIs(t, "UserByEmail of an unknown email", err, store.ErrNotFound)
}

func testUserSetPassword(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	e.createUser("usr_1", "ada@example.com")
	e.createUser("usr_2", "bob@example.com")
	f1 := e.createRefresh("usr_1", "fam-1", time.Hour)
	f2 := e.createRefresh("usr_1", "fam-2", time.Hour)
	other := e.createRefresh("usr_2", "fam-3", time.Hour)

	e.drain()
	if err := e.s.SetUserPassword(e.ctx(), "usr_1", "$argon2id$new"); err != nil {
		t.Fatalf("SetUserPassword: %v", err)
	}
	e.waitKeys("SetUserPassword")
	if u, err := e.s.GetUser(e.ctx(), "usr_1"); err != nil || u.PasswordHash != "$argon2id$new" {
		t.Errorf("after SetUserPassword: %+v, %v", u, err)
	}
	// Every session of the user ends with the old password.
	for _, rt := range []store.RefreshToken{f1, f2} {
		if e.familyActive(rt.FamilyID) {
			t.Errorf("family %s of the user is still active after a password change", rt.FamilyID)
		}
		_, err := e.s.RotateRefreshToken(e.ctx(), rt.Hash, e.nextRefresh())
		wantErrIs(t, "RotateRefreshToken after a password change", err, store.ErrNotFound)
	}
	if !e.familyActive(other.FamilyID) {
		t.Errorf("another user's family was revoked by a password change")
	}
	wantErrIs(t, "SetUserPassword of an unknown user", e.s.SetUserPassword(e.ctx(), "usr_x", "h"), store.ErrNotFound)
}

func testMembershipSetGetDelete(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	e.createUser("usr_1", "ada@example.com")
	_, err := e.s.GetMembership(e.ctx(), tenantA, "usr_1")
	wantErrIs(t, "GetMembership before any", err, store.ErrNotFound)

	e.drain()
	before := e.now()
	created, err := e.s.SetMembership(e.ctx(), store.Membership{TenantID: tenantA, UserID: "usr_1", Role: "viewer"})
	after := e.now()
	if err != nil || !created {
		t.Fatalf("SetMembership (new) = %v, %v; want created", created, err)
	}
	e.waitKeys("SetMembership")
	m, err := e.s.GetMembership(e.ctx(), tenantA, "usr_1")
	if err != nil {
		t.Fatalf("GetMembership: %v", err)
	}
	if m.TenantID != tenantA || m.UserID != "usr_1" || m.Role != "viewer" || m.Email != "ada@example.com" {
		t.Errorf("GetMembership = %+v", m)
	}
	within(t, "membership CreatedAt", m.CreatedAt, before, after)

	// A role change is a credential change too.
	e.drain()
	created, err = e.s.SetMembership(e.ctx(), store.Membership{TenantID: tenantA, UserID: "usr_1", Role: "admin"})
	if err != nil || created {
		t.Fatalf("SetMembership (role change) = %v, %v; want not created", created, err)
	}
	e.waitKeys("a role change")
	m2, err := e.s.GetMembership(e.ctx(), tenantA, "usr_1")
	if err != nil || m2.Role != "admin" || !m2.CreatedAt.Equal(m.CreatedAt) {
		t.Errorf("after a role change: %+v, %v; want role admin and CreatedAt %v kept", m2, err, m.CreatedAt)
	}

	// A membership must point at a tenant and a user that exist.
	_, err = e.s.SetMembership(e.ctx(), store.Membership{TenantID: "no-such-tenant", UserID: "usr_1", Role: "viewer"})
	wantErrIs(t, "SetMembership in an unknown tenant", err, store.ErrNotFound)
	_, err = e.s.SetMembership(e.ctx(), store.Membership{TenantID: tenantA, UserID: "usr_x", Role: "viewer"})
	wantErrIs(t, "SetMembership of an unknown user", err, store.ErrNotFound)
	if ms, err := e.s.UserMemberships(e.ctx(), "usr_x"); err != nil || len(ms) != 0 {
		t.Errorf("a refused SetMembership stored %+v, %v", ms, err)
	}

	e.drain()
	if err := e.s.DeleteMembership(e.ctx(), tenantA, "usr_1"); err != nil {
		t.Fatalf("DeleteMembership: %v", err)
	}
	e.waitKeys("DeleteMembership")
	_, err = e.s.GetMembership(e.ctx(), tenantA, "usr_1")
	wantErrIs(t, "GetMembership after DeleteMembership", err, store.ErrNotFound)
	wantErrIs(t, "a second DeleteMembership", e.s.DeleteMembership(e.ctx(), tenantA, "usr_1"), store.ErrNotFound)
}

func testMembershipLists(t *testing.T, open opener) {
	e := newEnv(t, open)
	for _, id := range []string{"t-b", "t-a"} {
		if err := e.s.CreateTenant(e.ctx(), store.Tenant{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"u3", "u1", "u2"} {
		e.createUser(u, u+"@example.com")
	}
	set := func(tenant, user, role string) {
		t.Helper()
		if _, err := e.s.SetMembership(e.ctx(), store.Membership{TenantID: tenant, UserID: user, Role: role}); err != nil {
			t.Fatalf("SetMembership(%s, %s): %v", tenant, user, err)
		}
	}
	set("t-b", "u1", "viewer")
	set("t-a", "u1", "owner")
	set(tenantA, "u1", "admin")
	set("t-a", "u3", "viewer")
	set("t-a", "u2", "operator")

	ms, err := e.s.UserMemberships(e.ctx(), "u1")
	if err != nil {
		t.Fatalf("UserMemberships: %v", err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.TenantID+":"+m.Role+":"+m.Email)
	}
	if want := []string{"default:admin:u1@example.com", "t-a:owner:u1@example.com", "t-b:viewer:u1@example.com"}; !slices.Equal(got, want) {
		t.Errorf("UserMemberships(u1) = %q, want %q (tenant order, with emails)", got, want)
	}
	if ms, err := e.s.UserMemberships(e.ctx(), "nobody"); err != nil || len(ms) != 0 {
		t.Errorf("UserMemberships of an unknown user = %+v, %v; want none", ms, err)
	}

	var walked []string
	after := ""
	for range 4 {
		page, err := e.s.TenantMembers(e.ctx(), "t-a", after, 2)
		if err != nil {
			t.Fatalf("TenantMembers(t-a, %q, 2): %v", after, err)
		}
		if len(page) > 2 {
			t.Fatalf("TenantMembers(limit 2) returned %d", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			if m.TenantID != "t-a" {
				t.Errorf("TenantMembers(t-a) returned a membership of %s", m.TenantID)
			}
			walked = append(walked, m.UserID+":"+m.Role+":"+m.Email)
		}
		after = page[len(page)-1].UserID
	}
	if want := []string{"u1:owner:u1@example.com", "u2:operator:u2@example.com", "u3:viewer:u3@example.com"}; !slices.Equal(walked, want) {
		t.Errorf("walking TenantMembers(t-a) = %q, want %q (user order, with emails)", walked, want)
	}
}

func testAPIKeyTenantScoped(t *testing.T, open opener) {
	e := newEnv(t, open)
	var ids []string
	for _, name := range []string{"c", "a", "b"} {
		k := testKey(tenantA, name)
		if _, err := e.s.CreateAPIKey(e.ctx(), k, false); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	slices.Sort(ids)
	other := testKey(tenantB, "other")
	if _, err := e.s.CreateAPIKey(e.ctx(), other, false); err != nil {
		t.Fatal(err)
	}
	if err := e.s.RevokeAPIKey(e.ctx(), tenantA, "key_b"); err != nil {
		t.Fatal(err)
	}

	k, err := e.s.GetAPIKey(e.ctx(), tenantA, "key_a")
	if err != nil || k.ID != "key_a" || k.TenantID != tenantA || k.Name != "a" || len(k.Hash) == 0 || k.CreatedAt.IsZero() {
		t.Errorf("GetAPIKey(key_a) = %+v, %v", k, err)
	}
	if k, err := e.s.GetAPIKey(e.ctx(), tenantA, "key_b"); err != nil || k.RevokedAt.IsZero() {
		t.Errorf("GetAPIKey of a revoked key = %+v, %v; want it, revoked", k, err)
	}
	_, err = e.s.GetAPIKey(e.ctx(), tenantA, other.ID)
	wantErrIs(t, "GetAPIKey of another tenant's key", err, store.ErrNotFound)
	_, err = e.s.GetAPIKey(e.ctx(), tenantA, "key_unknown")
	wantErrIs(t, "GetAPIKey of an unknown id", err, store.ErrNotFound)

	var walked []string
	after := ""
	for range 4 {
		page, err := e.s.ListAPIKeys(e.ctx(), tenantA, after, 2)
		if err != nil {
			t.Fatalf("ListAPIKeys: %v", err)
		}
		if len(page) > 2 {
			t.Fatalf("ListAPIKeys(limit 2) returned %d", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, k := range page {
			walked = append(walked, k.ID)
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(walked, ids) {
		t.Errorf("walking ListAPIKeys(%s) = %q, want %q (id order, revoked included, no other tenant's)", tenantA, walked, ids)
	}
}

// refreshSeq makes every test token's id and secret unique.
var refreshSeq struct {
	sync.Mutex
	n int
}

// newRefresh returns a token with a fresh id and hash; the caller fills in
// the rest.
func newRefresh() store.RefreshToken {
	refreshSeq.Lock()
	refreshSeq.n++
	n := refreshSeq.n
	refreshSeq.Unlock()
	h := sha256.Sum256(fmt.Appendf(nil, "refresh-secret-%d-%d", n, time.Now().UnixNano()))
	return store.RefreshToken{ID: fmt.Sprintf("rt_%d", n), Hash: h[:]}
}

// createRefresh stores the first token of a family, expiring ttl after the
// database's now.
func (e *env) createRefresh(user, family string, ttl time.Duration) store.RefreshToken {
	e.t.Helper()
	rt := newRefresh()
	rt.FamilyID, rt.UserID, rt.ExpiresAt = family, user, e.now().Add(ttl)
	if err := e.s.CreateRefreshToken(e.ctx(), rt); err != nil {
		e.t.Fatalf("CreateRefreshToken: %v", err)
	}
	return rt
}

// nextRefresh returns a successor token as a caller passes it: without a
// family or user, which the store copies from the token used.
func (e *env) nextRefresh() store.RefreshToken {
	e.t.Helper()
	rt := newRefresh()
	rt.ExpiresAt = e.now().Add(time.Hour)
	return rt
}

func (e *env) familyActive(family string) bool {
	e.t.Helper()
	ok, err := e.s.RefreshFamilyActive(e.ctx(), family)
	if err != nil {
		e.t.Fatalf("RefreshFamilyActive(%s): %v", family, err)
	}
	return ok
}

func testRefreshRotate(t *testing.T, open opener) {
	e := newEnv(t, open)
	first := e.createRefresh("usr_1", "fam", time.Hour)
	if !e.familyActive("fam") {
		t.Fatalf("a new family is not active")
	}
	if e.familyActive("fam-unknown") {
		t.Errorf("an unknown family is active")
	}
	_, err := e.s.RotateRefreshToken(e.ctx(), make([]byte, 32), e.nextRefresh())
	wantErrIs(t, "RotateRefreshToken of an unknown hash", err, store.ErrNotFound)

	// A successor without an expiry is refused before anything changes.
	bad := newRefresh()
	if _, err := e.s.RotateRefreshToken(e.ctx(), first.Hash, bad); err == nil {
		t.Errorf("RotateRefreshToken accepted a successor without an expiry")
	}
	if err := e.s.CreateRefreshToken(e.ctx(), store.RefreshToken{ID: "rt_bad", Hash: bad.Hash, ExpiresAt: first.ExpiresAt}); err == nil {
		t.Errorf("CreateRefreshToken accepted a token without a family and a user")
	}

	second := e.nextRefresh()
	// Whatever the caller says, the successor joins the used token's
	// family and user.
	second.FamilyID, second.UserID = "someone-elses-family", "usr_mallory"
	before := e.now()
	used, err := e.s.RotateRefreshToken(e.ctx(), first.Hash, second)
	after := e.now()
	if err != nil {
		t.Fatalf("RotateRefreshToken: %v", err)
	}
	if used.ID != first.ID || used.FamilyID != "fam" || used.UserID != "usr_1" || !bytes.Equal(used.Hash, first.Hash) ||
		!used.RevokedAt.IsZero() || !used.ExpiresAt.Equal(first.ExpiresAt) {
		t.Errorf("RotateRefreshToken returned %+v, want the used token %+v", used, first)
	}
	within(t, "UsedAt", used.UsedAt, before, after)
	if !e.familyActive("fam") {
		t.Errorf("the family is not active after a rotation")
	}
	if e.familyActive("someone-elses-family") {
		t.Errorf("the successor joined the family the caller named")
	}

	third := e.nextRefresh()
	used2, err := e.s.RotateRefreshToken(e.ctx(), second.Hash, third)
	if err != nil {
		t.Fatalf("rotating the successor: %v", err)
	}
	if used2.ID != second.ID || used2.FamilyID != "fam" || used2.UserID != "usr_1" || !used2.ExpiresAt.Equal(second.ExpiresAt) {
		t.Errorf("rotating the successor returned %+v, want token %s of family fam and usr_1", used2, second.ID)
	}
}

func testRefreshReuse(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	first := e.createRefresh("usr_1", "fam", time.Hour)
	second := e.nextRefresh()
	if _, err := e.s.RotateRefreshToken(e.ctx(), first.Hash, second); err != nil {
		t.Fatal(err)
	}
	other := e.createRefresh("usr_1", "fam-other", time.Hour)

	e.drain()
	before := e.now()
	used, err := e.s.RotateRefreshToken(e.ctx(), first.Hash, e.nextRefresh())
	after := e.now()
	wantErrIs(t, "RotateRefreshToken of a used token", err, store.ErrTokenReused)
	if used == nil || used.ID != first.ID || used.FamilyID != "fam" || used.UserID != "usr_1" {
		t.Fatalf("a reuse returned %+v, want the reused token %s", used, first.ID)
	}
	within(t, "the reused token's RevokedAt", used.RevokedAt, before, after)
	e.waitKeys("a reuse")
	if e.familyActive("fam") {
		t.Errorf("the family is active after a reuse")
	}
	if !e.familyActive("fam-other") {
		t.Errorf("a reuse revoked another family of the user")
	}
	// The current token of the family is revoked along with the rest.
	_, err = e.s.RotateRefreshToken(e.ctx(), second.Hash, e.nextRefresh())
	wantErrIs(t, "rotating the family's latest token after a reuse", err, store.ErrNotFound)
	// Presenting the used token yet again is still a reuse.
	_, err = e.s.RotateRefreshToken(e.ctx(), first.Hash, e.nextRefresh())
	wantErrIs(t, "a second reuse", err, store.ErrTokenReused)
	if _, err := e.s.RotateRefreshToken(e.ctx(), other.Hash, e.nextRefresh()); err != nil {
		t.Errorf("rotating another family's token: %v", err)
	}
}

func testRefreshConcurrent(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	first := e.createRefresh("usr_1", "fam", time.Hour)
	e.drain()
	const racers = 8
	var wg sync.WaitGroup
	errs := make([]error, racers)
	nexts := make([]store.RefreshToken, racers)
	for i := range racers {
		nexts[i] = e.nextRefresh()
	}
	for i := range racers {
		wg.Go(func() {
			_, errs[i] = e.s.RotateRefreshToken(e.ctx(), first.Hash, nexts[i])
		})
	}
	wg.Wait()
	won, reused := -1, 0
	for i, err := range errs {
		switch {
		case err == nil:
			if won >= 0 {
				t.Errorf("racers %d and %d both rotated the token", won, i)
			}
			won = i
		case errors.Is(err, store.ErrTokenReused):
			reused++
		default:
			t.Errorf("racer %d: %v, want nil or ErrTokenReused", i, err)
		}
	}
	if won < 0 || reused != racers-1 {
		t.Fatalf("%d of %d concurrent rotations succeeded and %d saw a reuse; want 1 and %d", racers-reused-1, racers, reused, racers-1)
	}
	e.waitKeys("concurrent rotations")
	if e.familyActive("fam") {
		t.Errorf("the family is active after concurrent rotations")
	}
	// The winner's successor went down with its family.
	_, err := e.s.RotateRefreshToken(e.ctx(), nexts[won].Hash, e.nextRefresh())
	wantErrIs(t, "rotating the winner's successor", err, store.ErrNotFound)
}

func testRefreshExpired(t *testing.T, open opener) {
	e := newEnv(t, open)
	rt := e.createRefresh("usr_1", "fam", time.Millisecond)
	e.waitPast(rt.ExpiresAt)
	if e.familyActive("fam") {
		t.Errorf("a family whose only token expired is active")
	}
	for range 2 {
		// Never used, so never a reuse, however often it is presented.
		_, err := e.s.RotateRefreshToken(e.ctx(), rt.Hash, e.nextRefresh())
		wantErrIs(t, "RotateRefreshToken of an expired token", err, store.ErrNotFound)
	}
}

func testRefreshRevokeFamily(t *testing.T, open opener) {
	e := newListeningEnv(t, open)
	first := e.createRefresh("usr_1", "fam", time.Hour)
	second := e.nextRefresh()
	if _, err := e.s.RotateRefreshToken(e.ctx(), first.Hash, second); err != nil {
		t.Fatal(err)
	}
	other := e.createRefresh("usr_1", "fam-other", time.Hour)

	e.drain()
	if err := e.s.RevokeRefreshFamily(e.ctx(), "fam"); err != nil {
		t.Fatalf("RevokeRefreshFamily: %v", err)
	}
	e.waitKeys("RevokeRefreshFamily")
	if e.familyActive("fam") {
		t.Errorf("a revoked family is active")
	}
	if !e.familyActive("fam-other") {
		t.Errorf("revoking a family revoked another")
	}
	_, err := e.s.RotateRefreshToken(e.ctx(), second.Hash, e.nextRefresh())
	wantErrIs(t, "RotateRefreshToken of a revoked token", err, store.ErrNotFound)
	if err := e.s.RevokeRefreshFamily(e.ctx(), "fam"); err != nil {
		t.Errorf("revoking a revoked family: %v", err)
	}
	if err := e.s.RevokeRefreshFamily(e.ctx(), "fam-unknown"); err != nil {
		t.Errorf("revoking an unknown family: %v", err)
	}
	if _, err := e.s.RotateRefreshToken(e.ctx(), other.Hash, e.nextRefresh()); err != nil {
		t.Errorf("rotating another family's token: %v", err)
	}
}

// auditAt is a fixed, microsecond-precise time for audit fixtures.
func auditAt(hours int) time.Time {
	return time.Date(2024, 3, 1, 12, 0, 0, 123456000, time.UTC).Add(time.Duration(hours) * time.Hour)
}

func (e *env) appendAudit(es ...store.AuditEntry) {
	e.t.Helper()
	if err := e.s.AppendAudit(e.ctx(), es); err != nil {
		e.t.Fatalf("AppendAudit: %v", err)
	}
}

func (e *env) listAudit(p store.AuditListParams) []*store.AuditEntry {
	e.t.Helper()
	es, err := e.s.ListAudit(e.ctx(), p)
	if err != nil {
		e.t.Fatalf("ListAudit(%+v): %v", p, err)
	}
	for i := 1; i < len(es); i++ {
		if es[i].ID >= es[i-1].ID {
			e.t.Fatalf("ListAudit(%+v) ids %d then %d, want newest (highest id) first", p, es[i-1].ID, es[i].ID)
		}
	}
	return es
}

func auditDetails(es []*store.AuditEntry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Detail
	}
	return out
}

func testAuditAppendList(t *testing.T, open opener) {
	e := newEnv(t, open)
	if es := e.listAudit(store.AuditListParams{}); len(es) != 0 {
		t.Fatalf("ListAudit of an empty log = %d entries", len(es))
	}
	if err := e.s.AppendAudit(e.ctx(), nil); err != nil {
		t.Errorf("AppendAudit(nil): %v", err)
	}
	full := store.AuditEntry{
		Time: auditAt(0), TenantID: tenantA, ActorType: "key", ActorID: "key_1", Action: "jobs.create",
		Target: "42", Result: "ok", Status: 201, ClientIP: "192.0.2.7", RequestID: "req-1", Detail: "first",
	}
	e.appendAudit(full,
		store.AuditEntry{Time: auditAt(1), TenantID: tenantB, ActorType: "user", ActorID: "usr_1", Action: "auth.login", Result: "ok", Detail: "second"},
		store.AuditEntry{Time: auditAt(2), ActorType: "anonymous", ActorID: "eve@example.com", Action: "auth.login", Result: "denied", Status: 401, Detail: "third"},
	)
	before := e.now()
	e.appendAudit(store.AuditEntry{TenantID: tenantA, ActorType: "system", Action: "jobs.rescue", Result: "ok", Detail: "untimed"})
	after := e.now()

	all := e.listAudit(store.AuditListParams{})
	if got, want := auditDetails(all), []string{"untimed", "third", "second", "first"}; !slices.Equal(got, want) {
		t.Fatalf("ListAudit over every tenant = %q, want %q (newest first)", got, want)
	}
	got := *all[3]
	full.ID = got.ID
	if got.ID <= 0 || !got.Time.Equal(full.Time) {
		t.Errorf("entry %+v: want a positive id and Time %v", got, full.Time)
	}
	got.Time = full.Time
	if got != full {
		t.Errorf("stored entry = %+v, want %+v", got, full)
	}
	within(t, "an entry appended without a time", all[0].Time, before, after)

	if got, want := auditDetails(e.listAudit(store.AuditListParams{TenantID: tenantA})), []string{"untimed", "first"}; !slices.Equal(got, want) {
		t.Errorf("ListAudit(%s) = %q, want %q", tenantA, got, want)
	}
	// Paging with the cursor.
	page := e.listAudit(store.AuditListParams{Limit: 2})
	if got, want := auditDetails(page), []string{"untimed", "third"}; !slices.Equal(got, want) {
		t.Fatalf("first page = %q, want %q", got, want)
	}
	page = e.listAudit(store.AuditListParams{Limit: 2, BeforeID: page[1].ID})
	if got, want := auditDetails(page), []string{"second", "first"}; !slices.Equal(got, want) {
		t.Errorf("second page = %q, want %q", got, want)
	}
	if page := e.listAudit(store.AuditListParams{Limit: 2, BeforeID: page[1].ID}); len(page) != 0 {
		t.Errorf("third page = %q, want none", auditDetails(page))
	}
}

func testAuditFilters(t *testing.T, open opener) {
	e := newEnv(t, open)
	e.appendAudit(
		store.AuditEntry{Time: auditAt(0), TenantID: tenantA, ActorID: "key_1", Action: "jobs.create", Target: "1", Result: "ok", Detail: "a"},
		store.AuditEntry{Time: auditAt(1), TenantID: tenantA, ActorID: "key_2", Action: "jobs.cancel", Target: "1", Result: "ok", Detail: "b"},
		store.AuditEntry{Time: auditAt(2), TenantID: tenantA, ActorID: "usr_1", Action: "auth.login", Result: "denied", Detail: "c"},
		store.AuditEntry{Time: auditAt(3), TenantID: tenantA, ActorID: "key_1", Action: "jobsx.create", Target: "2", Result: "error", Detail: "d"},
		store.AuditEntry{Time: auditAt(4), TenantID: tenantB, ActorID: "key_1", Action: "jobs.create", Target: "1", Result: "ok", Detail: "e"},
		store.AuditEntry{Time: auditAt(5), TenantID: tenantA, ActorID: "usr_1", Action: "auth.logout", Result: "ok", Detail: "f"},
		store.AuditEntry{Time: auditAt(6), TenantID: tenantA, ActorID: "usr_1", Action: "auth", Result: "ok", Detail: "g"},
	)
	for _, tc := range []struct {
		name string
		p    store.AuditListParams
		want []string
	}{
		{"tenant", store.AuditListParams{TenantID: tenantA}, []string{"g", "f", "d", "c", "b", "a"}},
		{"actor", store.AuditListParams{TenantID: tenantA, ActorID: "key_1"}, []string{"d", "a"}},
		{"exact action", store.AuditListParams{Action: "jobs.create"}, []string{"e", "a"}},
		{"exact action is not a prefix", store.AuditListParams{Action: "auth"}, []string{"g"}},
		{"prefix ending in a dot", store.AuditListParams{TenantID: tenantA, Action: "jobs."}, []string{"b", "a"}},
		{"prefix ending in a star", store.AuditListParams{TenantID: tenantA, Action: "auth.*"}, []string{"f", "c"}},
		{"star alone", store.AuditListParams{TenantID: tenantB, Action: "*"}, []string{"e"}},
		{"target", store.AuditListParams{Target: "1"}, []string{"e", "b", "a"}},
		{"result", store.AuditListParams{Result: "ok", TenantID: tenantA}, []string{"g", "f", "b", "a"}},
		{"since is inclusive", store.AuditListParams{Since: auditAt(4)}, []string{"g", "f", "e"}},
		{"until is exclusive", store.AuditListParams{Until: auditAt(2)}, []string{"b", "a"}},
		{"window", store.AuditListParams{Since: auditAt(1), Until: auditAt(4), TenantID: tenantA}, []string{"d", "c", "b"}},
		{"combined", store.AuditListParams{TenantID: tenantA, ActorID: "usr_1", Action: "auth.", Result: "denied"}, []string{"c"}},
		{"nothing matches", store.AuditListParams{TenantID: "nobody"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := auditDetails(e.with(t).listAudit(tc.p)); !slices.Equal(got, tc.want) {
				t.Errorf("ListAudit(%+v) = %q, want %q", tc.p, got, tc.want)
			}
		})
	}
}

func testAuditDefaultLimit(t *testing.T, open opener) {
	e := newEnv(t, open)
	es := make([]store.AuditEntry, 120)
	for i := range es {
		es[i] = store.AuditEntry{Time: auditAt(i), TenantID: tenantA, ActorType: "system", Action: "jobs.create", Result: "ok", Detail: fmt.Sprint(i)}
	}
	e.appendAudit(es...)
	all := e.listAudit(store.AuditListParams{Limit: 1000})
	if len(all) != 120 {
		t.Fatalf("ListAudit(limit 1000) = %d entries, want 120", len(all))
	}
	// One append assigns increasing ids in slice order.
	for i, en := range all {
		if want := fmt.Sprint(119 - i); en.Detail != want {
			t.Fatalf("entry %d of the listing is %q, want %q: ids must follow the appended order", i, en.Detail, want)
		}
	}
	if got := e.listAudit(store.AuditListParams{}); len(got) != 100 || got[0].Detail != "119" {
		t.Errorf("ListAudit without a limit = %d entries starting at %q, want the newest 100", len(got), auditDetails(got[:1]))
	}
}

func testAuditDeleteBefore(t *testing.T, open opener) {
	e := newEnv(t, open)
	var es []store.AuditEntry
	for i := range 5 {
		es = append(es, store.AuditEntry{Time: auditAt(i), TenantID: tenantA, Action: "jobs.create", Result: "ok", Detail: fmt.Sprint(i)})
	}
	e.appendAudit(es...)
	cut := auditAt(3) // entries 0, 1 and 2 are older
	n, err := e.s.DeleteAuditBefore(e.ctx(), cut, 2)
	if err != nil || n != 2 {
		t.Fatalf("DeleteAuditBefore(limit 2) = %d, %v; want 2", n, err)
	}
	if got, want := auditDetails(e.listAudit(store.AuditListParams{})), []string{"4", "3", "2"}; !slices.Equal(got, want) {
		t.Errorf("after the first sweep: %q, want %q (the oldest deleted first)", got, want)
	}
	n, err = e.s.DeleteAuditBefore(e.ctx(), cut, 10)
	if err != nil || n != 1 {
		t.Fatalf("second DeleteAuditBefore = %d, %v; want 1", n, err)
	}
	n, err = e.s.DeleteAuditBefore(e.ctx(), cut, 10)
	if err != nil || n != 0 {
		t.Errorf("third DeleteAuditBefore = %d, %v; want 0", n, err)
	}
	if got, want := auditDetails(e.listAudit(store.AuditListParams{})), []string{"4", "3"}; !slices.Equal(got, want) {
		t.Errorf("after the sweeps: %q, want %q (an entry at the cut is kept)", got, want)
	}
}

func (e *env) take(key string, rate float64, burst, want int) (int, time.Duration) {
	e.t.Helper()
	got, wait, err := e.s.TakeTokens(e.ctx(), key, rate, burst, want)
	if err != nil {
		e.t.Fatalf("TakeTokens(%s, %v, %d, %d): %v", key, rate, burst, want, err)
	}
	if got < 0 || got > want || got > burst {
		e.t.Fatalf("TakeTokens(%s, %v, %d, %d) took %d", key, rate, burst, want, got)
	}
	if (got < want) != (wait > 0) {
		e.t.Fatalf("TakeTokens(%s, %v, %d, %d) = %d, wait %v: want a wait exactly when fewer than want were taken", key, rate, burst, want, got, wait)
	}
	return got, wait
}

func testRateBurst(t *testing.T, open opener) {
	e := newEnv(t, open)
	// At one token a second, the test's few milliseconds refill nothing
	// whole.
	if got, _ := e.take("k", 1, 5, 3); got != 3 {
		t.Errorf("a new bucket of 5 gave %d of 3, want 3 (it starts full)", got)
	}
	got, wait := e.take("k", 1, 5, 3)
	if got != 2 {
		t.Errorf("the rest of the bucket gave %d of 3, want 2", got)
	}
	durationWithin(t, "wait for an empty bucket at 1/s", wait, time.Millisecond, time.Second)
	if got, _ := e.take("k", 1, 5, 1); got != 0 {
		t.Errorf("an empty bucket gave %d", got)
	}
	// Another key has a bucket of its own; want beyond burst gets burst.
	if got, wait := e.take("other", 1, 4, 10); got != 4 || wait <= 0 {
		t.Errorf("another key, want 10 of 4: got %d, wait %v; want 4 and a wait", got, wait)
	}
	if got, wait := e.take("k", 1, 5, 0); got != 0 || wait != 0 {
		t.Errorf("taking nothing = %d, %v", got, wait)
	}
}

func testRateRefill(t *testing.T, open opener) {
	e := newEnv(t, open)
	const rate, burst = 200.0, 3 // a token every 5ms
	var wait time.Duration
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatalf("the bucket never emptied at %v tokens a second", rate)
		}
		var got int
		if got, wait = e.take("k", rate, burst, 1); got == 0 {
			break
		}
	}
	emptied := e.now()
	durationWithin(t, "wait for an empty bucket", wait, time.Microsecond, time.Second/rate)
	// Once the wait has passed on the database clock, a token is there.
	e.waitPast(emptied.Add(wait))
	if got, _ := e.take("k", rate, burst, 1); got != 1 {
		t.Errorf("after the announced wait the bucket gave %d, want 1", got)
	}
	// However long it rests, it never holds more than burst.
	e.waitPast(e.now().Add(time.Duration(2*burst) * time.Second / rate))
	got, wait := e.take("k", rate, burst, 10)
	if got != burst || wait <= 0 {
		t.Errorf("a rested bucket gave %d of 10 (wait %v), want %d (its burst) and a wait", got, wait, burst)
	}
}

func testRateConcurrent(t *testing.T, open opener) {
	e := newEnv(t, open)
	// At a token per 1000 s nothing refills during the test: the takers
	// share exactly the burst.
	const rate, burst, takers, tries = 0.001, 20, 8, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for range takers {
		wg.Go(func() {
			for range tries {
				got, _, err := e.s.TakeTokens(e.ctx(), "shared", rate, burst, 1)
				if err != nil {
					t.Errorf("TakeTokens: %v", err)
					return
				}
				mu.Lock()
				total += got
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if total != burst {
		t.Errorf("%d concurrent takers got %d tokens in all from a bucket of %d", takers, total, burst)
	}
}

func testRateBadInput(t *testing.T, open opener) {
	e := newEnv(t, open)
	for _, tc := range []struct {
		rate        float64
		burst, want int
	}{{0, 5, 1}, {-1, 5, 1}, {1, 0, 1}, {1, 5, -1}} {
		if _, _, err := e.s.TakeTokens(e.ctx(), "bad", tc.rate, tc.burst, tc.want); err == nil {
			t.Errorf("TakeTokens(rate %v, burst %d, want %d) accepted it", tc.rate, tc.burst, tc.want)
		}
	}
	// Nothing was stored: a valid call finds a new, full bucket.
	if got, _ := e.take("bad", 1, 5, 5); got != 5 {
		t.Errorf("after refused calls the bucket gave %d of 5", got)
	}
}

func testInstanceSecret(t *testing.T, open opener) {
	e := newEnv(t, open)
	const racers = 8
	var wg sync.WaitGroup
	got := make([][]byte, racers)
	errs := make([]error, racers)
	for i := range racers {
		wg.Go(func() {
			got[i], errs[i] = e.s.InstanceSecret(e.ctx(), "jwt", fmt.Appendf(nil, "generated-by-%d", i))
		})
	}
	wg.Wait()
	for i := range racers {
		if errs[i] != nil {
			t.Fatalf("racer %d: %v", i, errs[i])
		}
		if !bytes.Equal(got[i], got[0]) {
			t.Errorf("racer %d got %q, racer 0 got %q: every node must get the same secret", i, got[i], got[0])
		}
	}
	if !bytes.HasPrefix(got[0], []byte("generated-by-")) {
		t.Errorf("the secret is %q, want one of the generated values", got[0])
	}
	if again, err := e.s.InstanceSecret(e.ctx(), "jwt", []byte("later")); err != nil || !bytes.Equal(again, got[0]) {
		t.Errorf("a later InstanceSecret = %q, %v; want the stored %q", again, err, got[0])
	}
	other, err := e.s.InstanceSecret(e.ctx(), "cookie", []byte("cookie-secret"))
	if err != nil || string(other) != "cookie-secret" {
		t.Errorf("another name = %q, %v; want its own generated value", other, err)
	}
}

func testRateDeleteIdle(t *testing.T, open opener) {
	e := newEnv(t, open)
	e.take("old", 1, 5, 5)
	now, err := e.s.Now(e.ctx())
	if err != nil {
		t.Fatal(err)
	}
	// A cut before the take keeps the bucket: it is not idle.
	if n, err := e.s.DeleteIdleRateBuckets(e.ctx(), now.Add(-time.Hour), 100); err != nil || n != 0 {
		t.Fatalf("DeleteIdleRateBuckets before the take = %d, %v; want 0", n, err)
	}
	if got, _ := e.take("old", 1, 5, 1); got != 0 {
		t.Fatalf("the kept bucket gave %d, want 0 (still empty)", got)
	}
	// A cut after it deletes it, and the key starts full again.
	if n, err := e.s.DeleteIdleRateBuckets(e.ctx(), now.Add(time.Hour), 100); err != nil || n != 1 {
		t.Fatalf("DeleteIdleRateBuckets after the take = %d, %v; want 1", n, err)
	}
	if got, _ := e.take("old", 1, 5, 5); got != 5 {
		t.Errorf("a deleted bucket gave %d, want 5 (it starts full)", got)
	}
}
