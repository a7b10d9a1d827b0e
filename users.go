package switchyard

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/internal/auth"
	"github.com/switchyard-dev/switchyard/internal/store"
)

// User is a person who logs in with an email and a password.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
	// Role is the user's role in the tenant the user was read through;
	// empty where no tenant applies (login).
	Role          string    `json:"role,omitempty"`
	InstanceAdmin bool      `json:"instance_admin"`
	CreatedAt     time.Time `json:"created_at"`
}

// NewUser describes a member to add to a tenant.
type NewUser struct {
	Email string
	// Password is required for a new user (at least 12 characters) and
	// must be empty when the email belongs to an existing user, who is
	// then added to the tenant with their own password.
	Password string
	// Role in the tenant: RoleViewer, RoleOperator, RoleAdmin or
	// RoleOwner. Required.
	Role string
	// InstanceAdmin makes a new user an instance administrator.
	InstanceAdmin bool
}

// Session lifetimes.
const (
	AccessTokenTTL  = 30 * time.Minute
	RefreshTokenTTL = 7 * 24 * time.Hour
)

// Session is what a login or a refresh hands out: a short-lived access
// token for requests and a refresh token, good once, for the next session.
type Session struct {
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	ExpiresIn        int    `json:"expires_in"` // seconds
	RefreshToken     string `json:"refresh_token"`
	RefreshExpiresIn int    `json:"refresh_expires_in"` // seconds
	User             *User  `json:"user"`
	// FamilyID names the session: every refresh keeps it, and Logout ends
	// it.
	FamilyID string `json:"-"`
}

// refreshSecretPrefix starts every refresh token, so that a leaked one is
// recognisable.
const refreshSecretPrefix = "syr_"

func normalEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	if e == "" {
		return "", invalid("email is required")
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || len(e) > 254 {
		return "", invalid("email %q is not a plain address like ana@example.com", email)
	}
	return e, nil
}

func tenantRole(role string) error {
	if role == RoleInstanceAdmin || RoleRank(role) == 0 {
		return invalid("role %q: want viewer, operator, admin or owner", role)
	}
	return nil
}

// AddMember adds a user to this client's tenant with a role, creating the
// user if the email is new. ErrConflict if the user is a member already.
func (c *Client) AddMember(ctx context.Context, u NewUser) (*User, error) {
	email, err := normalEmail(u.Email)
	if err != nil {
		return nil, err
	}
	if err := tenantRole(u.Role); err != nil {
		return nil, err
	}
	existing, err := c.store.UserByEmail(ctx, email)
	switch {
	case err == nil:
		if u.Password != "" {
			return nil, invalid("user %s exists: leave out the password to add them to this tenant", email)
		}
		if u.InstanceAdmin && !existing.InstanceAdmin {
			return nil, invalid("instance_admin can only be given when a user is created")
		}
		if _, err := c.store.GetMembership(ctx, c.cfg.TenantID, existing.ID); err == nil {
			return nil, fmt.Errorf("switchyard: add member %s: %w: already a member of tenant %s", email, ErrConflict, c.cfg.TenantID)
		}
	case errors.Is(err, ErrNotFound):
		if u.Password == "" {
			return nil, invalid("password is required for a new user")
		}
		hash, err := auth.HashPassword(u.Password)
		if err != nil {
			return nil, invalid("%s", err.Error())
		}
		existing = &store.User{ID: "usr_" + rand.Text(), Email: email, PasswordHash: hash, InstanceAdmin: u.InstanceAdmin}
		if err := c.store.CreateUser(ctx, *existing); err != nil {
			return nil, fmt.Errorf("switchyard: create user %s: %w", email, err)
		}
	default:
		return nil, fmt.Errorf("switchyard: add member %s: %w", email, err)
	}
	created, err := c.store.SetMembership(ctx, store.Membership{TenantID: c.cfg.TenantID, UserID: existing.ID, Role: u.Role})
	if err != nil {
		return nil, fmt.Errorf("switchyard: add member %s: %w", email, err)
	}
	if !created { // a concurrent add won
		return nil, fmt.Errorf("switchyard: add member %s: %w: already a member of tenant %s", email, ErrConflict, c.cfg.TenantID)
	}
	c.access.clear()
	return c.Member(ctx, existing.ID)
}

// Member returns a member of this client's tenant; ErrNotFound for an
// unknown user or one who is not a member.
func (c *Client) Member(ctx context.Context, userID string) (*User, error) {
	m, err := c.store.GetMembership(ctx, c.cfg.TenantID, userID)
	if err != nil {
		return nil, fmt.Errorf("switchyard: member %s: %w", userID, err)
	}
	u, err := c.store.GetUser(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("switchyard: member %s: %w", userID, err)
	}
	out := userFromStore(u)
	out.Role = m.Role
	return out, nil
}

// Members returns a page of this client's tenant's members in id order,
// after the cursor ("" for the first page), and the next page's cursor.
func (c *Client) Members(ctx context.Context, cursor string, limit int) ([]*User, string, error) {
	limit, err := pageLimit(limit)
	if err != nil {
		return nil, "", err
	}
	ms, err := c.store.TenantMembers(ctx, c.cfg.TenantID, cursor, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("switchyard: list members: %w", err)
	}
	out := make([]*User, 0, len(ms))
	for _, m := range ms {
		u, err := c.store.GetUser(ctx, m.UserID)
		if err != nil {
			return nil, "", fmt.Errorf("switchyard: list members: %w", err)
		}
		user := userFromStore(u)
		user.Role = m.Role
		out = append(out, user)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// SetMemberRole changes a member's role in this client's tenant; it takes
// effect on every node at once.
func (c *Client) SetMemberRole(ctx context.Context, userID, role string) (*User, error) {
	if err := tenantRole(role); err != nil {
		return nil, err
	}
	if _, err := c.store.GetMembership(ctx, c.cfg.TenantID, userID); err != nil {
		return nil, fmt.Errorf("switchyard: set role of %s: %w", userID, err)
	}
	if _, err := c.store.SetMembership(ctx, store.Membership{TenantID: c.cfg.TenantID, UserID: userID, Role: role}); err != nil {
		return nil, fmt.Errorf("switchyard: set role of %s: %w", userID, err)
	}
	c.access.clear()
	return c.Member(ctx, userID)
}

// RemoveMember removes a user from this client's tenant.
func (c *Client) RemoveMember(ctx context.Context, userID string) error {
	if err := c.store.DeleteMembership(ctx, c.cfg.TenantID, userID); err != nil {
		return fmt.Errorf("switchyard: remove member %s: %w", userID, err)
	}
	c.access.clear()
	return nil
}

// SetPassword replaces a user's password and ends all the user's sessions.
func (c *Client) SetPassword(ctx context.Context, userID, password string) error {
	hash, err := auth.HashPassword(password)
	if err != nil {
		return invalid("%s", err.Error())
	}
	if err := c.store.SetUserPassword(ctx, userID, hash); err != nil {
		return fmt.Errorf("switchyard: set password of %s: %w", userID, err)
	}
	c.access.clear()
	return nil
}

// User returns a user by id, cached for a few seconds; ErrNotFound if none.
func (c *Client) User(ctx context.Context, id string) (*User, error) {
	now := time.Now()
	if u, ok := c.access.users.get(id, now); ok {
		return &u, nil
	}
	gen := c.access.users.generation()
	su, err := c.store.GetUser(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("switchyard: user %s: %w", id, err)
	}
	u := userFromStore(su)
	c.access.users.put(id, *u, time.Time{}, now, gen)
	return u, nil
}

// UserByEmail returns a user by email; ErrNotFound if none.
func (c *Client) UserByEmail(ctx context.Context, email string) (*User, error) {
	e, err := normalEmail(email)
	if err != nil {
		return nil, err
	}
	u, err := c.store.UserByEmail(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("switchyard: user %s: %w", e, err)
	}
	return userFromStore(u), nil
}

// UserRole returns a user's role in a tenant, "" if not a member; cached
// for a few seconds, and dropped on every node when a role changes.
func (c *Client) UserRole(ctx context.Context, tenantID, userID string) (string, error) {
	now := time.Now()
	k := memberKey{tenantID, userID}
	if r, ok := c.access.roles.get(k, now); ok {
		return r, nil
	}
	gen := c.access.roles.generation()
	m, err := c.store.GetMembership(ctx, tenantID, userID)
	role := ""
	switch {
	case err == nil:
		role = m.Role
	case !errors.Is(err, ErrNotFound):
		return "", fmt.Errorf("switchyard: role of %s in %s: %w", userID, tenantID, err)
	}
	c.access.roles.put(k, role, time.Time{}, now, gen)
	return role, nil
}

// UserTenants lists the tenants a user belongs to, with the user's role in
// each.
func (c *Client) UserTenants(ctx context.Context, userID string) (map[string]string, error) {
	ms, err := c.store.UserMemberships(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("switchyard: tenants of %s: %w", userID, err)
	}
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		out[m.TenantID] = m.Role
	}
	return out, nil
}

var errBadLogin = fmt.Errorf("switchyard: %w: wrong email or password", ErrUnauthenticated)

// Login checks an email and password and starts a session. A wrong email
// and a wrong password fail alike, in the same time.
func (c *Client) Login(ctx context.Context, email, password string) (*Session, error) {
	e, err := normalEmail(email)
	if err != nil {
		auth.BurnPasswordCheck(password)
		return nil, errBadLogin
	}
	u, err := c.store.UserByEmail(ctx, e)
	if errors.Is(err, ErrNotFound) {
		auth.BurnPasswordCheck(password)
		return nil, errBadLogin
	}
	if err != nil {
		return nil, fmt.Errorf("switchyard: login: %w", err)
	}
	ok, err := auth.VerifyPassword(u.PasswordHash, password)
	if err != nil {
		return nil, fmt.Errorf("switchyard: login %s: %w", u.ID, err)
	}
	if !ok {
		return nil, errBadLogin
	}
	secret, hash := newRefreshSecret()
	family := "ses_" + rand.Text()
	now := time.Now()
	if err := c.store.CreateRefreshToken(ctx, store.RefreshToken{
		ID: "rft_" + rand.Text(), Hash: hash, FamilyID: family, UserID: u.ID, ExpiresAt: now.Add(RefreshTokenTTL),
	}); err != nil {
		return nil, fmt.Errorf("switchyard: login: %w", err)
	}
	return c.session(ctx, userFromStore(u), family, secret, now)
}

// Refresh trades a refresh token, once, for a new session of the same
// family. A token used before is taken for stolen: the whole family is
// revoked and the error matches both ErrUnauthenticated and ErrTokenReused.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*Session, error) {
	if !strings.HasPrefix(refreshToken, refreshSecretPrefix) {
		return nil, fmt.Errorf("switchyard: %w: malformed refresh token", ErrUnauthenticated)
	}
	sum := sha256.Sum256([]byte(refreshToken))
	secret, hash := newRefreshSecret()
	now := time.Now()
	old, err := c.store.RotateRefreshToken(ctx, sum[:], store.RefreshToken{
		ID: "rft_" + rand.Text(), Hash: hash, ExpiresAt: now.Add(RefreshTokenTTL),
	})
	switch {
	case errors.Is(err, ErrTokenReused):
		c.access.clear()
		userID := ""
		if old != nil {
			userID = old.UserID
		}
		return &Session{User: &User{ID: userID}}, fmt.Errorf("switchyard: %w: %w: the session is revoked", ErrUnauthenticated, ErrTokenReused)
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("switchyard: %w: unknown, expired or revoked refresh token", ErrUnauthenticated)
	case err != nil:
		return nil, fmt.Errorf("switchyard: refresh: %w", err)
	}
	u, err := c.User(ctx, old.UserID)
	if err != nil {
		return nil, fmt.Errorf("switchyard: refresh: %w", err)
	}
	return c.session(ctx, u, old.FamilyID, secret, now)
}

// Logout ends a session: its refresh tokens and its access tokens stop
// working on every node.
func (c *Client) Logout(ctx context.Context, familyID string) error {
	if err := c.store.RevokeRefreshFamily(ctx, familyID); err != nil {
		return fmt.Errorf("switchyard: logout: %w", err)
	}
	c.access.clear()
	return nil
}

// AuthenticateAccessToken verifies an access token and returns its user
// and session (family) id. Tokens of an ended session are refused.
func (c *Client) AuthenticateAccessToken(ctx context.Context, token string) (*User, string, error) {
	key, err := c.signingKey(ctx)
	if err != nil {
		return nil, "", err
	}
	now := time.Now()
	claims, err := auth.ParseAccess(key, token, now)
	if err != nil {
		return nil, "", fmt.Errorf("switchyard: %w: %w", ErrUnauthenticated, err)
	}
	active, ok := c.access.families.get(claims.FamilyID, now)
	if !ok {
		gen := c.access.families.generation()
		active, err = c.store.RefreshFamilyActive(ctx, claims.FamilyID)
		if err != nil {
			return nil, "", fmt.Errorf("switchyard: authenticate: %w", err)
		}
		c.access.families.put(claims.FamilyID, active, claims.ExpiresAt, now, gen)
	}
	if !active {
		return nil, "", fmt.Errorf("switchyard: %w: the session has ended", ErrUnauthenticated)
	}
	u, err := c.User(ctx, claims.UserID)
	if errors.Is(err, ErrNotFound) {
		return nil, "", fmt.Errorf("switchyard: %w: unknown user", ErrUnauthenticated)
	}
	if err != nil {
		return nil, "", err
	}
	return u, claims.FamilyID, nil
}

func (c *Client) session(ctx context.Context, u *User, family, refresh string, now time.Time) (*Session, error) {
	key, err := c.signingKey(ctx)
	if err != nil {
		return nil, err
	}
	access, err := auth.SignAccess(key, u.ID, family, now, AccessTokenTTL)
	if err != nil {
		return nil, fmt.Errorf("switchyard: %w", err)
	}
	return &Session{
		AccessToken: access, TokenType: "Bearer", ExpiresIn: int(AccessTokenTTL / time.Second),
		RefreshToken: refresh, RefreshExpiresIn: int(RefreshTokenTTL / time.Second),
		User: u, FamilyID: family,
	}, nil
}

func newRefreshSecret() (secret string, hash []byte) {
	secret = refreshSecretPrefix + rand.Text() + rand.Text() // 256 random bits
	sum := sha256.Sum256([]byte(secret))
	return secret, sum[:]
}

// signingKey returns the key access tokens are signed with, creating it in
// the store on first use.
func (c *Client) signingKey(ctx context.Context) ([]byte, error) {
	c.signing.mu.Lock()
	defer c.signing.mu.Unlock()
	if c.signing.key != nil {
		return c.signing.key, nil
	}
	fresh := make([]byte, 32)
	_, _ = rand.Read(fresh)
	key, err := c.store.InstanceSecret(ctx, auth.SigningKeyName, fresh)
	if err != nil {
		return nil, fmt.Errorf("switchyard: signing key: %w", err)
	}
	c.signing.key = key
	return key, nil
}

// signingKeyState holds the access-token key once read.
type signingKeyState struct {
	mu  sync.Mutex
	key []byte
}

func userFromStore(u *store.User) *User {
	return &User{ID: u.ID, Email: u.Email, InstanceAdmin: u.InstanceAdmin, CreatedAt: u.CreatedAt}
}
