// Package commongrounds holds the domain of Common Grounds: the types that cross package
// boundaries, the application error, and the interfaces of the stores and the broker. It imports
// nothing else of this module; storage (persistence), transport (api, hub) and the broker
// implementations depend on it, and cmd wires them together.
package commongrounds

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// UserID identifies a user. It never leaves the server inside a message, frame or list of
// messages: the distinct type keeps it from being put there by accident.
type UserID string

// ClassID identifies a class, and the class's room.
type ClassID string

// MessageID identifies a message.
type MessageID string

// SessionID identifies a sign-in session.
type SessionID string

// AnonID is a user's pseudonym within one class, such as Anon_a3f2e1.
type AnonID string

// ValidUUID reports whether s is a UUID in its canonical textual form. Identifiers from clients
// are checked with it before they reach a query.
//
// It is what `^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`
// matches, checked byte by byte: every frame naming a room passes here, and the regular
// expression was 3 % of the server's time in a CPU profile of a reconnect storm.
func ValidUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// StorableText reports whether s can be stored in a Postgres text column: valid UTF-8 without
// NUL. Text from a URL or a JSON \u0000 escape can be neither; such input names nothing that is
// stored and is refused before it reaches a query.
func StorableText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// Role is a user's role.
type Role string

// The roles.
const (
	RoleStudent   Role = "student"
	RoleModerator Role = "moderator"
)

// User is an account as its owner sees it.
type User struct {
	ID            UserID    `json:"id"`
	Email         string    `json:"email"`
	ComputingID   *string   `json:"computing_id"`
	EmailVerified bool      `json:"email_verified"`
	PhoneVerified bool      `json:"phone_verified"`
	Role          Role      `json:"role"`
	CreatedAt     time.Time `json:"created_at"`
}

// Public returns the user as others see it.
func (u *User) Public() PublicUser {
	return PublicUser{ID: u.ID, Email: u.Email, ComputingID: u.ComputingID}
}

// PublicUser is a user as other users see it.
type PublicUser struct {
	ID          UserID  `json:"id"`
	Email       string  `json:"email"`
	ComputingID *string `json:"computing_id"`
}

// Class is a class section from the SIS. Its room is the class's chat room.
type Class struct {
	ID                  ClassID `json:"id"`
	Subject             string  `json:"subject"`
	CatalogNumber       string  `json:"catalog_number"`
	Term                string  `json:"term"`
	Title               *string `json:"title"`
	ClassSection        *string `json:"class_section"`
	Component           *string `json:"component"`
	Instructor          *string `json:"instructor"`
	Days                *string `json:"days"`
	StartTime           *string `json:"start_time"`
	EndTime             *string `json:"end_time"`
	Location            *string `json:"location"`
	ClassCapacity       *int    `json:"class_capacity"`
	EnrollmentAvailable *int    `json:"enrollment_available"`
	SISClassNumber      *string `json:"sis_class_number"`
}

// Message is a message of a class room as every client sees it. It has no field for its author:
// only the pseudonym leaves the server.
type Message struct {
	ID         MessageID  `json:"id"`
	Room       ClassID    `json:"room"`
	Seq        int64      `json:"seq"`
	AnonID     *AnonID    `json:"anon_id"`
	Content    *string    `json:"content"`
	ParentID   *MessageID `json:"parent_id"`
	ReplyCount int        `json:"reply_count"`
	CreatedAt  time.Time  `json:"created_at"`
	Hidden     bool       `json:"hidden"`
	// HiddenBy says who hid a hidden message: "flags" (enough students flagged it) or
	// "moderator"; nil when it is not hidden.
	HiddenBy *string `json:"hidden_by"`
	Deleted  bool    `json:"deleted"`
	// EditedAt is when its author last edited it; nil when never.
	EditedAt *time.Time `json:"edited_at"`
}

// EventKind is what an event of a room's order is: a new message or a change to one. It is
// also the type of the frame that carries the event.
type EventKind string

// The kinds of room events.
const (
	EventMessage  EventKind = "message"          // a new message; its seq is its position
	EventEdited   EventKind = "message_edited"   // its author edited it
	EventDeleted  EventKind = "message_deleted"  // its author deleted it: a tombstone keeping its pseudonym
	EventHidden   EventKind = "message_hidden"   // a moderator, or enough flags, hid it
	EventRestored EventKind = "message_restored" // a moderator restored it
	EventErased   EventKind = "message_erased"   // a deleted account's message was erased
)

// RoomEvent is one event of a room's order. Seq is its position: every event of a room has
// its own, rising by one per event, new messages and changes alike. Message is the message it
// is about, as every client may see it.
type RoomEvent struct {
	Seq     int64
	Kind    EventKind
	Message *Message
}

// MessagePage is a page of a room's history and the room's last event position when it was
// read: a client that has the page resumes the room's events from LastSeq.
type MessagePage struct {
	Messages []*Message
	LastSeq  int64
}

// MessageVersion is an earlier content of a message, kept for moderators: replaced by an edit
// (Reason "edited") or removed by its author's deletion of a flagged message ("deleted").
type MessageVersion struct {
	Version    int       `json:"version"`
	Content    string    `json:"content"`
	WrittenAt  time.Time `json:"written_at"`
	ReplacedAt time.Time `json:"replaced_at"`
	Reason     string    `json:"reason"`
}

// Session is a sign-in session: who is signed in, with which role, until when.
type Session struct {
	ID        SessionID
	UserID    UserID
	Role      Role
	ExpiresAt time.Time
	LastUsed  time.Time
}

// NewMessage is a message to be published.
type NewMessage struct {
	Class       ClassID
	User        UserID
	Content     string
	ParentID    *MessageID
	ClientMsgID string
}

// MessageFilter selects a page of a room's history: with AfterSeq the Limit messages after it,
// with BeforeSeq the Limit messages before it, with neither the newest Limit. Messages come in
// ascending seq.
type MessageFilter struct {
	AfterSeq  *int64
	BeforeSeq *int64
	Limit     int
}

// FlaggedMessage is a message with the number of users who flagged it, for moderators.
type FlaggedMessage struct {
	Message
	FlagCount int `json:"flag_count"`
	// Versions are the message's earlier contents, oldest first: those its author replaced by
	// editing, and the content of a flagged message its author deleted.
	Versions []MessageVersion `json:"versions"`
}

// AccessRequest and AccessResult are one call of MessageStore.RoomAccesses.
type AccessRequest struct {
	User  UserID
	Class ClassID
}

type AccessResult struct {
	Anon AnonID
	// Members is the number of users enrolled in the class, counted up to the store's limit
	// (at least the anonymity threshold): enough to tell whether the room is below it.
	Members int
	Err     error
}

// NotificationID identifies a stored notification.
type NotificationID string

// Notification tells a user of a reply in a thread they take part in. Like a message, it names
// the replier only by their pseudonym in the class.
type Notification struct {
	ID        NotificationID `json:"id"`
	Room      ClassID        `json:"room"`
	ThreadID  MessageID      `json:"thread_id"`
	MessageID MessageID      `json:"message_id"`
	AnonID    AnonID         `json:"anon_id"`
	Excerpt   string         `json:"excerpt"`
	CreatedAt time.Time      `json:"created_at"`
	Read      bool           `json:"read"`
}

// Pusher sends a notification to the devices of a user who has no socket open (Web Push).
// Push never blocks: a slow or failing push service delays only its own deliveries.
type Pusher interface {
	Push(user UserID, n *Notification)
}

// DefaultAnonymityK is the anonymity threshold when none is configured: below it, counts of
// people are shown only as "fewer than K".
const DefaultAnonymityK = 5

// MessageStore keeps the messages of class rooms, their pseudonyms and their moderation.
type MessageStore interface {
	// RoomAccess returns the user's pseudonym in the class's room, creating it on first use.
	// Errors: class_not_found, not_enrolled.
	RoomAccess(ctx context.Context, user UserID, class ClassID) (AnonID, error)
	// RoomAccesses is RoomAccess for many (user, class) pairs at once, in one round trip; the
	// results are in the order of reqs.
	RoomAccesses(ctx context.Context, reqs []AccessRequest) []AccessResult
	// CreateMessage stores a message under the room's next seq and returns it; created is false
	// when the user's earlier message with the same client_msg_id is returned instead.
	// Errors: class_not_found, not_enrolled, invalid_parent, unavailable.
	CreateMessage(ctx context.Context, m NewMessage) (msg *Message, created bool, err error)
	// ListMessages returns a page of the room's history, each message in its current state,
	// and the room's last event position, read together. Errors: none beyond internal ones.
	ListMessages(ctx context.Context, class ClassID, f MessageFilter) (*MessagePage, error)
	// ListEvents returns up to limit events of the room after the position after, in order:
	// the messages created after it and the changes made after it, each message in its current
	// state but with the reply count it had at the event's position (see docs/protocol.md).
	ListEvents(ctx context.Context, class ClassID, after int64, limit int) ([]*RoomEvent, error)
	// LastSeqs returns the last event position of each room (0 for an empty one).
	LastSeqs(ctx context.Context, classes []ClassID) (map[ClassID]int64, error)
	// EditMessage replaces the content of user's message if it was created within window, and
	// returns the message and the event (nil when the content was already that).
	// Errors: not_found, forbidden (another's message), not_enrolled, message_hidden,
	// message_deleted, edit_window_passed.
	EditMessage(ctx context.Context, id MessageID, user UserID, content string, window time.Duration) (*Message, *RoomEvent, error)
	// DeleteMessage turns user's message into a tombstone that keeps its pseudonym, and returns
	// the event (nil when it already was one). Errors: not_found, forbidden.
	DeleteMessage(ctx context.Context, id MessageID, user UserID) (*RoomEvent, error)
	// MessageVersions returns the earlier contents of a message, oldest first, for moderators.
	// Errors: not_found.
	MessageVersions(ctx context.Context, id MessageID) ([]MessageVersion, error)
	// Thread returns a root message and its replies. Errors: not_found (no such message).
	Thread(ctx context.Context, class ClassID, id MessageID) (*Message, []*Message, error)
	// FlagMessage records user's flag of a message once and hides it when threshold distinct
	// users flagged it. hid is the event of the hide when this flag hid it, and nil otherwise.
	// Errors: not_found, not_enrolled, own_message.
	FlagMessage(ctx context.Context, id MessageID, user UserID, reason string, threshold int) (hid *RoomEvent, err error)
	// SetHidden hides or restores a message on a moderator's behalf and audits it; the event is
	// nil when it already was so. Errors: not_found.
	SetHidden(ctx context.Context, id MessageID, moderator UserID, hidden bool) (*RoomEvent, error)
	// RevealAuthor returns a message's author and writes the reveal to the audit log.
	// Errors: not_found (also for a deleted author).
	RevealAuthor(ctx context.Context, id MessageID, moderator UserID, reason string) (*PublicUser, error)
	// ListFlagged returns flagged messages, most flagged first, after the cursor.
	ListFlagged(ctx context.Context, limit int, cursor string) ([]*FlaggedMessage, string, error)
}

// Broker carries room events between the instances of the server. Events of a room reach every
// instance subscribed to that room, including the publishing one; control events reach every
// instance. Delivery is at most once and may reorder: Postgres is the source of truth, and
// subscribers repair gaps from it.
type Broker interface {
	// Publish sends an event to the room's subscribers.
	Publish(ctx context.Context, room ClassID, payload []byte) error
	// PublishControl sends an event to every instance.
	PublishControl(ctx context.Context, payload []byte) error
	// Subscribe starts delivering the room's events to the handler. Subscriptions are counted:
	// each Subscribe is undone by one Unsubscribe, even when Subscribe returned an error.
	Subscribe(ctx context.Context, room ClassID) error
	// Unsubscribe undoes one Subscribe; the last one stops delivering the room's events.
	Unsubscribe(ctx context.Context, room ClassID) error
	// SetHandler sets the receiver of events. It is called once, before any subscription.
	SetHandler(h BrokerHandler)
	UserBroker
}

// BrokerHandler receives what a broker delivers. Its methods must not block.
type BrokerHandler interface {
	// HandleRoomEvent receives an event of a subscribed room.
	HandleRoomEvent(room ClassID, payload []byte)
	// HandleControl receives a control event.
	HandleControl(payload []byte)
	// HandleResync is called when events may have been lost (the broker reconnected): every
	// subscribed room must catch up from the store.
	HandleResync()
	// HandleUserEvent receives an event of a subscribed user (UserBroker).
	HandleUserEvent(user UserID, payload []byte)
}
