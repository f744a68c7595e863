package config

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Push is the Web Push configuration.
type Push struct {
	// Enabled turns Web Push on (PUSH_ENABLED). Default: on when there is a VAPID key.
	Enabled bool
	// VAPIDKey is the VAPID private key, a P-256 scalar of 32 bytes (VAPID_KEYS). Default: a
	// key generated into the secrets file in development (when JWT_KEYS or PHONE_PEPPERS is
	// unset); none otherwise.
	VAPIDKey []byte
	// Subject is the VAPID contact push services may write to (VAPID_SUBJECT): a mailto: or
	// https: URL. Default: PUBLIC_BASE_URL when it is https, otherwise mailto: MAIL_FROM.
	Subject string
	// AllowedHosts are the push services subscriptions may point at (PUSH_ALLOWED_HOSTS,
	// comma-separated host names, *.domain for its subdomains, each with an optional :port).
	// Default: nil, the push package's list of the browsers' push services.
	AllowedHosts []string
	// CAFile is a PEM file of certificates trusted, besides the system's, for the push
	// services' TLS (PUSH_CA_FILE): a push service of one's own, or one a test starts. Default:
	// none, the system's certificates only.
	CAFile string
}

// loadPush reads the Web Push settings; vapidKeys is VAPID_KEYS, or the secrets file's keys.
func (c *Config) loadPush(getenv func(string) string, vapidKeys string) error {
	p := &c.Push
	if vapidKeys != "" {
		var err error
		if p.VAPIDKey, err = ParseVAPIDKeys(vapidKeys); err != nil {
			return err
		}
	}
	p.Enabled = p.VAPIDKey != nil
	if getenv("PUSH_ENABLED") != "" {
		var err error
		if p.Enabled, err = boolVar(getenv, "PUSH_ENABLED"); err != nil {
			return err
		}
		if p.Enabled && p.VAPIDKey == nil {
			return errors.New("PUSH_ENABLED=true needs VAPID_KEYS")
		}
	}
	p.Subject = getenv("VAPID_SUBJECT")
	if p.Subject == "" {
		if strings.HasPrefix(c.PublicBaseURL, "https://") {
			p.Subject = c.PublicBaseURL
		} else {
			p.Subject = "mailto:" + c.MailFrom
		}
	}
	if u, err := url.Parse(p.Subject); err != nil ||
		!(u.Scheme == "mailto" && strings.Contains(u.Opaque, "@") || u.Scheme == "https" && u.Host != "") {
		return fmt.Errorf("VAPID_SUBJECT %q: want a mailto: address or an https: URL where the push services can reach the operator", p.Subject)
	}
	p.CAFile = getenv("PUSH_CA_FILE")
	for _, h := range strings.Split(getenv("PUSH_ALLOWED_HOSTS"), ",") {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			p.AllowedHosts = append(p.AllowedHosts, h)
		}
	}
	return nil
}

// ParseVAPIDKeys parses VAPID_KEYS: the private key, base64url (as web-push's
// generate-vapid-keys prints it), optionally preceded by the public key and a colon, which is
// then checked against the private one. It returns the private key's 32 bytes.
func ParseVAPIDKeys(s string) ([]byte, error) {
	public, private, ok := strings.Cut(strings.TrimSpace(s), ":")
	if !ok {
		public, private = "", public
	}
	raw, err := decodeBase64URL(private)
	if err != nil {
		return nil, errors.New("VAPID_KEYS: the private key is not base64url")
	}
	key, err := ecdh.P256().NewPrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("VAPID_KEYS: the private key is not a P-256 key of 32 bytes (%d bytes)", len(raw))
	}
	if public != "" {
		pub, err := decodeBase64URL(public)
		if err != nil || string(pub) != string(key.PublicKey().Bytes()) {
			return nil, errors.New("VAPID_KEYS: the public key is not the private key's")
		}
	}
	return raw, nil
}

func decodeBase64URL(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// NewVAPIDKeys returns a fresh key pair in the format of VAPID_KEYS, public:private.
func NewVAPIDKeys() string {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return base64.RawURLEncoding.EncodeToString(key.PublicKey().Bytes()) + ":" + base64.RawURLEncoding.EncodeToString(key.Bytes())
}

// vapidKeysOf returns the VAPID keys of the secrets file f at path, adding fresh ones to the
// file when it has none (a file written before Web Push).
func vapidKeysOf(path string, f *secretsFile) (string, error) {
	if f.VAPIDKeys != "" {
		return f.VAPIDKeys, nil
	}
	f.VAPIDKeys = NewVAPIDKeys()
	data, _ := json.MarshalIndent(f, "", "  ")
	// A temporary file renamed into place: readers see the old file or the new, whole. Two
	// instances adding keys at once may each run with their own until restarted.
	tmp, err := writeTemp(path, data)
	if err != nil {
		return "", fmt.Errorf("add VAPID keys to the secrets file: %w", err)
	}
	defer os.Remove(tmp)
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("add VAPID keys to the secrets file: %w", err)
	}
	return f.VAPIDKeys, nil
}
