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
	// EditWindow is how long after publishing its author may edit a message. Default: 15 min.
	EditWindow time.Duration
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

// Join returns the user's pseudonym in the room. Errors: class_not_found, not_enrolled.
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
// Errors: invalid_content, invalid_parent, class_not_found, not_enrolled, rate_limited, unavailable.
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
	s.announce(room, Event{Kind: EventOrdered, Seq: msg.Seq, Frame: MessageFrame(msg)})
	if created && msg.ParentID != nil && s.Replies != nil {
		s.Replies.Replied(msg)
	}
	return msg, nil
}

// Announce tells the room of an event of its order that is committed: a change to a message.
// The announcement failing fails nothing: subscribers repair gaps from the store.
func (s *Service) Announce(ev *cg.RoomEvent) {
	s.announce(ev.Message.Room, Event{Kind: EventChange, Seq: ev.Seq, Frame: EventFrame(ev)})
}

// editWindow returns EditWindow or its default.
func (s *Service) editWindow() time.Duration {
	if s.EditWindow <= 0 {
		return 15 * time.Minute
	}
	return s.EditWindow
}

// Edit replaces the content of the user's own message, under the rules of publishing, within
// EditWindow of its publication, and tells the room. Editing to the same content changes
// nothing. Errors: invalid_content, not_found, forbidden, not_enrolled, message_hidden,
// message_deleted, edit_window_passed, rate_limited.
func (s *Service) Edit(ctx context.Context, user cg.UserID, id cg.MessageID, content string) (*cg.Message, error) {
	content, err := NormalizeContent(content)
	if err != nil {
		return nil, err
	}
	if s.Limiter != nil {
		if ok, wait := s.Limiter.Allow(user); !ok {
			return nil, &cg.Error{Code: cg.ERATELIMITED, Message: "You are sending messages too fast.", RetryAfterMs: max(1, wait.Milliseconds())}
		}
	}
	msg, ev, err := s.Store.EditMessage(ctx, id, user, content, s.editWindow())
	if err != nil {
		return nil, err
	}
	if ev != nil {
		s.Announce(ev)
	}
	return msg, nil
}

// Delete turns the user's own message into a tombstone that keeps its pseudonym, and tells the
// room; deleting it again does nothing. Errors: not_found, forbidden.
func (s *Service) Delete(ctx context.Context, user cg.UserID, id cg.MessageID) error {
	ev, err := s.Store.DeleteMessage(ctx, id, user)
	if err == nil && ev != nil {
		s.Announce(ev)
	}
	return err
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

// Typing tells the room that anon is typing. Nothing is stored.
func (s *Service) Typing(room cg.ClassID, anon cg.AnonID) {
	s.announce(room, Event{Kind: EventTyping, Anon: anon, Frame: TypingFrame(room, anon)})
}

// History returns a page of the room's history, with the position to resume the room's events
// from. Errors: class_not_found, not_enrolled.
func (s *Service) History(ctx context.Context, user cg.UserID, room cg.ClassID, f cg.MessageFilter) (*cg.MessagePage, error) {
	if _, err := s.Store.RoomAccess(ctx, user, room); err != nil {
		return nil, err
	}
	return s.Store.ListMessages(ctx, room, f)
}

// Thread returns a thread of the room. Errors: class_not_found, not_found (no such message),
// not_enrolled.
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
	ev, err := s.Store.FlagMessage(ctx, id, user, reason, threshold)
	if err == nil && ev != nil {
		s.Announce(ev)
	}
	return err
}

// SetHidden hides or restores a message on a moderator's behalf and tells the room.
// Errors: not_found.
func (s *Service) SetHidden(ctx context.Context, moderator cg.UserID, id cg.MessageID, hidden bool) error {
	ev, err := s.Store.SetHidden(ctx, id, moderator, hidden)
	if err == nil && ev != nil {
		s.Announce(ev)
	}
	return err
}

// Versions returns the earlier contents of a message, for moderators. Errors: not_found.
func (s *Service) Versions(ctx context.Context, id cg.MessageID) ([]cg.MessageVersion, error) {
	return s.Store.MessageVersions(ctx, id)
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
