package rooms

import (
	"errors"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// TypeRead is the client frame that sets the user's read marker in a room; the server frame of
// the same type tells the user's sockets where the marker stands.
const TypeRead = "read"

// UserEvent is what goes through a user's channel: a frame for every socket of the user, except
// the one whose id is Origin (the socket that caused it, answered on its own).
type UserEvent struct {
	Origin string
	Frame  []byte
}

// Encode returns the event's wire form: the length of Origin, Origin, then the frame.
func (e UserEvent) Encode() []byte {
	b := make([]byte, 0, 1+len(e.Origin)+len(e.Frame))
	b = append(b, byte(len(e.Origin)))
	b = append(b, e.Origin...)
	return append(b, e.Frame...)
}

var errBadUserEvent = errors.New("malformed user event")

// DecodeUserEvent parses the wire form of a user event. The frame shares memory with b.
func DecodeUserEvent(b []byte) (UserEvent, error) {
	if len(b) < 1 || len(b) < 1+int(b[0]) {
		return UserEvent{}, errBadUserEvent
	}
	n := int(b[0])
	return UserEvent{Origin: string(b[1 : 1+n]), Frame: b[1+n:]}, nil
}

type readFrame struct {
	Type string     `json:"type"`
	Ref  string     `json:"ref,omitempty"`
	Room cg.ClassID `json:"room"`
	Seq  int64      `json:"seq"`
}

// ReadFrame encodes where the user's read marker in a room stands: the reply to a read frame
// (with its ref), and the news to the user's other sockets (without).
func ReadFrame(ref string, room cg.ClassID, seq int64) []byte {
	return mustJSON(readFrame{TypeRead, ref, room, seq})
}

type notificationFrame struct {
	Type         string           `json:"type"`
	Notification *cg.Notification `json:"notification"`
}

// NotificationFrame encodes a notification for every socket of its user.
func NotificationFrame(n *cg.Notification) []byte {
	return mustJSON(notificationFrame{"notification", n})
}

// NotificationOf returns the notification of a stored one, with the pseudonym and excerpt of
// its reply.
func NotificationOf(n cg.NewNotification, reply *cg.Message) *cg.Notification {
	out := n.Notification
	if reply.AnonID != nil {
		out.AnonID = *reply.AnonID
	}
	if reply.Content != nil && !reply.Hidden && !reply.Deleted {
		out.Excerpt = cg.Excerpt(*reply.Content)
	}
	out.CreatedAt = out.CreatedAt.UTC().Truncate(time.Microsecond)
	return &out
}
