package loadgen

import (
	"bytes"
	"strconv"
)

// frameKind is the type of a server frame, as far as the load generator cares.
type frameKind uint8

const (
	kindOther frameKind = iota
	kindMessage
	kindAck
	kindSubscribed
	kindError
	kindChange // a change to a message: an event of the room's order at its own seq
)

// serverFrame holds the fields of a server frame the load generator reads. Byte slices point
// into the frame's buffer.
type serverFrame struct {
	kind    frameKind
	ref     []byte
	room    []byte
	seq     int64  // message and ack: the message's seq; change: the change's position
	id      []byte // ack: the message's id
	lastSeq int64  // subscribed
	sentAt  int64  // message and ack of our own content: the publish time, Unix ns; else 0
	code    []byte
}

// contentMark starts the content of every message the load generator publishes:
// "cgload:<unix ns>:<client_msg_id> xxx…".
const contentMark = "cgload:"

var (
	keyType    = []byte(`"type":"`)
	keyRef     = []byte(`"ref":"`)
	keyRoom    = []byte(`"room":"`)
	keySeq     = []byte(`"seq":`)
	keyLastSeq = []byte(`"last_seq":`)
	keyCode    = []byte(`"code":"`)
	keyID      = []byte(`"id":"`)
	keyContent = []byte(`"content":"` + contentMark)
)

// parseFrame reads a server frame without a full JSON decode: it finds the fields by their keys.
// The keys cannot occur inside a string value, whose quotes JSON escapes, and the server puts
// the frame's own "ref" and "room" before the nested message's. ok is false when the frame has
// no type.
func parseFrame(data []byte) (f serverFrame, ok bool) {
	typ, ok := stringAfter(data, keyType)
	if !ok {
		return f, false
	}
	switch string(typ) {
	case "message":
		f.kind = kindMessage
		f.room, _ = stringAfter(data, keyRoom)
		f.seq, _ = intAfter(data, keySeq)
		f.sentAt = sentAt(data)
	case "ack":
		f.kind = kindAck
		f.ref, _ = stringAfter(data, keyRef)
		f.room, _ = stringAfter(data, keyRoom)
		f.seq, _ = intAfter(data, keySeq)
		f.id, _ = stringAfter(data, keyID)
		f.sentAt = sentAt(data)
	case "message_edited", "message_deleted", "message_hidden", "message_restored", "message_erased":
		// The frame's own seq (its position) comes before the nested message's.
		f.kind = kindChange
		f.room, _ = stringAfter(data, keyRoom)
		f.seq, _ = intAfter(data, keySeq)
	case "subscribed":
		f.kind = kindSubscribed
		f.ref, _ = stringAfter(data, keyRef)
		f.room, _ = stringAfter(data, keyRoom)
		f.lastSeq, _ = intAfter(data, keyLastSeq)
	case "error":
		f.kind = kindError
		f.ref, _ = stringAfter(data, keyRef)
		f.code, _ = stringAfter(data, keyCode)
	}
	return f, true
}

// stringAfter returns the string value that follows key, up to the closing quote.
func stringAfter(data, key []byte) ([]byte, bool) {
	i := bytes.Index(data, key)
	if i < 0 {
		return nil, false
	}
	rest := data[i+len(key):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil, false
	}
	return rest[:j], true
}

// intAfter returns the whole number that follows key.
func intAfter(data, key []byte) (int64, bool) {
	i := bytes.Index(data, key)
	if i < 0 {
		return 0, false
	}
	return leadingInt(data[i+len(key):])
}

func leadingInt(b []byte) (int64, bool) {
	var n int64
	k := 0
	for k < len(b) && b[k] >= '0' && b[k] <= '9' {
		n = n*10 + int64(b[k]-'0')
		k++
	}
	return n, k > 0
}

// sentAt returns the publish time carried by our content, or 0.
func sentAt(data []byte) int64 {
	i := bytes.Index(data, keyContent)
	if i < 0 {
		return 0
	}
	n, _ := leadingInt(data[i+len(keyContent):])
	return n
}

// subscribeFrame encodes a subscribe; since < 0 omits since_seq (live messages only).
func subscribeFrame(buf []byte, room string, since int64) []byte {
	buf = append(buf, `{"type":"subscribe","ref":"s`...)
	buf = append(buf, room...)
	buf = append(buf, `","room":"`...)
	buf = append(buf, room...)
	buf = append(buf, '"')
	if since >= 0 {
		buf = append(buf, `,"since_seq":`...)
		buf = strconv.AppendInt(buf, since, 10)
	}
	return append(buf, '}')
}

// publishFrame encodes a publish of about size bytes of content carrying the send time now
// (Unix ns) and the client_msg_id id, which is also the ref; a reply to parent when it is not
// empty.
func publishFrame(buf []byte, room, parent, id string, now int64, size int) []byte {
	buf = append(buf, `{"type":"publish","ref":"`...)
	buf = append(buf, id...)
	buf = append(buf, `","room":"`...)
	buf = append(buf, room...)
	if parent != "" {
		buf = append(buf, `","parent_id":"`...)
		buf = append(buf, parent...)
	}
	buf = append(buf, `","client_msg_id":"`...)
	buf = append(buf, id...)
	buf = append(buf, `","content":"`+contentMark...)
	start := len(buf) - len(contentMark)
	buf = strconv.AppendInt(buf, now, 10)
	buf = append(buf, ':')
	buf = append(buf, id...)
	buf = append(buf, ' ')
	for len(buf)-start < size {
		buf = append(buf, 'x')
	}
	return append(buf, `"}`...)
}
