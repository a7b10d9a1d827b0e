package switchyard

// Roles, weakest first. A tenant role applies in one tenant; an instance
// administrator may do anything in every tenant, and alone may create
// tenants.
const (
	// RoleViewer reads everything in the tenant and changes nothing.
	RoleViewer = "viewer"
	// RoleOperator also runs, retries and cancels jobs and pauses queues.
	RoleOperator = "operator"
	// RoleAdmin also manages keys, members, queue settings and reads the
	// audit log.
	RoleAdmin = "admin"
	// RoleOwner also grants and removes the owner role.
	RoleOwner = "owner"
	// RoleInstanceAdmin may do anything in any tenant. The first-start key
	// and SWITCHYARD_ADMIN_KEY have it.
	RoleInstanceAdmin = "instance_admin"
)

// Roles lists every role, weakest first.
var Roles = []string{RoleViewer, RoleOperator, RoleAdmin, RoleOwner, RoleInstanceAdmin}

// RoleRank orders roles: 1 for RoleViewer up to 5 for RoleInstanceAdmin, 0
// for anything else.
func RoleRank(role string) int {
	for i, r := range Roles {
		if r == role {
			return i + 1
		}
	}
	return 0
}

// RoleAtLeast reports whether role has every right of want.
func RoleAtLeast(role, want string) bool {
	return RoleRank(role) >= RoleRank(want) && RoleRank(want) > 0
}
