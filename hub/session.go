package hub

import (
	"context"
	"errors"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/rooms"
)

// A socket's session is one client's protocol state: the rooms it joined under its pseudonyms,
// its publishes and typing, its batches of subscribes (subscribe.go) and its end. It writes to
// its transport and knows nothing of the WebSocket, so a test drives it with a transport of its
// own. Only the socket's reader calls it (receive, end), one frame after another: its state
// needs no lock.

// roomService is what a session asks of the rooms' logic (rooms.Service).
type roomService interface {
	// Join returns the user's pseudonym in the room. Errors: not_found, not_enrolled.
	Join(ctx context.Context, user cg.UserID, room cg.ClassID) (cg.AnonID, error)
	// JoinAll is Join for several rooms, looked up together, in the order of rooms.
	JoinAll(ctx context.Context, user cg.UserID, rooms []cg.ClassID) []cg.AccessResult
	// Publish stores a message, calls committed with it, then announces it to the room.
	Publish(ctx context.Context, user cg.UserID, room cg.ClassID, content string, parent *cg.MessageID, clientMsgID string, committed func(*cg.Message)) (*cg.Message, error)
	// Typing tells the room that anon is typing.
	Typing(room cg.ClassID, anon cg.AnonID)
	// Anonymity returns the room size below which counts go out as "fewer than K".
	Anonymity() int
}

var _ roomService = (*rooms.Service)(nil)

// sessionDeps is what the sessions of a hub share.
type sessionDeps struct {
	service roomService
	store   roomStore  // read for the messages a resume misses
	rooms   *roomTable // the rooms active on this instance
	opts    *Options
	metrics *metrics
}

// session is the protocol state of one client socket.
type session struct {
	t    transport
	deps *sessionDeps
	auth *cg.Session
	user *userSockets // the hub's record of the user (its leaves count), set by Hub.add

	// Owned by the socket's reader.
	rooms    []*member                // the rooms joined: a few, so a slice (a map cost an idle socket about 300 bytes)
	typingAt map[cg.ClassID]time.Time // the last typing frame sent per room
	subs     []*rooms.ClientFrame     // subscribe frames received and not yet answered
}

// receive answers one client frame, or ferr. Subscribes that arrive together, as when a client
// opens its rooms, are answered together (subscribeAll): one access lookup, one write; any other
// frame is answered after them.
func (s *session) receive(f *rooms.ClientFrame, ferr *rooms.FrameError) {
	if ferr == nil && f.Type == rooms.TypeSubscribe {
		s.subs = append(s.subs, f)
		if len(s.subs) < maxSubscribeBatch && s.t.nextMessageBuffered() {
			return
		}
	}
	if len(s.subs) > 0 {
		subs := s.subs
		s.subs = nil // an idle session keeps no batch
		s.subscribeAll(subs)
	}
	switch {
	case ferr != nil:
		s.t.Write(rooms.ErrorFrame(ferr.Ref, ferr.Code, ferr.Message, 0))
	case f.Type != rooms.TypeSubscribe:
		s.handle(f)
	}
}

// handle answers one client frame other than subscribe (receive batches those): each type of
// frame maps to its handler here.
func (s *session) handle(f *rooms.ClientFrame) {
	var err error
	switch f.Type {
	case rooms.TypePing:
		s.t.Write(rooms.PongFrame(f.Ref))
	case rooms.TypeUnsubscribe:
		s.unsubscribe(f.Room)
		s.t.Write(rooms.UnsubscribedFrame(f.Ref, f.Room))
	case rooms.TypePublish:
		err = s.publish(f)
	case rooms.TypeTyping:
		err = s.typing(f)
	}
	if err != nil {
		s.replyError(f.Ref, err)
	}
}

// replyError answers a frame with an error frame: a domain code the protocol knows, or
// invalid_frame. Internal errors are logged at Error, unavailable ones at Warn.
func (s *session) replyError(ref string, err error) {
	code := cg.ErrorCode(err)
	var appErr *cg.Error
	var retry int64
	if errors.As(err, &appErr) {
		retry = appErr.RetryAfterMs
	}
	switch {
	case code == cg.EINTERNAL:
		if !errors.Is(err, context.Canceled) {
			s.deps.opts.Logger.Error("socket frame", "err", err)
		}
	case code == cg.EUNAVAILABLE:
		s.deps.opts.Logger.Warn("socket frame", "err", err)
	case !cg.SocketCode(code):
		code = rooms.EINVALIDFRAME
	}
	s.t.Write(rooms.ErrorFrame(ref, code, cg.ErrorMessage(err), retry))
}

// end leaves every room: the socket has ended.
func (s *session) end() {
	for _, m := range s.rooms {
		m.room.detach(s.t)
		s.deps.rooms.release(m.room)
	}
	s.rooms = nil
	s.subs = nil
}

// publish stores a message; the ack is queued before the message fans out.
func (s *session) publish(f *rooms.ClientFrame) error {
	// Bounded, so that a Postgres that does not answer fails the publish with unavailable in
	// seconds (pgx cancels the query when the context ends).
	ctx, done := s.t.work(s.deps.opts.PublishTimeout)
	defer done()
	start := time.Now()
	_, err := s.deps.service.Publish(ctx, s.auth.UserID, f.Room, f.Content, f.ParentID, f.ClientMsgID, func(m *cg.Message) {
		s.deps.metrics.commit.Observe(time.Since(start).Seconds())
		s.t.Write(rooms.AckFrame(f.Ref, m))
	})
	return err
}

// typing tells the others in the room, at most once per TypingInterval per socket and room.
func (s *session) typing(f *rooms.ClientFrame) error {
	now := time.Now()
	if now.Sub(s.typingAt[f.Room]) < s.deps.opts.TypingInterval {
		return nil
	}
	if s.typingAt == nil {
		s.typingAt = make(map[cg.ClassID]time.Time)
	}
	s.typingAt[f.Room] = now // refused frames count too: each costs a query
	var anon cg.AnonID
	if i := s.joined(f.Room); i >= 0 && s.rooms[i].room.has(s.t) {
		anon = s.rooms[i].anon
	} else {
		// Not joined on this socket, or no longer (a LeaveRoom event detaches the socket without
		// the session knowing; it forgets the room now): check enrollment, find the pseudonym.
		s.unsubscribe(f.Room)
		ctx, done := s.t.work(0)
		a, err := s.deps.service.Join(ctx, s.auth.UserID, f.Room)
		done()
		if err != nil {
			return err
		}
		anon = a
	}
	s.deps.service.Typing(f.Room, anon)
	return nil
}
