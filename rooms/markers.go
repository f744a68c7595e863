package rooms

import (
	"context"
	"errors"

	cg "github.com/commongrounds/commongrounds"
)

// ReplyNotifier is told of every reply published, once it is committed. It must not block:
// the notifications are made off the publish path.
type ReplyNotifier interface {
	Replied(reply *cg.Message)
}

// MarkRead moves the user's read marker in the room to seq (clamped to the room's last
// position, never backwards) and returns where it stands. When it moved, the user's sockets on
// every instance hear of it, except the one whose id is origin (which the caller answers).
// Errors: not_found, not_enrolled.
func (s *Service) MarkRead(ctx context.Context, user cg.UserID, room cg.ClassID, seq int64, origin string) (int64, error) {
	if !cg.ValidUUID(string(room)) {
		return 0, cg.Errorf(cg.ENOTFOUND, "No such class.")
	}
	if s.Markers == nil {
		return 0, errors.New("mark read: the service has no marker store")
	}
	if seq < 0 {
		return 0, cg.Errorf(cg.EINVALID, "seq must be a whole number of at least 0.")
	}
	marker, moved, err := s.Markers.SetReadMarker(ctx, user, room, seq)
	if err != nil {
		return 0, err
	}
	if moved {
		s.AnnounceUser(user, UserEvent{Origin: origin, Frame: ReadFrame("", room, marker)})
	}
	return marker, nil
}

// AnnounceUser publishes an event to the user's sockets on every instance through the broker.
// A failure is logged: what the event tells is in the store.
func (s *Service) AnnounceUser(user cg.UserID, e UserEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), s.brokerTimeout())
	defer cancel()
	if err := s.Broker.PublishUser(ctx, user, e.Encode()); err != nil {
		s.logger().Warn("announce user event", "err", err)
	}
}
