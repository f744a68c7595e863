// Package config reads the server's configuration from the environment. Every setting is
// optional in development; the defaults are documented on the fields and in the README.
package config

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Key is one secret key with its identifier: a JWT kid, or a phone pepper version.
type Key struct {
	ID     string
	Secret []byte
}

// MinKeyBytes is the least length of a secret key.
const MinKeyBytes = 32

// Config is the whole configuration of the server.
type Config struct {
	// DatabaseURL is the PostgreSQL database, created if missing (when the user may). Default:
	// the local server, database commongrounds.
	DatabaseURL string
	// DatabaseReadURL is a streaming replica of DatabaseURL that serves history, thread, class
	// search and class detail reads while it is at most ReadMaxLag behind. Default: none (every read on the primary).
	DatabaseReadURL string
	// ReadMaxLag is how far the replica may lag before reads go to the primary. Default: 2 s.
	ReadMaxLag time.Duration
	// RedisURL is the Redis server used for fan-out across instances, presence and rate limits.
	// Default: none (a single instance, fanning out in process).
	RedisURL string
	// RedisCluster makes the Redis client a cluster client and pub/sub sharded (SSUBSCRIBE).
	RedisCluster bool
	// HTTPAddr is the listening address. Default: 127.0.0.1:8080.
	HTTPAddr string
	// HTTPReusePort lets a second server listen on HTTPAddr beside this one (SO_REUSEPORT), so
	// that a restart on one host can start the new process before the old one stops: the old
	// one's sockets, closed with 1012, reconnect to the new one at once. Default: false, so that
	// a server started twice by mistake fails instead of sharing the port.
	HTTPReusePort bool
	// PublicBaseURL is the address users reach the server at, used to build links in e-mails.
	// Default: http:// + HTTPAddr.
	PublicBaseURL string
	// AllowedOrigins are the browser origins that may call the API and open sockets.
	AllowedOrigins []string
	// AllowedEmailDomain is the e-mail domain users sign in from. Default: virginia.edu.
	AllowedEmailDomain string
	// SMTPURL is the mail server (smtp://user:pass@host:port?tls=none|starttls|implicit).
	// Default: none; sign-in links are logged.
	SMTPURL string
	// MailFrom is the sender address. Default: no-reply@ + the e-mail domain.
	MailFrom string
	// RateMagicLinkPerEmail and RateMagicLinkPerIP limit sign-in requests per 15 minutes.
	// Defaults: 5 and 30.
	RateMagicLinkPerEmail int
	RateMagicLinkPerIP    int
	// SMSWebhookURL receives {"to","body"} JSON POSTs to send text messages. Default: none;
	// codes are logged.
	SMSWebhookURL string
	// TrustedProxies are the addresses (CIDR prefixes or single addresses) of reverse proxies
	// whose X-Forwarded-For header is believed when rate limits look for the client's address.
	// Default: none; the address the connection comes from is the client's.
	TrustedProxies []netip.Prefix
	// SISBaseURL is the university's class-search service.
	SISBaseURL string
	// SISSyncInterval makes the server sync SISSyncTerms from the SIS every interval, one
	// instance at a time (SIS_SYNC_INTERVAL, such as 6h). Default: 0, no periodic sync.
	SISSyncInterval time.Duration
	// SISSyncTerms are the terms the periodic sync copies (SIS_SYNC_TERMS, comma-separated
	// four-digit terms such as 1262,1268).
	SISSyncTerms []string
	// FlagHideThreshold is the number of distinct flags that hides a message. Default: 3.
	FlagHideThreshold int
	// PublishRate and PublishBurst bound how fast one user publishes: PublishRate messages a
	// second on average, PublishBurst at once. Defaults: 5 and 20.
	PublishRate  float64
	PublishBurst int
	// MaxSocketsPerUser bounds the sockets one user holds. Default: 10.
	MaxSocketsPerUser int
	// SessionTTL is the lifetime of a session. Default: 30 days.
	SessionTTL time.Duration
	// JWTKeys sign (the first) and verify (all) session tokens.
	JWTKeys []Key
	// PhonePeppers key the phone-number hashes (the first for new hashes).
	PhonePeppers []Key
	// SecretsFile keeps generated development secrets. Default: .commongrounds/secrets.json.
	SecretsFile string
	// ShutdownTimeout bounds a graceful shutdown. Default: 10 s.
	ShutdownTimeout time.Duration
	// WriteDelay is how long a busy instance lets a socket's frames gather for one write;
	// 0 writes at once. Default: 5 ms.
	WriteDelay time.Duration
	// AnonymityK is the anonymity threshold: below it, counts of enrolled and online users are
	// shown only as "fewer than K", friend suggestions and friend lists leave a class's
	// membership out, and a room tells its members it is small. From 2 to 100. Default: 5.
	AnonymityK int
	// EnrollPerDay bounds a user's enrollment changes (enrolling and dropping) a day, counted
	// per e-mail address. Default: 20.
	EnrollPerDay int
	// FriendRequestsPerHour bounds a user's friend requests an hour, counted per e-mail address.
	// Default: 30.
	FriendRequestsPerHour int
	// EraseSpread is the time within which each message of a deleted account whose deletion
	// asked for erasure is erased, at an independent random moment. Default: 72 h.
	EraseSpread time.Duration
	// HubPark lets idle sockets' readers park and corks their writes, which relies on the
	// WebSocket library's internals (hub/wsinternals.go); false falls back to the library's
	// ordinary read loop and writes. Default: true.
	HubPark bool
	// DebugAddr, when set, is a second listening address that serves the Go profiler
	// (/debug/pprof/). Default: unset, no profiler. Keep it off the public network.
	DebugAddr string

	// LogFormat is how the log is written: LogText (readable lines) or LogJSON (one JSON
	// object a line). Default: "" — text when standard error is a terminal, JSON otherwise.
	LogFormat string
	// SampleClasses loads the bundled sample catalogue at start into a database without classes,
	// never when SISBaseURL is set. Default: true in development (JWT_KEYS unset), false when
	// JWT_KEYS is set.
	SampleClasses bool
	// SecretsGenerated is true when Load generated the secrets file just now.
	SecretsGenerated bool
	// MetricsAddr is the listening address of /metrics, apart from the public one: the metrics
	// count author reveals and sign-ins. Default: 127.0.0.1:9090.
	MetricsAddr string
}

// Log formats of LOG_FORMAT.
const (
	LogText = "text"
	LogJSON = "json"
)

// Load reads the configuration through getenv. Secrets that are not set are read from, or
// generated once into, the secrets file.
func Load(getenv func(string) string) (*Config, error) {
	c := &Config{
		DatabaseURL:        getenv("DATABASE_URL"),
		DatabaseReadURL:    getenv("DATABASE_READ_URL"),
		RedisURL:           getenv("REDIS_URL"),
		HTTPAddr:           or(getenv("HTTP_ADDR"), "127.0.0.1:8080"),
		DebugAddr:          getenv("DEBUG_ADDR"),
		MetricsAddr:        or(getenv("METRICS_ADDR"), "127.0.0.1:9090"),
		PublicBaseURL:      getenv("PUBLIC_BASE_URL"),
		AllowedEmailDomain: strings.ToLower(or(getenv("ALLOWED_EMAIL_DOMAIN"), "virginia.edu")),
		SMTPURL:            getenv("SMTP_URL"),
		MailFrom:           getenv("MAIL_FROM"),
		SMSWebhookURL:      getenv("SMS_WEBHOOK_URL"),
		SISBaseURL:         getenv("SIS_BASE_URL"),
		SecretsFile:        or(getenv("SECRETS_FILE"), filepath.Join(".commongrounds", "secrets.json")),
	}
	if c.DatabaseURL == "" {
		c.DatabaseURL = "postgres://postgres@127.0.0.1:5432/commongrounds?sslmode=disable"
	}
	if c.MetricsAddr == c.HTTPAddr && !strings.HasSuffix(c.HTTPAddr, ":0") { // :0, any free port
		return nil, fmt.Errorf("METRICS_ADDR %q: want an address apart from HTTP_ADDR, off the public network", c.MetricsAddr)
	}
	if c.PublicBaseURL == "" {
		c.PublicBaseURL = "http://" + c.HTTPAddr
	}
	c.PublicBaseURL = strings.TrimRight(c.PublicBaseURL, "/")
	if u, err := url.Parse(c.PublicBaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("PUBLIC_BASE_URL %q: want an absolute http(s) URL", c.PublicBaseURL)
	}
	if c.MailFrom == "" {
		c.MailFrom = "no-reply@" + c.AllowedEmailDomain
	}
	for _, o := range strings.Split(getenv("ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			c.AllowedOrigins = append(c.AllowedOrigins, strings.TrimRight(o, "/"))
		}
	}
	var err error
	ints := []struct {
		name string
		dst  *int
		def  int
	}{
		{"RATE_MAGIC_LINK_PER_EMAIL", &c.RateMagicLinkPerEmail, 5},
		{"RATE_MAGIC_LINK_PER_IP", &c.RateMagicLinkPerIP, 30},
		{"FLAG_HIDE_THRESHOLD", &c.FlagHideThreshold, 3},
		{"MAX_SOCKETS_PER_USER", &c.MaxSocketsPerUser, 10},
		{"PUBLISH_BURST", &c.PublishBurst, 20},
		{"ANONYMITY_K", &c.AnonymityK, 5},
		{"ENROLL_PER_DAY", &c.EnrollPerDay, 20},
		{"FRIEND_REQUESTS_PER_HOUR", &c.FriendRequestsPerHour, 30},
	}
	for _, i := range ints {
		if *i.dst, err = intVar(getenv, i.name, i.def); err != nil {
			return nil, err
		}
	}
	if c.AnonymityK < 2 || c.AnonymityK > 100 {
		return nil, fmt.Errorf("ANONYMITY_K %d: want a whole number from 2 to 100", c.AnonymityK)
	}
	if c.EnrollPerDay < 1 || c.FriendRequestsPerHour < 1 {
		return nil, errors.New("ENROLL_PER_DAY and FRIEND_REQUESTS_PER_HOUR must be at least 1")
	}
	if c.EraseSpread, err = durationVar(getenv, "ERASE_SPREAD", 72*time.Hour); err != nil {
		return nil, err
	}
	if c.EraseSpread <= 0 {
		return nil, errors.New("ERASE_SPREAD must be positive, such as 72h")
	}
	if c.PublishRate, err = floatVar(getenv, "PUBLISH_RATE", 5); err != nil {
		return nil, err
	}
	if c.HTTPReusePort, err = boolVar(getenv, "HTTP_REUSE_PORT"); err != nil {
		return nil, err
	}
	if c.RedisCluster, err = boolVar(getenv, "REDIS_CLUSTER"); err != nil {
		return nil, err
	}
	c.HubPark = true
	if getenv("HUB_PARK") != "" {
		if c.HubPark, err = boolVar(getenv, "HUB_PARK"); err != nil {
			return nil, err
		}
	}
	if c.ReadMaxLag, err = durationVar(getenv, "READ_MAX_LAG", 2*time.Second); err != nil {
		return nil, err
	}
	if c.SessionTTL, err = durationVar(getenv, "SESSION_TTL", 30*24*time.Hour); err != nil {
		return nil, err
	}
	if c.ShutdownTimeout, err = durationVar(getenv, "SHUTDOWN_TIMEOUT", 10*time.Second); err != nil {
		return nil, err
	}
	c.WriteDelay = 5 * time.Millisecond
	if v := getenv("WRITE_DELAY"); v != "" {
		// 0 turns the wait off; past 100 ms it would be felt in every busy room.
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 100*time.Millisecond {
			return nil, fmt.Errorf("WRITE_DELAY %q: want a duration from 0 to 100ms, such as 5ms", v)
		}
		c.WriteDelay = d
	}
	if c.SISSyncInterval, err = durationVar(getenv, "SIS_SYNC_INTERVAL", 0); err != nil {
		return nil, err
	}
	for _, t := range strings.Split(getenv("SIS_SYNC_TERMS"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			if len(t) != 4 || strings.Trim(t, "0123456789") != "" {
				return nil, fmt.Errorf("SIS_SYNC_TERMS: term %q: want four digits such as 1262", t)
			}
			c.SISSyncTerms = append(c.SISSyncTerms, t)
		}
	}
	if c.SISSyncInterval > 0 && (c.SISBaseURL == "" || len(c.SISSyncTerms) == 0) {
		return nil, errors.New("SIS_SYNC_INTERVAL needs SIS_BASE_URL and SIS_SYNC_TERMS")
	}
	if c.TrustedProxies, err = prefixesVar(getenv, "TRUSTED_PROXIES"); err != nil {
		return nil, err
	}
	if err := c.loadSecrets(getenv); err != nil {
		return nil, err
	}
	if err := c.loadStartUp(getenv); err != nil {
		return nil, err
	}
	return c, nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func intVar(getenv func(string) string, name string, def int) (int, error) {
	s := getenv(name)
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("%s %q: want a positive whole number", name, s)
	}
	return n, nil
}

func floatVar(getenv func(string) string, name string, def float64) (float64, error) {
	s := getenv(name)
	if s == "" {
		return def, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("%s %q: want a positive number", name, s)
	}
	return f, nil
}

func boolVar(getenv func(string) string, name string) (bool, error) {
	s := getenv(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%s %q: want true or false", name, s)
	}
	return b, nil
}

func durationVar(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	s := getenv(name)
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s %q: want a positive duration such as 720h", name, s)
	}
	return d, nil
}

// prefixesVar parses a comma-separated list of CIDR prefixes or single addresses.
func prefixesVar(getenv func(string) string, name string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(getenv(name), ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		if strings.Contains(part, "/") {
			p, err := netip.ParsePrefix(part)
			if err != nil {
				return nil, fmt.Errorf("%s %q: want CIDR prefixes such as 10.0.0.0/8", name, part)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return nil, fmt.Errorf("%s %q: want CIDR prefixes such as 10.0.0.0/8", name, part)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// ParseKeys parses "id:base64key,..." and requires every key to be at least MinKeyBytes long.
func ParseKeys(name, s string) ([]Key, error) {
	var keys []Key
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		id, b64, ok := strings.Cut(part, ":")
		if !ok || id == "" {
			return nil, fmt.Errorf("%s: want id:base64key, got an entry without an id", name)
		}
		secret, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			if secret, err = base64.RawURLEncoding.DecodeString(b64); err != nil {
				return nil, fmt.Errorf("%s: key %q is not base64", name, id)
			}
		}
		if len(secret) < MinKeyBytes {
			return nil, fmt.Errorf("%s: key %q has %d bytes, want at least %d", name, id, len(secret), MinKeyBytes)
		}
		keys = append(keys, Key{ID: id, Secret: secret})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no keys", name)
	}
	return keys, nil
}

// secretsFile is the JSON layout of the development secrets file.
type secretsFile struct {
	JWTKeys      string `json:"jwt_keys"`
	PhonePeppers string `json:"phone_peppers"`
}

// loadSecrets fills JWTKeys and PhonePeppers from the environment, or from the secrets file,
// which is created with fresh random keys when it does not exist. Instances started in one
// directory so share their development secrets.
func (c *Config) loadSecrets(getenv func(string) string) error {
	jwtKeys, peppers := getenv("JWT_KEYS"), getenv("PHONE_PEPPERS")
	if jwtKeys == "" || peppers == "" {
		f, created, err := readOrCreateSecrets(c.SecretsFile)
		if err != nil {
			return err
		}
		c.SecretsGenerated = created
		jwtKeys, peppers = or(jwtKeys, f.JWTKeys), or(peppers, f.PhonePeppers)
	}
	var err error
	if c.JWTKeys, err = ParseKeys("JWT_KEYS", jwtKeys); err != nil {
		return err
	}
	if c.PhonePeppers, err = ParseKeys("PHONE_PEPPERS", peppers); err != nil {
		return err
	}
	for _, p := range c.PhonePeppers {
		if _, err := strconv.Atoi(p.ID); err != nil {
			return fmt.Errorf("PHONE_PEPPERS: version %q is not a number", p.ID)
		}
	}
	return nil
}

// readOrCreateSecrets reads the secrets file at path, creating it first (created is then true)
// when it does not exist.
func readOrCreateSecrets(path string) (f *secretsFile, created bool, err error) {
	f = new(secretsFile)
	data, err := os.ReadFile(path)
	if err == nil {
		if err := json.Unmarshal(data, f); err != nil {
			return nil, false, fmt.Errorf("secrets file %s: %w", path, err)
		}
		return f, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("read secrets file: %w", err)
	}
	*f = secretsFile{
		JWTKeys:      "dev1:" + randomKey(),
		PhonePeppers: "1:" + randomKey(),
	}
	data, _ = json.MarshalIndent(f, "", "  ")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("create secrets directory: %w", err)
	}
	// Write a temporary file and link it into place: the link either wins whole or finds the
	// file another instance linked first, so no reader ever sees a half-written file.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".secrets-*")
	if err != nil {
		return nil, false, fmt.Errorf("create secrets file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("write secrets file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, false, fmt.Errorf("write secrets file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return readOrCreateSecrets(path)
	} else if err != nil {
		return nil, false, fmt.Errorf("create secrets file: %w", err)
	}
	return f, true, nil
}

func randomKey() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// loadStartUp reads the settings of the development start-up: LOG_FORMAT and SAMPLE_CLASSES.
func (c *Config) loadStartUp(getenv func(string) string) error {
	switch f := strings.ToLower(strings.TrimSpace(getenv("LOG_FORMAT"))); f {
	case "", LogText, LogJSON:
		c.LogFormat = f
	default:
		return fmt.Errorf("LOG_FORMAT %q: want text or json", getenv("LOG_FORMAT"))
	}
	c.SampleClasses = getenv("JWT_KEYS") == ""
	if getenv("SAMPLE_CLASSES") != "" {
		var err error
		if c.SampleClasses, err = boolVar(getenv, "SAMPLE_CLASSES"); err != nil {
			return err
		}
	}
	return nil
}
