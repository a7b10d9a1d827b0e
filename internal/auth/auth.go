// Package auth holds the credential machinery behind users and sessions:
// argon2id password hashes in their PHC string form, and the signed access
// tokens (JWT, HS256) handed out at login.
//
// Access tokens are short-lived and carry only who the user is (sub) and
// which refresh-token family (session) issued them (sid), so that a logout
// or a detected refresh-token reuse ends them too: the caller checks the
// family is still active.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, one
// lane), about 30 ms on the project's machines. They are stored with each
// hash, so raising them later keeps old hashes verifiable.
const (
	argonMemoryKiB = 19 * 1024
	argonTime      = 2
	argonThreads   = 1
	argonKeyLen    = 32
	argonSaltLen   = 16
)

// MinPasswordLength is the shortest password accepted.
const MinPasswordLength = 12

// MaxPasswordLength bounds the work one login attempt can cause.
const MaxPasswordLength = 1024

// HashPassword returns the argon2id hash of password in PHC string form:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>.
func HashPassword(password string) (string, error) {
	if utf8.RuneCountInString(password) < MinPasswordLength {
		return "", fmt.Errorf("password must be at least %d characters", MinPasswordLength)
	}
	if len(password) > MaxPasswordLength {
		return "", fmt.Errorf("password must be at most %d bytes", MaxPasswordLength)
	}
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: salt: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemoryKiB, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemoryKiB, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches hash, in time that does
// not depend on where they differ.
func VerifyPassword(hash, password string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("auth: not an argon2id hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, fmt.Errorf("auth: argon2id version %q", parts[2])
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, fmt.Errorf("auth: argon2id parameters %q: %w", parts[3], err)
	}
	b64 := base64.RawStdEncoding
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return false, fmt.Errorf("auth: argon2id salt: %w", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil {
		return false, fmt.Errorf("auth: argon2id hash: %w", err)
	}
	if len(password) > MaxPasswordLength {
		return false, nil
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// dummyHash is verified against when a login names no known user, so that
// an unknown email costs as long as a wrong password and answers cannot be
// told apart by time.
var dummyHash = sync.OnceValue(func() string {
	h, err := HashPassword("not a password anyone has")
	if err != nil {
		panic(err)
	}
	return h
})

// BurnPasswordCheck spends the time of one password verification.
func BurnPasswordCheck(password string) { _, _ = VerifyPassword(dummyHash(), password) }

// SigningKeyName names the instance secret (in the store) that signs
// access tokens; every node reads the same one.
const SigningKeyName = "access-token-hs256"

// AccessClaims are what an access token says.
type AccessClaims struct {
	UserID    string
	FamilyID  string
	ExpiresAt time.Time
}

// issuer names Switchyard in its tokens; tokens from other issuers sharing
// a secret by accident are refused.
const issuer = "switchyard"

type claims struct {
	jwt.RegisteredClaims
	SessionID string `json:"sid"`
}

// SignAccess returns an HS256 access token for the user and session.
func SignAccess(secret []byte, userID, familyID string, now time.Time, ttl time.Duration) (string, error) {
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   userID,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        rand.Text(),
		},
		SessionID: familyID,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign access token: %w", err)
	}
	return s, nil
}

// ErrExpired: the token was genuine but has expired.
var ErrExpired = errors.New("access token expired")

// ParseAccess verifies an access token: HS256 with secret only (alg=none and
// every other algorithm are refused), issued by Switchyard, not expired at
// now.
func ParseAccess(secret []byte, token string, now time.Time) (AccessClaims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	if errors.Is(err, jwt.ErrTokenExpired) {
		return AccessClaims{}, ErrExpired
	}
	if err != nil {
		return AccessClaims{}, fmt.Errorf("invalid access token: %w", err)
	}
	if c.Subject == "" || c.SessionID == "" {
		return AccessClaims{}, errors.New("invalid access token: no subject or session")
	}
	return AccessClaims{UserID: c.Subject, FamilyID: c.SessionID, ExpiresAt: c.ExpiresAt.Time}, nil
}

// LooksLikeJWT tells an access token from an API key without parsing it.
func LooksLikeJWT(s string) bool { return strings.Count(s, ".") == 2 }
