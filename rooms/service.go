package rooms

import (
	"context"
	"log/slog"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// Service publishes, reads and moderates the messages of class rooms. The WebSocket hub and the
// HTTP API both call it, so a message follows the same rules whichever way it comes.
type Service struct {
	Store  cg.MessageStore
	Broker cg.Broker
	// Limiter bounds how fast one user publishes. Optional: no limit.
	Limiter *RateLimiter
	// FlagHideThreshold is the number of distinct flags that hides a message. Default: 3.
	FlagHideThreshold int
	// AnonymityK is the anonymity threshold: a room with fewer members says so, and counts of
	// users below it are shown only as "fewer than AnonymityK". Default: cg.DefaultAnonymityK.
	AnonymityK int
	// Markers keeps the users' read markers. Required for MarkRead.
	Markers cg.ReadMarkerStore
	// Replies is told of each reply once it is committed (notifications). Optional.
	Replies ReplyNotifier
	// BrokerTimeout bounds a publication to the broker. Default: 2 s.
	BrokerTimeout time.Duration
	Logger        *slog.Logger
}

func (s *Service) logger() *slog.Logger {
	if s.Logger == nil {
		return slog.Default()
	}
	return s.Logger
}

// Anonymity returns the anonymity threshold, AnonymityK or its default.
func (s *Service) Anonymity() int {
	if s.AnonymityK <= 0 {
		return cg.DefaultAnonymityK
	}
	return s.AnonymityK
}

// Join returns the user's pseudonym in the room. Errors: not_found, not_enrolled.
func (s *Service) Join(ctx context.Context, user cg.UserID, room cg.ClassID) (cg.AnonID, error) {
	return s.Store.RoomAccess(ctx, user, room)
}

// JoinAll is Join for several rooms at once, looked up together: the results are in the order
// of rooms.
func (s *Service) JoinAll(ctx context.Context, user cg.UserID, rooms []cg.ClassID) []cg.AccessResult {
	reqs := make([]cg.AccessRequest, len(rooms))
	for i, r := range rooms {
		reqs[i] = cg.AccessRequest{User: user, Class: r}
	}
	return s.Store.RoomAccesses(ctx, reqs)
}

// Publish validates and stores a message, then announces it to the room. It returns once the
// message is committed; the announcement failing does not fail the publish, because subscribers
// repair gaps from the store.
// committed, when not nil, is called with the stored message before it is announced (the
// socket queues its ack there, so that the ack precedes the message).
// Errors: invalid_content, invalid_parent, not_found, not_enrolled, rate_limited, unavailable.
func (s *Service) Publish(ctx context.Context, user cg.UserID, room cg.ClassID, content string, parent *cg.MessageID, clientMsgID string, committed func(*cg.Message)) (*cg.Message, error) {
	content, err := NormalizeContent(content)
	if err != nil {
		return nil, err
	}
	if clientMsgID != "" && !ValidClientMsgID(clientMsgID) {
		return nil, cg.Errorf(cg.EINVALID, "client_msg_id must be 1 to 128 printable ASCII characters.")
	}
	if parent != nil && !cg.ValidUUID(string(*parent)) {
		return nil, cg.Errorf(cg.EINVALIDPARENT, "parent_id must be a message of this room that is not itself a reply.")
	}
	if s.Limiter != nil {
		if ok, wait := s.Limiter.Allow(user); !ok {
			return nil, &cg.Error{Code: cg.ERATELIMITED, Message: "You are sending messages too fast.", RetryAfterMs: max(1, wait.Milliseconds())}
		}
	}
	msg, created, err := s.Store.CreateMessage(ctx, cg.NewMessage{Class: room, User: user, Content: content, ParentID: parent, ClientMsgID: clientMsgID})
	if err != nil {
		return nil, err
	}
	if committed != nil {
		committed(msg)
	}
	// Announced also when a retry returned an earlier message: if the first attempt committed
	// and died before announcing, this repairs it; subscribers drop the duplicate by its seq.
	s.announce(room, Event{Kind: EventMessage, Seq: msg.Seq, Frame: MessageFrame(msg)})
	if created && msg.ParentID != nil && s.Replies != nil {
		s.Replies.Replied(msg)
	}
	return msg, nil
}

// announce publishes an event to the room through the broker.
func (s *Service) announce(room cg.ClassID, e Event) {
	ctx, cancel := context.WithTimeout(context.Background(), s.brokerTimeout())
	defer cancel()
	if err := s.Broker.Publish(ctx, room, e.Encode()); err != nil {
		s.logger().Warn("announce room event", "room", room, "kind", string(e.Kind), "err", err)
	}
}

func (s *Service) brokerTimeout() time.Duration {
	if s.BrokerTimeout == 0 {
		return 2 * time.Second
	}
	return s.BrokerTimeout
}

// Erased tells the room that a message of a deleted account was erased (it is a tombstone now),
// as the hidden event tells of a hidden one.
func (s *Service) Erased(m cg.ErasedMessage) {
	s.announce(m.Room, Event{Kind: EventHidden, Seq: m.Seq, Frame: ErasedFrame(m.Room, m.ID)})
}

// Typing tells the room that anon is typing. Nothing is stored.
func (s *Service) Typing(room cg.ClassID, anon cg.AnonID) {
	s.announce(room, Event{Kind: EventTyping, Anon: anon, Frame: TypingFrame(room, anon)})
}

// History returns a page of the room's history. Errors: not_found, not_enrolled.
func (s *Service) History(ctx context.Context, user cg.UserID, room cg.ClassID, f cg.MessageFilter) ([]*cg.Message, error) {
	if _, err := s.Store.RoomAccess(ctx, user, room); err != nil {
		return nil, err
	}
	return s.Store.ListMessages(ctx, room, f)
}

// Thread returns a thread of the room. Errors: not_found, not_enrolled.
func (s *Service) Thread(ctx context.Context, user cg.UserID, room cg.ClassID, id cg.MessageID) (*cg.Message, []*cg.Message, error) {
	if _, err := s.Store.RoomAccess(ctx, user, room); err != nil {
		return nil, nil, err
	}
	return s.Store.Thread(ctx, room, id)
}

// Flag records user's flag of a message; at the threshold the message is hidden and the room
// told. Errors: not_found, not_enrolled, own_message.
func (s *Service) Flag(ctx context.Context, user cg.UserID, id cg.MessageID, reason string) error {
	threshold := s.FlagHideThreshold
	if threshold <= 0 {
		threshold = 3
	}
	msg, hidden, err := s.Store.FlagMessage(ctx, id, user, reason, threshold)
	if err != nil {
		return err
	}
	if hidden {
		s.announce(msg.Room, Event{Kind: EventHidden, Seq: msg.Seq, Frame: HiddenFrame(msg.Room, msg.ID)})
	}
	return nil
}

// SetHidden hides or restores a message on a moderator's behalf and tells the room.
// Errors: not_found.
func (s *Service) SetHidden(ctx context.Context, moderator cg.UserID, id cg.MessageID, hidden bool) error {
	msg, changed, err := s.Store.SetHidden(ctx, id, moderator, hidden)
	if err != nil || !changed {
		return err
	}
	if hidden {
		s.announce(msg.Room, Event{Kind: EventHidden, Seq: msg.Seq, Frame: HiddenFrame(msg.Room, msg.ID)})
	} else {
		s.announce(msg.Room, Event{Kind: EventRestored, Seq: msg.Seq, Frame: RestoredFrame(msg)})
	}
	return nil
}

// RevealAuthor returns a message's author to a moderator; every call is audited.
// Errors: not_found.
func (s *Service) RevealAuthor(ctx context.Context, moderator cg.UserID, id cg.MessageID, reason string) (*cg.PublicUser, error) {
	return s.Store.RevealAuthor(ctx, id, moderator, reason)
}

// ListFlagged returns flagged messages for moderators, most flagged first.
func (s *Service) ListFlagged(ctx context.Context, limit int, cursor string) ([]*cg.FlaggedMessage, string, error) {
	return s.Store.ListFlagged(ctx, limit, cursor)
}
