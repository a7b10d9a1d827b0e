package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"
)

// Roles, weakest first. A tenant role applies in one tenant; an instance
// administrator may do anything in any tenant.
const (
	RoleViewer        = "viewer"         // reads everything in the tenant
	RoleOperator      = "operator"       // also runs, retries and cancels jobs, pauses queues
	RoleAdmin         = "admin"          // also manages members, keys, queue settings; reads the audit log
	RoleOwner         = "owner"          // also grants and removes the owner role
	RoleInstanceAdmin = "instance_admin" // anything in any tenant; creates tenants
)

// User is a person who logs in with an email and a password, as the server
// shows them.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	// Role is the user's role in the tenant the user was read through;
	// "" where no tenant applies (a session's user).
	Role          string    `json:"role"`
	InstanceAdmin bool      `json:"instance_admin"`
	CreatedAt     time.Time `json:"created_at"`

	// Raw is the user exactly as the server sent them, including fields
	// this version of the client does not know. It is not encoded.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the API's user shape, keeping a copy in Raw.
func (u *User) UnmarshalJSON(b []byte) error {
	type plain User
	*u = User{}
	if err := json.Unmarshal(b, (*plain)(u)); err != nil {
		return err
	}
	u.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// UserRequest adds a member to the client's tenant.
type UserRequest struct {
	Email string `json:"email"`
	// Password is required for a new email (at least 12 characters) and
	// must be empty for an existing user, who joins the tenant with their
	// own password.
	Password string `json:"password,omitempty"`
	// Role in the tenant: RoleViewer, RoleOperator, RoleAdmin or
	// RoleOwner, at most the caller's own. Required.
	Role string `json:"role"`
	// InstanceAdmin makes a new user an instance administrator; only an
	// instance administrator may ask for it.
	InstanceAdmin bool `json:"instance_admin,omitempty"`
}

// UserUpdate is what UpdateUser changes; nil fields stay as they are.
type UserUpdate struct {
	// Role in the tenant; needs the admin role, and the owner role to
	// grant or take away owner.
	Role *string `json:"role,omitempty"`
	// Password may be set by the user themselves or an instance
	// administrator; it ends all the user's sessions.
	Password *string `json:"password,omitempty"`
}

// UserPage is one page of ListUsers.
type UserPage = Page[User]

// CreateUser adds a member to the tenant, creating the user when the email
// is new, and returns them. A user who is a member already answers an
// *Error with code "conflict".
func (c *Client) CreateUser(ctx context.Context, req UserRequest) (*User, error) {
	u := new(User)
	if _, err := c.do(ctx, http.MethodPost, "/v1/users", nil, req, u); err != nil {
		return nil, err
	}
	return u, nil
}

// ListUsers returns one page of the tenant's members in id order.
func (c *Client) ListUsers(ctx context.Context, p ListParams) (*UserPage, error) {
	return listPage[User](ctx, c, "/v1/users", p.query())
}

// GetUser returns a member of the tenant with their role there.
func (c *Client) GetUser(ctx context.Context, id string) (*User, error) {
	return c.userCall(ctx, http.MethodGet, id, nil)
}

// UpdateUser changes a member's role or password and returns them. Every
// part is checked before any is changed, so a refused request changes
// nothing.
func (c *Client) UpdateUser(ctx context.Context, id string, u UserUpdate) (*User, error) {
	return c.userCall(ctx, http.MethodPatch, id, u)
}

// DeleteUser removes a member from the tenant; the user keeps their other
// memberships.
func (c *Client) DeleteUser(ctx context.Context, id string) error {
	if id == "" {
		return errEmpty("user id")
	}
	_, err := c.do(ctx, http.MethodDelete, "/v1/users/"+url.PathEscape(id), nil, nil, nil)
	return err
}

func (c *Client) userCall(ctx context.Context, method, id string, in any) (*User, error) {
	if id == "" {
		return nil, errEmpty("user id")
	}
	u := new(User)
	if _, err := c.do(ctx, method, "/v1/users/"+url.PathEscape(id), nil, in, u); err != nil {
		return nil, err
	}
	return u, nil
}
