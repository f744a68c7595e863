package rooms

import (
	"encoding/binary"
	"errors"

	cg "github.com/commongrounds/commongrounds"
)

// EventKind says what a room event carries.
type EventKind byte

// The kinds of room events.
const (
	// EventOrdered is a new message, an event of the room's order; Seq is its position (the
	// message's seq).
	EventOrdered EventKind = 'm'
	// EventChange is a change to a message, an event of the room's order; Seq is its position.
	// Rooms deliver it as they deliver messages, and bring the frames they keep of the message
	// to its new state.
	EventChange   EventKind = 'c'
	EventTyping   EventKind = 't' // someone is typing; Anon is who
	EventPresence EventKind = 'p' // the room's presence count changed on some instance
)

// Event is what rooms exchange through the broker: the frame clients receive, encoded once by
// the publisher, with the little the hub needs to route it.
type Event struct {
	Kind  EventKind
	Seq   int64
	Anon  cg.AnonID
	Frame []byte
}

// Encode returns the event's wire form: kind, seq (8 bytes, big-endian), the length of Anon and
// Anon, then the frame.
func (e Event) Encode() []byte {
	b := make([]byte, 0, 10+len(e.Anon)+len(e.Frame))
	b = append(b, byte(e.Kind))
	b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
	b = append(b, byte(len(e.Anon)))
	b = append(b, e.Anon...)
	return append(b, e.Frame...)
}

var errBadEvent = errors.New("malformed room event")

// DecodeEvent parses the wire form of an event. The frame shares memory with b.
func DecodeEvent(b []byte) (Event, error) {
	if len(b) < 10 {
		return Event{}, errBadEvent
	}
	e := Event{Kind: EventKind(b[0]), Seq: int64(binary.BigEndian.Uint64(b[1:9]))}
	n := int(b[9])
	if len(b) < 10+n {
		return Event{}, errBadEvent
	}
	e.Anon = cg.AnonID(b[10 : 10+n])
	e.Frame = b[10+n:]
	return e, nil
}

// ControlKind says what a control event carries.
type ControlKind byte

// The kinds of control events.
const (
	ControlRevokeSession ControlKind = 'S' // close the sockets of a session
	ControlRevokeUser    ControlKind = 'U' // close the sockets of a user
	ControlLeaveRoom     ControlKind = 'L' // a user left a class: end their subscriptions to its room
)

// EncodeControl returns the wire form of a control event about id.
func EncodeControl(kind ControlKind, id string) []byte {
	return append([]byte{byte(kind)}, id...)
}

// DecodeControl parses a control event.
func DecodeControl(b []byte) (ControlKind, string, error) {
	if len(b) < 2 {
		return 0, "", errBadEvent
	}
	return ControlKind(b[0]), string(b[1:]), nil
}
