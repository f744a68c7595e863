package push

import (
	"crypto/ecdh"
	"encoding/base64"
	"net"
	"net/url"
	"strings"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// DefaultAllowedHosts are the push services of the browsers that implement Web Push:
// Chrome, and the browsers built on Chromium (Opera, Samsung Internet, Brave), use Firebase
// Cloud Messaging; Firefox uses Mozilla's autopush; Safari on macOS and on iOS 16.4+ (installed
// web apps) uses Apple's, whose documentation asks to allow *.push.apple.com; Edge uses the
// Windows Push Notification Services, whose endpoints are subdomains of notify.windows.com.
var DefaultAllowedHosts = []string{
	"fcm.googleapis.com",
	"updates.push.services.mozilla.com",
	"*.push.apple.com",
	"*.notify.windows.com",
}

// Limits of a subscription's fields.
const (
	maxEndpointLen = 2048
	p256dhLen      = 65
	authLen        = 16
)

// checkHostPattern reports whether p is a pattern of Options.AllowedHosts.
func checkHostPattern(p string) bool {
	host, port, err := net.SplitHostPort(p)
	if err != nil {
		host, port = p, ""
	}
	host = strings.TrimPrefix(host, "*.")
	if host == "" || strings.ContainsAny(host, "*/@?#[] ") || strings.HasPrefix(host, ".") || strings.HasSuffix(host, ".") {
		return false
	}
	if port != "" && strings.Trim(port, "0123456789") != "" {
		return false
	}
	return true
}

// allowlist matches endpoint hosts against patterns of AllowedHosts.
type allowlist []string

// match returns the index of the first pattern that u's host and port match, or -1.
func (a allowlist) match(u *url.URL) int {
	host, port := strings.ToLower(u.Hostname()), u.Port()
	for i, p := range a {
		ph, pp, err := net.SplitHostPort(p)
		if err != nil {
			ph, pp = p, ""
		}
		if pp == "" {
			if port != "" && port != "443" {
				continue
			}
		} else if port != pp {
			continue
		}
		if suffix, ok := strings.CutPrefix(ph, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return i
			}
		} else if host == ph {
			return i
		}
	}
	return -1
}

// ParseSubscription checks a subscription as a browser's PushSubscription.toJSON() gives it:
// the endpoint an absolute https URL of at most 2048 bytes on an allowed host, p256dh the
// base64url of an uncompressed point of P-256 (65 bytes), auth the base64url of 16 bytes, and
// expirationTime, when given, milliseconds since 1970. Errors: invalid_endpoint,
// endpoint_not_allowed, invalid_push_key, invalid.
func (s *Service) ParseSubscription(endpoint, p256dh, auth string, expirationTime *float64) (*cg.PushSubscription, error) {
	if len(endpoint) > maxEndpointLen {
		return nil, cg.Errorf(cg.EINVALIDENDPOINT, "The endpoint is longer than %d bytes.", maxEndpointLen)
	}
	u, err := url.Parse(endpoint)
	if err != nil || !cg.StorableText(endpoint) || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return nil, cg.Errorf(cg.EINVALIDENDPOINT, "The endpoint must be an absolute https URL, as PushSubscription.endpoint gives it.")
	}
	if s.allowed.match(u) < 0 {
		return nil, cg.Errorf(cg.EENDPOINTNOTALLOWED, "The endpoint's host %s is not a push service this server sends to.", u.Host)
	}
	key, err := decodeKey("p256dh", p256dh, p256dhLen)
	if err != nil {
		return nil, err
	}
	if _, err := ecdh.P256().NewPublicKey(key); err != nil {
		return nil, cg.Errorf(cg.EINVALIDPUSHKEY, "keys.p256dh is not a point of the P-256 curve.")
	}
	secret, err := decodeKey("auth", auth, authLen)
	if err != nil {
		return nil, err
	}
	sub := &cg.PushSubscription{Endpoint: endpoint, P256dh: key, Auth: secret}
	if expirationTime != nil {
		ms := *expirationTime
		if ms < 0 || ms > 1e15 || ms != float64(int64(ms)) {
			return nil, cg.Errorf(cg.EINVALID, "expirationTime must be null or whole milliseconds since 1970.")
		}
		t := time.UnixMilli(int64(ms)).UTC()
		sub.ExpiresAt = &t
	}
	return sub, nil
}

// decodeKey decodes the base64url (padded or not) key named name and checks its length.
func decodeKey(name, s string, n int) ([]byte, error) {
	if len(s) > 2*base64.URLEncoding.EncodedLen(n) {
		return nil, cg.Errorf(cg.EINVALIDPUSHKEY, "keys.%s is longer than a key of %d bytes.", name, n)
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, cg.Errorf(cg.EINVALIDPUSHKEY, "keys.%s is not base64url.", name)
	}
	if len(b) != n {
		return nil, cg.Errorf(cg.EINVALIDPUSHKEY, "keys.%s has %d bytes, want %d.", name, len(b), n)
	}
	return b, nil
}
