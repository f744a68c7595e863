// Package rooms is the logic of class rooms, shared by the WebSocket hub and the HTTP API: the
// frames of the protocol, the rules for content, the events rooms exchange through the broker,
// and the Service that publishes, reads and moderates messages.
package rooms

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	cg "github.com/commongrounds/commongrounds"
)

// Client frame types.
const (
	TypeSubscribe   = "subscribe"
	TypeUnsubscribe = "unsubscribe"
	TypePublish     = "publish"
	TypeTyping      = "typing"
	TypePing        = "ping"
)

// Error codes of error frames that are not domain codes.
const (
	EINVALIDFRAME = "invalid_frame"
	EUNKNOWNTYPE  = "unknown_type"
)

// MaxRefLen is the longest ref accepted, in bytes.
const MaxRefLen = 128

// ClientFrame is a decoded, validated frame from a client.
type ClientFrame struct {
	Type        string
	Ref         string
	Room        cg.ClassID
	SinceSeq    *int64
	Content     string
	ParentID    *cg.MessageID
	ClientMsgID string
	// Seq is the position a read frame marks as read.
	Seq int64
}

// rawFrame is the wire shape of a client frame. Fields are raw so that a wrong type is reported
// as invalid_frame with the frame's ref still echoed. It is decoded with encoding/json/v2
// semantics: names match exactly (a "Content" is an unknown field, and ignored, not content),
// a name given twice is an error, and every string must be valid Unicode, escaped lone
// surrogates (\ud800) included, where encoding/json matches names in any case and turns such
// strings into U+FFFD.
type rawFrame struct {
	Type        jsontext.Value `json:"type"`
	Ref         jsontext.Value `json:"ref"`
	Room        jsontext.Value `json:"room"`
	SinceSeq    jsontext.Value `json:"since_seq"`
	Content     jsontext.Value `json:"content"`
	ParentID    jsontext.Value `json:"parent_id"`
	ClientMsgID jsontext.Value `json:"client_msg_id"`
	Seq         jsontext.Value `json:"seq"`
}

// lenient decodes a frame whose strings may hold lone surrogates, to tell which field does.
var lenient = jsontext.AllowInvalidUTF8(true)

// FrameError is a frame that could not be accepted: its error frame has Code and Message, and
// echoes Ref when the frame had a readable one.
type FrameError struct {
	Ref     string
	Code    string
	Message string
}

func (e *FrameError) Error() string { return e.Code + ": " + e.Message }

// optString decodes a JSON string or null/absent into s; ok is false for any other JSON value
// and for a string that is not valid Unicode (a lone surrogate).
func optString(raw jsontext.Value, s *string) (present, ok bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return false, true
	}
	// raw is one value of a frame already decoded, so valid JSON: a string without escapes is
	// the text between its quotes, as json.Unmarshal would give it for valid UTF-8. Decoding
	// each field again went over it twice more (in a CPU profile of 10,000 connects, decoding
	// the subscribes took 6 % of the server's time).
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' && bytes.IndexByte(raw, '\\') < 0 && utf8.Valid(raw) {
		*s = string(raw[1 : len(raw)-1])
		return true, true
	}
	if err := jsonv2.Unmarshal(raw, s); err != nil {
		return true, false
	}
	return true, true
}

// decodeSeq decodes a JSON number that must be a whole number of at least 0 and fit an int64.
func decodeSeq(raw jsontext.Value) (int64, bool) {
	// Digits alone, as a valid JSON number has them, are parsed directly.
	if len(raw) > 0 && len(raw) <= 18 && !bytes.ContainsFunc(raw, func(r rune) bool { return r < '0' || r > '9' }) {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		return n, err == nil
	}
	var seq int64
	if err := jsonv2.Unmarshal(raw, &seq); err != nil || seq < 0 {
		return 0, false
	}
	return seq, true
}

// DecodeFrame decodes and validates one client frame. The caller closes the socket with 1007
// for text that is not valid UTF-8 before decoding; an escaped lone surrogate is refused here,
// as invalid_content in content and invalid_frame anywhere else.
func DecodeFrame(data []byte) (*ClientFrame, *FrameError) {
	var raw rawFrame
	if err := jsonv2.Unmarshal(data, &raw); err != nil {
		return nil, invalidText(data)
	}
	f := &ClientFrame{}
	if _, ok := optString(raw.Ref, &f.Ref); !ok || len(f.Ref) > MaxRefLen {
		return nil, &FrameError{Code: EINVALIDFRAME, Message: "ref must be a string of at most 128 bytes."}
	}
	bad := func(msg string) (*ClientFrame, *FrameError) {
		return nil, &FrameError{Ref: f.Ref, Code: EINVALIDFRAME, Message: msg}
	}
	if present, ok := optString(raw.Type, &f.Type); !present || !ok || f.Type == "" {
		return bad("type must be a non-empty string.")
	}
	switch f.Type {
	case TypePing:
		return f, nil
	case TypeSubscribe, TypeUnsubscribe, TypePublish, TypeTyping, TypeRead:
	default:
		return nil, &FrameError{Ref: f.Ref, Code: EUNKNOWNTYPE, Message: "Unknown frame type."}
	}
	var room string
	if present, ok := optString(raw.Room, &room); !present || !ok || room == "" {
		return bad("room must be a class id.")
	}
	if !cg.ValidUUID(room) {
		return nil, &FrameError{Ref: f.Ref, Code: cg.ENOTFOUND, Message: "No such class."}
	}
	f.Room = cg.ClassID(room)
	switch f.Type {
	case TypeSubscribe:
		if len(raw.SinceSeq) > 0 && string(raw.SinceSeq) != "null" {
			seq, ok := decodeSeq(raw.SinceSeq)
			if !ok {
				return bad("since_seq must be a whole number of at least 0.")
			}
			f.SinceSeq = &seq
		}
	case TypeRead:
		seq, ok := decodeSeq(raw.Seq)
		if len(raw.Seq) == 0 || string(raw.Seq) == "null" || !ok {
			return bad("seq must be a whole number of at least 0.")
		}
		f.Seq = seq
	case TypePublish:
		present, ok := optString(raw.Content, &f.Content)
		if !ok {
			return nil, &FrameError{Ref: f.Ref, Code: cg.EINVALIDCONTENT, Message: "content must be a string."}
		}
		if !present {
			return nil, &FrameError{Ref: f.Ref, Code: cg.EINVALIDCONTENT, Message: "content is required."}
		}
		var parent string
		if present, ok := optString(raw.ParentID, &parent); !ok {
			return nil, &FrameError{Ref: f.Ref, Code: cg.EINVALIDPARENT, Message: "parent_id must be a message id."}
		} else if present {
			p := cg.MessageID(parent)
			f.ParentID = &p
		}
		if present, ok := optString(raw.ClientMsgID, &f.ClientMsgID); !ok || (present && !ValidClientMsgID(f.ClientMsgID)) {
			return bad("client_msg_id must be 1 to 128 printable ASCII characters.")
		}
	}
	return f, nil
}

// invalidText explains why a frame did not decode: a lone surrogate, with the frame's ref, when
// that is the only fault; otherwise that it is not one JSON object. It runs only on refusals.
func invalidText(data []byte) *FrameError {
	var raw rawFrame
	if err := jsonv2.Unmarshal(data, &raw, lenient); err != nil {
		return &FrameError{Code: EINVALIDFRAME, Message: "A frame must be one JSON object, each name at most once."}
	}
	var ref, content string
	if _, ok := optString(raw.Ref, &ref); !ok || len(ref) > MaxRefLen {
		ref = ""
	}
	if _, ok := optString(raw.Content, &content); !ok {
		return &FrameError{Ref: ref, Code: cg.EINVALIDCONTENT, Message: "content must be valid Unicode text (no lone surrogates)."}
	}
	return &FrameError{Ref: ref, Code: EINVALIDFRAME, Message: "Every string of a frame must be valid Unicode text (no lone surrogates)."}
}

// Server frames. Each is encoded once and the same bytes go to every receiver.

type subscribedFrame struct {
	Type    string     `json:"type"`
	Ref     string     `json:"ref,omitempty"`
	Room    cg.ClassID `json:"room"`
	AnonID  cg.AnonID  `json:"anon_id"`
	LastSeq int64      `json:"last_seq"`
	onlineCount
	// SmallRoom is true when fewer than AnonymityK users are enrolled in the class.
	SmallRoom  bool `json:"small_room"`
	AnonymityK int  `json:"anonymity_k"`
}

// onlineCount is the number of users online as frames show it: exact from k users up, and
// below that only "fewer than k" (Online null, OnlineFewerThan k), so that a count in a small
// room cannot tell who came or went.
type onlineCount struct {
	Online          *int `json:"online"`
	OnlineFewerThan int  `json:"online_fewer_than,omitempty"`
}

// Bucket returns n when it is at least k, and 0 otherwise: two counts below k give the same
// frame, so a room announces no change within that bucket.
func Bucket(n, k int) int {
	if n < k {
		return 0
	}
	return n
}

func bucketed(n, k int) onlineCount {
	if n = Bucket(n, k); n == 0 {
		return onlineCount{OnlineFewerThan: k}
	}
	return onlineCount{Online: &n}
}

type roomFrame struct {
	Type string     `json:"type"`
	Ref  string     `json:"ref,omitempty"`
	Room cg.ClassID `json:"room"`
}

type messageFrame struct {
	Type    string      `json:"type"`
	Room    cg.ClassID  `json:"room"`
	Message *cg.Message `json:"message"`
}

type ackFrame struct {
	Type    string      `json:"type"`
	Ref     string      `json:"ref,omitempty"`
	Message *cg.Message `json:"message"`
}

// changeFrame is a change to a message: its own position in the room's order, and the message
// as it is now.
type changeFrame struct {
	Type      cg.EventKind `json:"type"`
	Room      cg.ClassID   `json:"room"`
	Seq       int64        `json:"seq"`
	MessageID cg.MessageID `json:"message_id"`
	Message   *cg.Message  `json:"message"`
}

type typingFrame struct {
	Type   string     `json:"type"`
	Room   cg.ClassID `json:"room"`
	AnonID cg.AnonID  `json:"anon_id"`
}

type presenceFrame struct {
	Type string     `json:"type"`
	Room cg.ClassID `json:"room"`
	onlineCount
}

type pongFrame struct {
	Type string `json:"type"`
	Ref  string `json:"ref,omitempty"`
}

type errorFrame struct {
	Type         string `json:"type"`
	Ref          string `json:"ref,omitempty"`
	Code         string `json:"code"`
	Message      string `json:"message"`
	RetryAfterMs int64  `json:"retry_after_ms,omitempty"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("rooms: encode frame: " + err.Error()) // only our own plain structs are encoded
	}
	return b
}

// SubscribedFrame encodes the reply to a subscribe: online users are shown as a bucket below k
// (see Bucket), and a room of fewer than k members says so.
func SubscribedFrame(ref string, room cg.ClassID, anon cg.AnonID, lastSeq int64, online, members, k int) []byte {
	return mustJSON(subscribedFrame{"subscribed", ref, room, anon, lastSeq, bucketed(online, k), members < k, k})
}

// UnsubscribedFrame encodes the reply to an unsubscribe.
func UnsubscribedFrame(ref string, room cg.ClassID) []byte {
	return mustJSON(roomFrame{"unsubscribed", ref, room})
}

// MessageFrame encodes a message of a room.
func MessageFrame(m *cg.Message) []byte { return mustJSON(messageFrame{"message", m.Room, m}) }

// AckFrame encodes the reply to a publish.
func AckFrame(ref string, m *cg.Message) []byte { return mustJSON(ackFrame{"ack", ref, m}) }

// EventFrame encodes an event of a room's order: a new message as a message frame, a change as
// a frame of its kind with its position.
func EventFrame(e *cg.RoomEvent) []byte {
	if e.Kind == cg.EventMessage {
		return MessageFrame(e.Message)
	}
	return mustJSON(changeFrame{e.Kind, e.Message.Room, e.Seq, e.Message.ID, e.Message})
}

// DecodeEventFrame reads back an event frame of EventFrame: the event, its position, and its
// message.
func DecodeEventFrame(frame []byte) (*cg.RoomEvent, error) {
	var f changeFrame
	if err := json.Unmarshal(frame, &f); err != nil {
		return nil, err
	}
	if f.Message == nil {
		return nil, errBadEvent
	}
	if f.Type == cg.EventMessage {
		f.Seq = f.Message.Seq
	}
	return &cg.RoomEvent{Seq: f.Seq, Kind: f.Type, Message: f.Message}, nil
}

// TypingFrame encodes that someone is typing in a room.
func TypingFrame(room cg.ClassID, anon cg.AnonID) []byte {
	return mustJSON(typingFrame{"typing", room, anon})
}

// PresenceFrame encodes the number of distinct users online in a room, as a bucket below k.
func PresenceFrame(room cg.ClassID, online, k int) []byte {
	return mustJSON(presenceFrame{"presence", room, bucketed(online, k)})
}

// PongFrame encodes the reply to a ping.
func PongFrame(ref string) []byte { return mustJSON(pongFrame{"pong", ref}) }

// ErrorFrame encodes an error reply.
func ErrorFrame(ref, code, message string, retryAfterMs int64) []byte {
	if !utf8.ValidString(ref) {
		ref = ""
	}
	return mustJSON(errorFrame{"error", ref, code, message, retryAfterMs})
}
