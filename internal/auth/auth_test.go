package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestPasswordHash(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not argon2id in PHC form", h)
	}
	h2, _ := HashPassword("correct horse battery")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
		ok, err := VerifyPassword(h, pw)
		if err != nil || ok != want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	if _, err := HashPassword("short"); err == nil {
		t.Error("a short password was hashed")
	}
	if _, err := VerifyPassword("$2a$10$bcrypt", "x"); err == nil {
		t.Error("a bcrypt hash was accepted")
	}
}

func TestAccessToken(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tok, err := SignAccess(secret, "usr_1", "fam_1", now, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ParseAccess(secret, tok, now.Add(29*time.Minute))
	if err != nil || c.UserID != "usr_1" || c.FamilyID != "fam_1" {
		t.Fatalf("ParseAccess = %+v, %v", c, err)
	}
	if _, err := ParseAccess(secret, tok, now.Add(31*time.Minute)); !errors.Is(err, ErrExpired) {
		t.Errorf("expired token: err = %v, want ErrExpired", err)
	}
	if _, err := ParseAccess([]byte("another secret, just as long....."), tok, now); err == nil {
		t.Error("a token signed with another key was accepted")
	}
	parts := strings.Split(tok, ".")
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	if _, err := ParseAccess(secret, none, now); err == nil {
		t.Error("an alg=none token was accepted")
	}
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"switchyard","sub":"usr_admin","sid":"fam_1","exp":9999999999}`)) + "." + parts[2]
	if _, err := ParseAccess(secret, tampered, now); err == nil {
		t.Error("a token with changed claims was accepted")
	}
	for _, bad := range []string{"", "a.b.c", "not a token"} {
		if _, err := ParseAccess(secret, bad, now); err == nil {
			t.Errorf("ParseAccess(%q) succeeded", bad)
		}
	}
}
