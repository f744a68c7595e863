package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/commongrounds/commongrounds/internal/testenv"
)

// TestServeRedisCluster serves on a Redis Cluster (REDIS_CLUSTER=true) and says in /readyz
// when the cluster stops serving a slot.
func TestServeRedisCluster(t *testing.T) {
	t.Parallel()
	rc := testenv.NewRedisCluster(t)
	base := startServer(t, map[string]string{"REDIS_URL": rc.URL(), "REDIS_CLUSTER": "true"})
	readyz := func() (int, map[string]any) {
		t.Helper()
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct {
			Checks map[string]any `json:"checks"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body.Checks
	}
	if code, checks := readyz(); code != 200 || checks["redis"] != "ok" {
		t.Fatalf("/readyz = %d %v, want 200 with redis ok", code, checks)
	}
	if err := rc.UncoverSlot(context.Background(), "any key"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, checks := readyz()
		redis, _ := checks["redis"].(string)
		if code == 503 && strings.Contains(redis, "cluster_state:fail") && strings.Contains(redis, "16383/16384") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %v 20 s after a slot was uncovered, want 503 saying so", code, checks)
		}
		time.Sleep(50 * time.Millisecond) // polling a condition with a deadline
	}
}
