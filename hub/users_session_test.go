package hub

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/rooms"
)

// MarkRead refuses: the sessions that mark read use a markingService.
func (s *fakeService) MarkRead(context.Context, cg.UserID, cg.ClassID, int64, string) (int64, error) {
	return 0, cg.Errorf(cg.EINTERNAL, "fakeService keeps no read markers")
}

// markingService is a fakeService that keeps the greatest seq marked per room, and requires the
// origin to be the socket "socket-1".
type markingService struct {
	*fakeService
	mu      sync.Mutex
	markers map[cg.ClassID]int64 // guarded by mu
}

func (s *markingService) MarkRead(_ context.Context, _ cg.UserID, room cg.ClassID, seq int64, origin string) (int64, error) {
	if _, err := s.Join(context.Background(), "", room); err != nil {
		return 0, err
	}
	if origin != "socket-1" {
		return 0, cg.Errorf(cg.EINTERNAL, "origin %q, want the socket's id", origin)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.markers[room] = max(s.markers[room], seq)
	return s.markers[room], nil
}

// TestSessionMarkRead: a read frame is answered, after the subscribes received before it, with
// where the marker stands; a class the user is not in is refused.
func TestSessionMarkRead(t *testing.T) {
	h := newSessionHarness(t)
	h.s.id = "socket-1"
	h.s.deps.service = &markingService{fakeService: h.svc, markers: map[cg.ClassID]int64{}}
	h.tr.setBuffered(true)
	h.receive(subscribeFrame("s1", "r", nil))
	h.tr.setBuffered(false)
	h.receive(&rooms.ClientFrame{Type: rooms.TypeRead, Ref: "m1", Room: "r", Seq: 5})
	h.receive(&rooms.ClientFrame{Type: rooms.TypeRead, Ref: "m2", Room: "r", Seq: 2})
	h.receive(&rooms.ClientFrame{Type: rooms.TypeRead, Ref: "m3", Room: "closed", Seq: 2})
	h.want("subscribed s1 r", "read m1 r", "read m2 r", "error m3 not_enrolled")
	h.tr.mu.Lock()
	defer h.tr.mu.Unlock()
	var seqs []int64
	for _, b := range h.tr.frames {
		var f struct {
			Type string `json:"type"`
			Seq  int64  `json:"seq"`
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		if f.Type == "read" {
			seqs = append(seqs, f.Seq)
		}
	}
	if len(seqs) != 2 || seqs[0] != 5 || seqs[1] != 5 {
		t.Fatalf("read seqs %v, want [5 5] (never back)", seqs)
	}
}
