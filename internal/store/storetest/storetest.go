// Package storetest is the conformance suite that holds every store driver to
// one behaviour: the contract written in package store's doc comments and in
// the schema specification. A driver's own test calls Run with a function
// that opens a fresh, empty, migrated store; every subtest gets its own store,
// so subtests run in parallel and can count rows, notifications and
// maintenance results exactly.
//
// The suite never sleeps to wait for something. Where time has to pass (a
// lease or a leadership expiring, a job falling due), it polls the store's own
// clock, Store.Now, which is the clock the driver's decisions use. Waits on
// notifications block on channels, with a generous timeout only as a failure
// bound. Times are compared against database-clock readings taken just before
// and just after an operation, never against the process clock.
package storetest

import (
	"testing"

	"github.com/switchyard-dev/switchyard/internal/store"
)

// opener returns a fresh, empty, migrated store for t and closes it when t
// ends.
type opener = func(t *testing.T) store.Store

// suiteTest is one conformance test. It opens its own store(s) through open,
// so it can run in parallel with every other test.
type suiteTest struct {
	name string
	run  func(t *testing.T, open opener)
}

// Run runs the conformance suite. open must return a fresh, empty, migrated
// store for the test it is given and register the store's Close with
// t.Cleanup. The suite calls Listen itself, right after open, in the tests
// that check notifications, because Listen may only be called before the
// store is first used.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	groups := []struct {
		name  string
		tests []suiteTest
	}{
		{"Basics", basicsTests},
		{"Insert", insertTests},
		{"Unique", uniqueTests},
		{"Lease", leaseTests},
		{"Complete", completeTests},
		{"Heartbeat", heartbeatTests},
		{"Progress", progressTests},
		{"Get", getTests},
		{"List", listTests},
		{"Cancel", cancelTests},
		{"Retry", retryTests},
		{"Rescue", rescueTests},
		{"Promote", promoteTests},
		{"Retention", retentionTests},
		{"Leader", leaderTests},
		{"Queues", queueTests},
		{"Delete", deleteTests},
		{"APIKeys", apiKeyTests},
		{"Notify", notifyTests},
		{"Tenants", tenantTests},
		{"Users", userTests},
		{"Memberships", membershipTests},
		{"AccessKeys", accessKeyTests},
		{"RefreshTokens", refreshTests},
		{"Audit", auditTests},
		{"RateLimit", rateTests},
		{"InstanceSecrets", secretTests},
		{"Hub", hubTests},
		{"Workers", workerTests},
		{"Events", eventTests},
		{"Definitions", definitionTests},
		{"Deliveries", deliveryTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, open)
				})
			}
		})
	}
}
