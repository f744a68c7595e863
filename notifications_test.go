package commongrounds_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	cg "github.com/commongrounds/commongrounds"
)

// TestExcerpt: an excerpt keeps at most ExcerptRunes characters, cut between two characters.
func TestExcerpt(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"Short", "hello", "hello"},
		{"Exact", strings.Repeat("a", 140), strings.Repeat("a", 140)},
		{"Cut", strings.Repeat("a", 141), strings.Repeat("a", 140) + "…"},
		{"Multibyte", strings.Repeat("日", 200), strings.Repeat("日", 140) + "…"},
		{"Emoji", strings.Repeat("🎓", 139) + "éé", strings.Repeat("🎓", 139) + "é…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := cg.Excerpt(tc.in)
			if got != tc.want || !utf8.ValidString(got) {
				t.Fatalf("Excerpt = %q, want %q", got, tc.want)
			}
		})
	}
}
