package auth_test

import (
	"regexp"
	"strings"
	"testing"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/auth"
)

func TestNormalizeEmail(t *testing.T) {
	t.Parallel()
	ok := []struct{ in, want string }{
		{"abc1de@virginia.edu", "abc1de@virginia.edu"},
		{"ABC1DE@Virginia.EDU", "abc1de@virginia.edu"},
		{"  abc1de@virginia.edu\n", "abc1de@virginia.edu"},
		{"first.last@virginia.edu", "first.last@virginia.edu"},
		{"a_b-c@virginia.edu", "a_b-c@virginia.edu"},
	}
	for _, c := range ok {
		t.Run("OK_"+c.in, func(t *testing.T) {
			got, err := auth.NormalizeEmail(c.in, "virginia.edu")
			if err != nil || got != c.want {
				t.Fatalf("NormalizeEmail(%q)=%q,%v, want %q", c.in, got, err, c.want)
			}
		})
	}
	bad := []string{
		"",
		"abc1de",
		"abc1de@",
		"@virginia.edu",
		"abc1de@gmail.com",
		"a@virginia.edu.evil.com",
		"virginia.edu@evil.com",
		"a@evil.virginia.edu",
		"a@virginiaXedu",
		"a@virginia.edu@virginia.edu",
		`"a@b"@virginia.edu`,
		`"abc"@virginia.edu`,
		"a(comment)@virginia.edu",
		"abc+tag@virginia.edu",
		"abc%evil.com@virginia.edu",
		"abc de@virginia.edu",
		".abc@virginia.edu",
		"abc.@virginia.edu",
		"a..b@virginia.edu",
		"abc@virginia.edu.",
		"аbc@virginia.edu",           // Cyrillic а
		"abc@virginіa.edu",           // Cyrillic і
		"abc@virginia.edu\u200b",     // zero-width space
		"abc\x00@virginia.edu",       // NUL
		"ａbc@virginia.edu",           // full-width a
		"abc@virginia.edu\r\nBcc: x", // header injection
		"<abc@virginia.edu>",
		"Abc <abc@virginia.edu>",
		strings.Repeat("a", 65) + "@virginia.edu",
	}
	for _, in := range bad {
		t.Run("ErrInvalid_"+in, func(t *testing.T) {
			got, err := auth.NormalizeEmail(in, "virginia.edu")
			if cg.ErrorCode(err) != cg.EINVALIDEMAIL {
				t.Fatalf("NormalizeEmail(%q)=%q,%v, want invalid_email", in, got, err)
			}
		})
	}
	t.Run("OKOtherDomain", func(t *testing.T) {
		if got, err := auth.NormalizeEmail("x1@Example.ORG", "example.org"); err != nil || got != "x1@example.org" {
			t.Fatalf("got %q,%v", got, err)
		}
	})
}

// dbEmailRE is the users.email CHECK of the schema: every accepted address must pass it.
var dbEmailRE = regexp.MustCompile(`^[a-z0-9._%+-]+@[a-z0-9-]+(\.[a-z0-9-]+)+$`)

func FuzzNormalizeEmail(f *testing.F) {
	for _, s := range []string{"abc1de@virginia.edu", "A@VIRGINIA.EDU", "a@virginia.edu.evil.com", `"a"@virginia.edu`, "а@virginia.edu", "a..b@virginia.edu"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := auth.NormalizeEmail(in, "virginia.edu")
		if err != nil {
			if cg.ErrorCode(err) != cg.EINVALIDEMAIL {
				t.Fatalf("NormalizeEmail(%q): code %q, want invalid_email", in, cg.ErrorCode(err))
			}
			return
		}
		if !dbEmailRE.MatchString(got) || !strings.HasSuffix(got, "@virginia.edu") || strings.Count(got, "@") != 1 || got != strings.ToLower(got) {
			t.Fatalf("NormalizeEmail(%q)=%q: not a plain lower-case address of the domain", in, got)
		}
		if !strings.EqualFold(strings.TrimSpace(in), got) {
			t.Fatalf("NormalizeEmail(%q)=%q: not the same address", in, got)
		}
	})
}
