package auth

import (
	"strings"

	cg "github.com/commongrounds/commongrounds"
)

// maxEmailLength is the longest address accepted (RFC 5321's limit on a forward path).
const maxEmailLength = 254

// NormalizeEmail checks that address is a plain address of domain and returns it lower-case,
// or an invalid_email error.
//
// Only the unambiguous subset of addresses is accepted: ASCII letters, digits, '.', '_' and '-'
// in the local part (no leading, trailing or doubled dot), then '@', then exactly domain
// (case-insensitive). So quoted local parts, comments, sub-addresses (user+tag, which would let
// one mailbox hold many accounts), look-alike Unicode, other domains and their sub- and
// super-domains (a@virginia.edu.evil.com, virginia.edu@evil.com) are all refused.
func NormalizeEmail(address, domain string) (string, error) {
	bad := func() (string, error) {
		return "", cg.Errorf(cg.EINVALIDEMAIL, "Use your @%s address.", domain)
	}
	address = strings.TrimSpace(address)
	if address == "" || len(address) > maxEmailLength {
		return bad()
	}
	for i := 0; i < len(address); i++ {
		if address[i] >= 0x80 {
			return bad()
		}
	}
	address = strings.ToLower(address)
	local, dom, ok := strings.Cut(address, "@")
	if !ok || dom != strings.ToLower(domain) || !validLocalPart(local) {
		return bad()
	}
	return address, nil
}

// validLocalPart reports whether s is a non-empty dot-atom of [a-z0-9_-] without leading,
// trailing or doubled dots, at most 64 characters long.
func validLocalPart(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// ComputingID returns the local part of a normalised address: a student's computing id.
func ComputingID(email string) string {
	local, _, _ := strings.Cut(email, "@")
	return local
}
