package loadgen

import (
	"encoding/json"
	"fmt"
	"os"
)

// Seed is the file `commongrounds loadtest-seed` writes: users with a session token each and
// the rooms (class ids) each belongs to.
type Seed struct {
	Users []SeedUser `json:"users"`
	Rooms []string   `json:"rooms"`
}

// SeedUser is one load-test user.
type SeedUser struct {
	Email string   `json:"email,omitempty"`
	Token string   `json:"token"`
	Rooms []string `json:"rooms"`
}

// ReadSeed reads a seed file.
func ReadSeed(path string) (*Seed, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read seed: %w", err)
	}
	var s Seed
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("read seed %s: %w", path, err)
	}
	if len(s.Users) == 0 {
		return nil, fmt.Errorf("read seed %s: no users", path)
	}
	return &s, nil
}
