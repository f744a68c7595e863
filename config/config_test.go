package config

import (
	"path/filepath"
	"testing"
	"time"
)

// TestWriteDelay: unset gives the default, 0 turns the wait off, a value out of range or
// not a duration is an error.
func TestWriteDelay(t *testing.T) {
	key := "k:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	for _, tc := range []struct {
		value string
		want  time.Duration
		err   bool
	}{
		{"", 5 * time.Millisecond, false},
		{"0", 0, false},
		{"0s", 0, false},
		{"100ms", 100 * time.Millisecond, false},
		{"101ms", 0, true},
		{"2ms", 2 * time.Millisecond, false},
		{"-1ms", 0, true},
		{"soon", 0, true},
	} {
		env := map[string]string{"WRITE_DELAY": tc.value, "JWT_KEYS": key, "PHONE_PEPPERS": "1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
		c, err := Load(func(k string) string { return env[k] })
		if tc.err {
			if err == nil {
				t.Errorf("WRITE_DELAY=%q: no error", tc.value)
			}
			continue
		}
		if err != nil {
			t.Fatalf("WRITE_DELAY=%q: %v", tc.value, err)
		}
		if c.WriteDelay != tc.want {
			t.Errorf("WRITE_DELAY=%q: %v, want %v", tc.value, c.WriteDelay, tc.want)
		}
	}
}

// TestHTTPReusePort: off unless set to true; anything but a boolean is an error.
func TestHTTPReusePort(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  bool
		err   bool
	}{
		{"", false, false},
		{"true", true, false},
		{"1", true, false},
		{"false", false, false},
		{"yes please", false, true},
	} {
		env := map[string]string{"HTTP_REUSE_PORT": tc.value, "JWT_KEYS": "k:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "PHONE_PEPPERS": "1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
		c, err := Load(func(k string) string { return env[k] })
		if (err != nil) != tc.err {
			t.Fatalf("HTTP_REUSE_PORT=%q: err=%v, want an error: %v", tc.value, err, tc.err)
		}
		if err == nil && c.HTTPReusePort != tc.want {
			t.Errorf("HTTP_REUSE_PORT=%q: %v, want %v", tc.value, c.HTTPReusePort, tc.want)
		}
	}
}

// TestStartUpSettings: LOG_FORMAT takes text or json; SAMPLE_CLASSES defaults to on without
// JWT_KEYS (development) and off with them; a secrets file is reported generated only once.
func TestStartUpSettings(t *testing.T) {
	key := "k:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
	secrets := filepath.Join(t.TempDir(), "secrets.json")
	for _, tc := range []struct {
		env       map[string]string
		format    string
		sample    bool
		generated bool
		err       bool
	}{
		{env: map[string]string{}, format: "", sample: true, generated: true},
		{env: map[string]string{}, format: "", sample: true, generated: false},
		{env: map[string]string{"LOG_FORMAT": "TEXT"}, format: LogText, sample: true},
		{env: map[string]string{"LOG_FORMAT": "json", "SAMPLE_CLASSES": "false"}, format: LogJSON, sample: false},
		{env: map[string]string{"JWT_KEYS": key, "PHONE_PEPPERS": "1:" + key[2:]}, sample: false},
		{env: map[string]string{"JWT_KEYS": key, "PHONE_PEPPERS": "1:" + key[2:], "SAMPLE_CLASSES": "true"}, sample: true},
		{env: map[string]string{"LOG_FORMAT": "xml"}, err: true},
		{env: map[string]string{"SAMPLE_CLASSES": "some"}, err: true},
	} {
		tc.env["SECRETS_FILE"] = secrets
		c, err := Load(func(k string) string { return tc.env[k] })
		if (err != nil) != tc.err {
			t.Fatalf("%v: err=%v, want an error: %v", tc.env, err, tc.err)
		}
		if err != nil {
			continue
		}
		if c.LogFormat != tc.format || c.SampleClasses != tc.sample || c.SecretsGenerated != tc.generated {
			t.Errorf("%v: LogFormat=%q SampleClasses=%v SecretsGenerated=%v, want %q %v %v",
				tc.env, c.LogFormat, c.SampleClasses, c.SecretsGenerated, tc.format, tc.sample, tc.generated)
		}
	}
}

// TestMetricsAddr: 127.0.0.1:9090 unless set; the public address is refused.
func TestMetricsAddr(t *testing.T) {
	for _, tc := range []struct {
		value, http, want string
		err               bool
	}{
		{"", "", "127.0.0.1:9090", false},
		{"10.0.0.5:9100", "", "10.0.0.5:9100", false},
		{"127.0.0.1:8080", "", "", true},
		{"", "127.0.0.1:9090", "", true},
	} {
		env := map[string]string{"METRICS_ADDR": tc.value, "HTTP_ADDR": tc.http, "JWT_KEYS": "k:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "PHONE_PEPPERS": "1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
		c, err := Load(func(k string) string { return env[k] })
		if (err != nil) != tc.err {
			t.Fatalf("METRICS_ADDR=%q HTTP_ADDR=%q: err=%v, want an error: %v", tc.value, tc.http, err, tc.err)
		}
		if err == nil && c.MetricsAddr != tc.want {
			t.Errorf("METRICS_ADDR=%q: %q, want %q", tc.value, c.MetricsAddr, tc.want)
		}
	}
}

// TestHubPark: on unless set to false; anything but a boolean is an error.
func TestHubPark(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  bool
		err   bool
	}{
		{"", true, false},
		{"true", true, false},
		{"false", false, false},
		{"0", false, false},
		{"sometimes", false, true},
	} {
		env := map[string]string{"HUB_PARK": tc.value, "JWT_KEYS": "k:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "PHONE_PEPPERS": "1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
		c, err := Load(func(k string) string { return env[k] })
		if (err != nil) != tc.err {
			t.Fatalf("HUB_PARK=%q: err=%v, want an error: %v", tc.value, err, tc.err)
		}
		if err == nil && c.HubPark != tc.want {
			t.Errorf("HUB_PARK=%q: %v, want %v", tc.value, c.HubPark, tc.want)
		}
	}
}

// TestEditWindow: 15 minutes by default, any positive duration, an error for the rest.
func TestEditWindow(t *testing.T) {
	secrets := map[string]string{"JWT_KEYS": "k:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "PHONE_PEPPERS": "1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	load := func(window string) (*Config, error) {
		return Load(func(k string) string {
			if k == "EDIT_WINDOW" {
				return window
			}
			return secrets[k]
		})
	}
	for _, tc := range []struct {
		value string
		want  time.Duration
	}{{"", 15 * time.Minute}, {"1h", time.Hour}, {"30s", 30 * time.Second}} {
		c, err := load(tc.value)
		if err != nil {
			t.Fatalf("EDIT_WINDOW=%q: %v", tc.value, err)
		}
		if c.EditWindow != tc.want {
			t.Fatalf("EDIT_WINDOW=%q: %v, want %v", tc.value, c.EditWindow, tc.want)
		}
	}
	for _, bad := range []string{"0s", "-1m", "soon"} {
		if _, err := load(bad); err == nil {
			t.Errorf("EDIT_WINDOW=%q: no error", bad)
		}
	}
}
