package client

import (
	"context"
	"encoding/json"
	"net/http"
	"time"
)

// Session is what Login and Refresh hand out: a short-lived access token to
// authenticate with (Config.APIKey or WithCredential) and a refresh token,
// good once, for the next session.
type Session struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"` // "Bearer"
	// ExpiresIn is how long the access token lasts; the wire carries
	// seconds.
	ExpiresIn    time.Duration `json:"expires_in"`
	RefreshToken string        `json:"refresh_token"`
	// RefreshExpiresIn is how long the refresh token lasts; the wire
	// carries seconds.
	RefreshExpiresIn time.Duration `json:"refresh_expires_in"`
	User             *User         `json:"user"`

	// ExpiresAt and RefreshExpiresAt are when the tokens expire by this
	// machine's clock: the time the answer arrived plus the lifetimes.
	// They are not on the wire.
	ExpiresAt        time.Time `json:"-"`
	RefreshExpiresAt time.Time `json:"-"`

	// Raw is the session exactly as the server sent it. It is not encoded.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes the API's session shape, keeping a copy in Raw.
func (s *Session) UnmarshalJSON(b []byte) error {
	type plain Session
	*s = Session{}
	w := struct {
		*plain
		ExpiresIn        float64 `json:"expires_in"`
		RefreshExpiresIn float64 `json:"refresh_expires_in"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	s.ExpiresIn, s.RefreshExpiresIn = seconds(w.ExpiresIn), seconds(w.RefreshExpiresIn)
	s.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// Me is who the client's credential is and what it may do where.
type Me struct {
	Type string  `json:"type"` // "user" or "key"
	User *User   `json:"user"` // for an access token; nil for a key
	Key  *APIKey `json:"key"`  // for an API key; nil for a user
	// TenantID is the tenant requests act in; "" when none is chosen (a
	// user of several tenants who sent no tenant).
	TenantID string `json:"tenant_id"`
	// Role is the role in TenantID: a tenant role or RoleInstanceAdmin.
	Role string `json:"role"`

	// Raw is the answer exactly as the server sent it. It is not encoded.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes GET /v1/me, keeping a copy in Raw.
func (m *Me) UnmarshalJSON(b []byte) error {
	type plain Me
	*m = Me{}
	w := struct {
		*plain
		TenantID *string `json:"tenant_id"`
	}{plain: (*plain)(m)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	if w.TenantID != nil {
		m.TenantID = *w.TenantID
	}
	m.Raw = append(json.RawMessage(nil), b...)
	return nil
}

// Login checks a user's email and password and starts a session. A wrong
// email or password answers an *Error with code "unauthenticated"; too
// many attempts, code "rate_limited". The client's own credential is not
// sent.
func (c *Client) Login(ctx context.Context, email, password string) (*Session, error) {
	in := struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}{email, password}
	return c.WithCredential("").session(ctx, "/v1/auth/login", in)
}

// Refresh trades a refresh token, once, for a new session. A refresh token
// used before answers "unauthenticated" and ends the whole session, since
// it must have been stolen. The client's own credential is not sent.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*Session, error) {
	in := struct {
		RefreshToken string `json:"refresh_token"`
	}{refreshToken}
	return c.WithCredential("").session(ctx, "/v1/auth/refresh", in)
}

func (c *Client) session(ctx context.Context, path string, in any) (*Session, error) {
	s := new(Session)
	if _, err := c.do(ctx, http.MethodPost, path, nil, in, s); err != nil {
		return nil, err
	}
	now := time.Now()
	s.ExpiresAt, s.RefreshExpiresAt = now.Add(s.ExpiresIn), now.Add(s.RefreshExpiresIn)
	return s, nil
}

// Logout ends the session of the client's access token: its refresh token
// and its access tokens stop working. An API key cannot log out (revoke it
// with RevokeKey).
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodPost, "/v1/auth/logout", nil, nil, nil)
	return err
}

// Me returns who the client's credential is, the tenant it acts in and its
// role there.
func (c *Client) Me(ctx context.Context) (*Me, error) {
	m := new(Me)
	if _, err := c.do(ctx, http.MethodGet, "/v1/me", nil, nil, m); err != nil {
		return nil, err
	}
	return m, nil
}
