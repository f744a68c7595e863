package rooms

import (
	"strings"
	"unicode"
	"unicode/utf8"

	cg "github.com/commongrounds/commongrounds"
)

// MaxContentChars is the most characters a message may have after trimming.
const MaxContentChars = 4000

// MaxClientMsgIDLen is the longest client_msg_id accepted, in bytes.
const MaxClientMsgIDLen = 128

// NormalizeContent returns the content to store: valid UTF-8, CRLF folded to LF, surrounding
// white space trimmed, 1 to MaxContentChars characters, and no control characters but newline
// and tab. Anything else is invalid_content.
func NormalizeContent(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", cg.Errorf(cg.EINVALIDCONTENT, "content must be valid UTF-8.")
	}
	s = strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n"))
	n := utf8.RuneCountInString(s)
	if n == 0 {
		return "", cg.Errorf(cg.EINVALIDCONTENT, "content must not be empty.")
	}
	if n > MaxContentChars {
		return "", cg.Errorf(cg.EINVALIDCONTENT, "content has %d characters; at most %d are allowed.", n, MaxContentChars)
	}
	for _, r := range s {
		if (unicode.IsControl(r) && r != '\n' && r != '\t') || r == '\u2028' || r == '\u2029' {
			return "", cg.Errorf(cg.EINVALIDCONTENT, "content must not contain control characters (U+%04X).", r)
		}
	}
	return s, nil
}

// ValidClientMsgID reports whether id is acceptable as a client_msg_id: 1 to 128 printable
// ASCII characters.
func ValidClientMsgID(id string) bool {
	if len(id) == 0 || len(id) > MaxClientMsgIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return false
		}
	}
	return true
}
