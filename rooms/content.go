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
// white space trimmed, the bidirectional embeddings, overrides and isolates it leaves open closed
// at its end (closeBidi), 1 to MaxContentChars characters, and no control characters (C0, DEL,
// C1) but newline and tab. Anything else is invalid_content.
func NormalizeContent(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", cg.Errorf(cg.EINVALIDCONTENT, "content must be valid UTF-8.")
	}
	s = closeBidi(strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n")))
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

// Bidirectional formatting characters (Unicode Standard Annex #9).
const (
	bidiLRE = '\u202A' // left-to-right embedding
	bidiRLE = '\u202B' // right-to-left embedding
	bidiPDF = '\u202C' // pop directional formatting: ends an embedding or override
	bidiLRO = '\u202D' // left-to-right override
	bidiRLO = '\u202E' // right-to-left override
	bidiLRI = '\u2066' // left-to-right isolate
	bidiRLI = '\u2067' // right-to-left isolate
	bidiFSI = '\u2068' // first strong isolate
	bidiPDI = '\u2069' // pop directional isolate: ends an isolate
)

// closeBidi appends to s the closers of the embeddings, overrides and isolates it leaves open,
// innermost first, so that no message can reorder the text shown after it (a U+202E that
// turned the rest of the page around). It follows the pairing rules of UAX #9: a PDF ends the
// innermost embedding or override unless an isolate is open inside it, a PDI ends the innermost
// isolate and whatever is open inside it, and closers without an opener do nothing (they stay).
// Where the full algorithm would ignore an opener (past its depth limit of 125, or after a
// paragraph break) this may add a closer too many, which does nothing either.
func closeBidi(s string) string {
	if !strings.ContainsAny(s, "\u202A\u202B\u202D\u202E\u2066\u2067\u2068") {
		return s // the common case: no opener at all
	}
	var open []rune // the closers owed, outermost first
	for _, r := range s {
		switch r {
		case bidiLRE, bidiRLE, bidiLRO, bidiRLO:
			open = append(open, bidiPDF)
		case bidiLRI, bidiRLI, bidiFSI:
			open = append(open, bidiPDI)
		case bidiPDF:
			if len(open) > 0 && open[len(open)-1] == bidiPDF {
				open = open[:len(open)-1]
			}
		case bidiPDI:
			if i := lastIndex(open, bidiPDI); i >= 0 {
				open = open[:i]
			}
		}
	}
	if len(open) == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 3*len(open))
	b.WriteString(s)
	for i := len(open) - 1; i >= 0; i-- {
		b.WriteRune(open[i])
	}
	return b.String()
}

// lastIndex returns the index of the last r in rs, or -1.
func lastIndex(rs []rune, r rune) int {
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i] == r {
			return i
		}
	}
	return -1
}
