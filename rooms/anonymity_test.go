package rooms_test

import (
	"encoding/json"
	"testing"

	"github.com/commongrounds/commongrounds/rooms"
)

// TestCountsBelowThreshold: below k a frame carries no exact count of users online, only
// "fewer than k", and two counts below k encode the same; from k up the count is exact.
func TestCountsBelowThreshold(t *testing.T) {
	t.Parallel()
	const room = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	decode := func(b []byte) map[string]any {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, n := range []int{1, 2, 4} {
		if got, want := string(rooms.PresenceFrame(room, n, 5)), string(rooms.PresenceFrame(room, 1, 5)); got != want {
			t.Fatalf("presence of %d = %s, want the same as of 1: %s", n, got, want)
		}
		f := decode(rooms.SubscribedFrame("r", room, "Anon_a3f2e1", 7, n, n, 5))
		if v, ok := f["online"]; !ok || v != nil || f["online_fewer_than"] != float64(5) || f["small_room"] != true || f["anonymity_k"] != float64(5) {
			t.Fatalf("subscribed with %d online and members: %v", n, f)
		}
		if rooms.Bucket(n, 5) != 0 {
			t.Fatalf("Bucket(%d, 5) = %d, want 0", n, rooms.Bucket(n, 5))
		}
	}
	f := decode(rooms.PresenceFrame(room, 5, 5))
	if _, ok := f["online_fewer_than"]; ok || f["online"] != float64(5) {
		t.Fatalf("presence of 5 at k=5: %v, want online 5", f)
	}
	f = decode(rooms.SubscribedFrame("r", room, "Anon_a3f2e1", 7, 2, 40, 5))
	if f["small_room"] != false || f["online"] != nil {
		t.Fatalf("subscribed with 2 online of 40 members: %v, want a bucket and small_room false", f)
	}
}
