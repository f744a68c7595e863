package auth_test

import (
	"bytes"
	"testing"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/config"
)

func TestNormalizePhone(t *testing.T) {
	t.Parallel()
	ok := []struct{ in, want string }{
		{"+1 434 555 0100", "+14345550100"},
		{"(434) 555-0100", "+14345550100"},
		{"434.555.0100", "+14345550100"},
		{"+14345550100", "+14345550100"},
		{"1-434-555-0100", "+14345550100"},
		{"+44 20 7946 0958", "+442079460958"},
	}
	for _, c := range ok {
		t.Run("OK_"+c.in, func(t *testing.T) {
			if got, err := auth.NormalizePhone(c.in); err != nil || got != c.want {
				t.Fatalf("NormalizePhone(%q)=%q,%v, want %q", c.in, got, err, c.want)
			}
		})
	}
	for _, in := range []string{"", "12345", "abc", "+1 434 555 01000", "+999 123", "555-0100", "+1 434 555 0100 0100 0100 0100 0100 0100 0100 0100 0100 0100 0100 0100"} {
		t.Run("ErrInvalid_"+in, func(t *testing.T) {
			if got, err := auth.NormalizePhone(in); cg.ErrorCode(err) != cg.EINVALIDPHONE {
				t.Fatalf("NormalizePhone(%q)=%q,%v, want invalid_phone", in, got, err)
			}
		})
	}
}

func TestPhoneHasher(t *testing.T) {
	t.Parallel()
	p1 := config.Key{ID: "1", Secret: bytes.Repeat([]byte{1}, 32)}
	p2 := config.Key{ID: "2", Secret: bytes.Repeat([]byte{2}, 32)}
	old, err := auth.NewPhoneHasher([]config.Key{p1})
	if err != nil {
		t.Fatal(err)
	}
	rotated, err := auth.NewPhoneHasher([]config.Key{p2, p1})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("OKRotation", func(t *testing.T) {
		h1, v1 := old.Hash("+14345550100")
		h2, v2 := rotated.Hash("+14345550100")
		if v1 != 1 || v2 != 2 || bytes.Equal(h1, h2) {
			t.Fatalf("versions %d,%d (want 1,2); hashes equal=%v (want different)", v1, v2, bytes.Equal(h1, h2))
		}
		all := rotated.HashAll("+14345550100")
		if len(all) != 2 || !bytes.Equal(all[0], h2) || !bytes.Equal(all[1], h1) {
			t.Fatal("HashAll does not hold the hash under each pepper, newest first")
		}
		if o, _ := old.Hash("+14345550101"); bytes.Equal(o, h1) {
			t.Fatal("two numbers hash alike")
		}
	})
	t.Run("ErrShortPepper", func(t *testing.T) {
		if _, err := auth.NewPhoneHasher([]config.Key{{ID: "1", Secret: make([]byte, 16)}}); err == nil {
			t.Fatal("NewPhoneHasher accepted a 16-byte pepper")
		}
	})
	t.Run("ErrVersionNotNumber", func(t *testing.T) {
		if _, err := auth.NewPhoneHasher([]config.Key{{ID: "v1", Secret: make([]byte, 32)}}); err == nil {
			t.Fatal("NewPhoneHasher accepted version v1")
		}
	})
	t.Run("ErrNoPeppers", func(t *testing.T) {
		if _, err := auth.NewPhoneHasher(nil); err == nil {
			t.Fatal("NewPhoneHasher accepted no peppers")
		}
	})
}
