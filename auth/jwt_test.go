package auth_test

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/config"
	"github.com/commongrounds/commongrounds/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var (
	keyA = config.Key{ID: "a", Secret: []byte("0123456789abcdef0123456789abcdef")}
	keyB = config.Key{ID: "b", Secret: []byte("fedcba9876543210fedcba9876543210")}
)

func mustSigner(t *testing.T, now func() time.Time, keys ...config.Key) *auth.Signer {
	t.Helper()
	s, err := auth.NewSigner(keys, now)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forge signs claims with method and key under kid, as an attacker or a buggy issuer might.
func forge(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// goodClaims are the claims of a valid session token; tests remove or change one at a time.
func goodClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"typ": "session",
		"iss": "commongrounds",
		"aud": []string{"commongrounds-api"},
		"sub": "3f0c0d3e-2b1a-4c5d-8e9f-0a1b2c3d4e5f",
		"sid": "8d6e3a1b-7c2f-4e9d-a0b1-c2d3e4f5a6b7",
		"iat": now.Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
}

func TestSigner(t *testing.T) {
	t.Parallel()
	now := time.Now()
	signer := mustSigner(t, nil, keyA)

	t.Run("OK", func(t *testing.T) {
		tok, err := signer.Sign("sid-1", "user-1", now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		sid, sub, exp, err := signer.Verify(tok)
		if err != nil || sid != "sid-1" || sub != "user-1" || exp.Unix() != now.Add(time.Hour).Unix() {
			t.Fatalf("Verify=%q,%q,%v,%v, want sid-1,user-1,exp,nil", sid, sub, exp, err)
		}
	})
	t.Run("OKForgedWithRightKey", func(t *testing.T) {
		// The forging helper itself makes valid tokens: every refusal below is due to its one change.
		if _, _, _, err := signer.Verify(forge(t, jwt.SigningMethodHS256, keyA.Secret, "a", goodClaims(now))); err != nil {
			t.Fatalf("Verify=%v, want nil", err)
		}
	})

	refused := map[string]string{
		"ErrAlgNone":    forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "a", goodClaims(now)),
		"ErrAlgHS512":   forge(t, jwt.SigningMethodHS512, keyA.Secret, "a", goodClaims(now)),
		"ErrWrongKey":   forge(t, jwt.SigningMethodHS256, keyB.Secret, "a", goodClaims(now)),
		"ErrUnknownKID": forge(t, jwt.SigningMethodHS256, keyA.Secret, "zz", goodClaims(now)),
		"ErrNoKID":      forge(t, jwt.SigningMethodHS256, keyA.Secret, "", goodClaims(now)),
		"ErrExpired": forge(t, jwt.SigningMethodHS256, keyA.Secret, "a", func() jwt.MapClaims {
			c := goodClaims(now)
			c["exp"] = now.Add(-time.Hour).Unix()
			return c
		}()),
		"ErrIssuedInFuture": forge(t, jwt.SigningMethodHS256, keyA.Secret, "a", func() jwt.MapClaims {
			c := goodClaims(now)
			c["iat"] = now.Add(time.Hour).Unix()
			return c
		}()),
	}
	for _, claim := range []string{"exp", "iat", "sid", "sub", "typ", "iss", "aud"} {
		c := goodClaims(now)
		delete(c, claim)
		refused["ErrMissing_"+claim] = forge(t, jwt.SigningMethodHS256, keyA.Secret, "a", c)
	}
	for claim, value := range map[string]any{"aud": []string{"someone-else"}, "iss": "evil", "typ": "refresh"} {
		c := goodClaims(now)
		c[claim] = value
		refused["ErrWrong_"+claim] = forge(t, jwt.SigningMethodHS256, keyA.Secret, "a", c)
	}
	refused["ErrGarbage"] = "not.a.token"
	refused["ErrEmpty"] = ""
	good := forge(t, jwt.SigningMethodHS256, keyA.Secret, "a", goodClaims(now))
	parts := strings.Split(good, ".")
	tampered := goodClaims(now)
	tampered["sub"] = "someone-else"
	other := strings.Split(forge(t, jwt.SigningMethodHS256, keyB.Secret, "a", tampered), ".")
	refused["ErrTamperedPayload"] = parts[0] + "." + other[1] + "." + parts[2]

	for name, tok := range refused {
		t.Run(name, func(t *testing.T) {
			if _, _, _, err := signer.Verify(tok); err != auth.ErrInvalidToken {
				t.Fatalf("Verify=%v, want ErrInvalidToken", err)
			}
		})
	}

	t.Run("ErrExpiredByClock", func(t *testing.T) {
		tok, err := signer.Sign("s", "u", now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		later := mustSigner(t, func() time.Time { return now.Add(2 * time.Minute) }, keyA)
		if _, _, _, err := later.Verify(tok); err != auth.ErrInvalidToken {
			t.Fatalf("Verify after exp=%v, want ErrInvalidToken", err)
		}
	})
}

func TestSignerKeys(t *testing.T) {
	t.Parallel()
	t.Run("ErrShortKey", func(t *testing.T) {
		short := config.Key{ID: "s", Secret: make([]byte, 31)}
		if _, err := auth.NewSigner([]config.Key{short}, nil); err == nil {
			t.Fatal("NewSigner accepted a 31-byte key")
		}
		if _, err := auth.NewSigner([]config.Key{keyA, short}, nil); err == nil {
			t.Fatal("NewSigner accepted a 31-byte key among good ones")
		}
		if _, err := config.ParseKeys("JWT_KEYS", "s:"+strings.Repeat("A", 40)); err == nil {
			t.Fatal("ParseKeys accepted a 30-byte key")
		}
	})
	t.Run("ErrNoKeys", func(t *testing.T) {
		if _, err := auth.NewSigner(nil, nil); err == nil {
			t.Fatal("NewSigner accepted no keys")
		}
	})
	t.Run("OKRotation", func(t *testing.T) {
		old := mustSigner(t, nil, keyA)
		rotated := mustSigner(t, nil, keyB, keyA)
		oldTok, err := old.Sign("s1", "u1", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := rotated.Verify(oldTok); err != nil {
			t.Fatalf("a token of the previous key: Verify=%v, want nil", err)
		}
		newTok, err := rotated.Sign("s2", "u2", time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := jwt.NewParser().ParseUnverified(newTok, jwt.MapClaims{})
		if err != nil || tok.Header["kid"] != "b" || tok.Header["alg"] != "HS256" {
			t.Fatalf("new token header=%v (%v), want kid b and HS256", tok.Header, err)
		}
		if _, _, _, err := old.Verify(newTok); err != auth.ErrInvalidToken {
			t.Fatalf("a signer without the new key: Verify=%v, want ErrInvalidToken", err)
		}
	})
}
