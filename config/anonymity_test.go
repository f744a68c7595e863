package config

import (
	"testing"
	"time"
)

// TestAnonymitySettings: the defaults, values in range, and errors for the rest.
func TestAnonymitySettings(t *testing.T) {
	secrets := map[string]string{"JWT_KEYS": "k:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "PHONE_PEPPERS": "1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	load := func(vars map[string]string) (*Config, error) {
		return Load(func(k string) string {
			if v, ok := vars[k]; ok {
				return v
			}
			return secrets[k]
		})
	}
	c, err := load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.AnonymityK != 5 || c.EnrollPerDay != 20 || c.FriendRequestsPerHour != 30 || c.EraseSpread != 72*time.Hour {
		t.Fatalf("defaults: K=%d enroll=%d requests=%d spread=%v, want 5, 20, 30, 72h", c.AnonymityK, c.EnrollPerDay, c.FriendRequestsPerHour, c.EraseSpread)
	}
	c, err = load(map[string]string{"ANONYMITY_K": "10", "ENROLL_PER_DAY": "5", "FRIEND_REQUESTS_PER_HOUR": "3", "ERASE_SPREAD": "1h"})
	if err != nil || c.AnonymityK != 10 || c.EnrollPerDay != 5 || c.FriendRequestsPerHour != 3 || c.EraseSpread != time.Hour {
		t.Fatalf("set: %+v, %v", c, err)
	}
	for _, bad := range []map[string]string{
		{"ANONYMITY_K": "1"},
		{"ANONYMITY_K": "101"},
		{"ANONYMITY_K": "five"},
		{"ENROLL_PER_DAY": "0"},
		{"FRIEND_REQUESTS_PER_HOUR": "-1"},
		{"ERASE_SPREAD": "0s"},
		{"ERASE_SPREAD": "soon"},
	} {
		if _, err := load(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}
