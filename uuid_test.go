package commongrounds

import (
	"regexp"
	"testing"
)

// FuzzValidUUID checks ValidUUID against the regular expression it replaces.
func FuzzValidUUID(f *testing.F) {
	re := regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	for _, s := range []string{
		"",
		"0b8a3c2e-5f1d-4e7a-9c3b-2d1e0f4a5b6c",
		"0B8A3C2E-5F1D-4E7A-9C3B-2D1E0F4A5B6C",
		"0b8a3c2e-5f1d-4e7a-9c3b-2d1e0f4a5b6",
		"0b8a3c2e-5f1d-4e7a-9c3b-2d1e0f4a5b6c0",
		"0b8a3c2e5f1d-4e7a-9c3b-2d1e0f4a5b6c-",
		"0b8a3c2e-5f1d-4e7a-9c3b-2d1e0f4a5b6g",
		"0B8A3C2E-5F1D-4E7A-9C3B-2D1E0F4A5B6G",
		"0b8a3c2e-5f1d-4e7a-9c3b-2d1e0f4a5b6/",
		"0b8a3c2e-5f1d-4e7a-9c3b-2d1e0f4a5b6:",
		"0b8a3c2e-5f1d-4e7a-9c3b-2d1e0f4a5b6c\n",
		"{0b8a3c2e-5f1d-4e7a-9c3b-2d1e0f4a5b6}",
		"0b8a3c2e-5f1d-4e7a-9c3b-2d1e0f4a5b\u00e9",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidUUID(s), re.MatchString(s); got != want {
			t.Fatalf("ValidUUID(%q) = %v, the regular expression says %v", s, got, want)
		}
	})
}
