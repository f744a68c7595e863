package commongrounds

import (
	"context"
	"time"
)

// ExcerptRunes is the most characters of a reply a notification quotes.
const ExcerptRunes = 140

// Excerpt returns the start of content, at most ExcerptRunes characters, cut between two
// characters, with "…" after it when it was cut.
func Excerpt(content string) string {
	n := 0
	for i := range content {
		if n == ExcerptRunes {
			return content[:i] + "…"
		}
		n++
	}
	return content
}

// UserBroker carries events addressed to one user (a read marker set on another device, a
// notification) to every instance holding a socket of that user. Like room subscriptions, user
// subscriptions are counted: an instance subscribes a user while it holds at least one of the
// user's sockets. Delivery is at most once: the store is the truth (the inbox, the markers).
type UserBroker interface {
	// PublishUser sends an event to the instances subscribed to the user.
	PublishUser(ctx context.Context, user UserID, payload []byte) error
	// SubscribeUser starts delivering the user's events to the handler. Each SubscribeUser is
	// undone by one UnsubscribeUser, even when it returned an error.
	SubscribeUser(ctx context.Context, user UserID) error
	// UnsubscribeUser undoes one SubscribeUser; the last one stops delivering the user's events.
	UnsubscribeUser(ctx context.Context, user UserID) error
}

// ReadMarker is how far a user has read a room: the position (a seq of the room's order) of the
// last thing read.
type ReadMarker struct {
	Room ClassID `json:"room"`
	Seq  int64   `json:"seq"`
}

// RoomUnread is a room of the user's with how much of it is unread: the messages by others
// after the user's read marker that are neither hidden nor deleted, counted up to UnreadCap
// (UnreadMore then says there are more).
type RoomUnread struct {
	*Class
	ReadSeq    int64 `json:"read_seq"`
	Unread     int   `json:"unread"`
	UnreadMore bool  `json:"unread_more"`
}

// UnreadCap is where unread counts stop counting: a client shows "99+" when UnreadMore is set.
const UnreadCap = 99

// ReadMarkerStore keeps the users' read markers.
type ReadMarkerStore interface {
	// SetReadMarker moves user's marker in the class's room to seq, clamped to the room's last
	// position, and never backwards. It returns the marker as it stands and whether it moved.
	// Errors: not_found (no such class), not_enrolled.
	SetReadMarker(ctx context.Context, user UserID, class ClassID, seq int64) (marker int64, moved bool, err error)
}

// NotificationFilter selects a page of a user's inbox, newest first, after Cursor.
type NotificationFilter struct {
	Limit  int
	Cursor string
}

// Mute silences the notifications of a room (ThreadID nil) or of one thread of it.
type Mute struct {
	Room      ClassID    `json:"room"`
	ThreadID  *MessageID `json:"thread_id"`
	CreatedAt time.Time  `json:"created_at"`
}

// NewNotification is a notification just stored, with the user it is for.
type NewNotification struct {
	User UserID
	Notification
}

// NotificationStore keeps the users' inboxes and mutes.
type NotificationStore interface {
	// NotifyReplies stores the notifications of replies just published: for each reply, one
	// for the thread's root author and each earlier replier, except the replier, users no
	// longer enrolled, users who muted the thread or the room, and users blocked by or blocking
	// the replier. A reply notified before is not notified again. It returns the notifications
	// stored, without excerpt and pseudonym (the caller has the replies).
	NotifyReplies(ctx context.Context, replies []MessageID) ([]NewNotification, error)
	// ListNotifications returns a page of the user's inbox, newest first, the cursor of the next
	// page ("" after the last), and the number of unread notifications.
	// Errors: invalid_cursor.
	ListNotifications(ctx context.Context, user UserID, f NotificationFilter) (page []*Notification, next string, unread int, err error)
	// MarkNotificationRead marks one of the user's notifications read. Errors: not_found.
	MarkNotificationRead(ctx context.Context, user UserID, id NotificationID) error
	// MarkAllNotificationsRead marks every notification of the user read and returns how many
	// were unread.
	MarkAllNotificationsRead(ctx context.Context, user UserID) (int64, error)
	// Mute mutes a room or a thread (exactly one of room and thread is set) for the user;
	// muting twice is no error. Errors: not_found (no such class or thread), not_enrolled.
	Mute(ctx context.Context, user UserID, room ClassID, thread MessageID) (*Mute, error)
	// Unmute lifts a mute of a room or a thread (exactly one is set), if there is one.
	Unmute(ctx context.Context, user UserID, room ClassID, thread MessageID) error
	// ListMutes returns the user's mutes, newest first.
	ListMutes(ctx context.Context, user UserID) ([]*Mute, error)
}
