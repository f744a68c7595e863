package config

import (
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
