package push

// Event is an outcome of a push, which tests observe.
type Event = event

// The kinds of Event.
const (
	EventSent      = evSent
	EventRemoved   = evRemoved
	EventFailed    = evFailed
	EventRetry     = evRetry
	EventDropped   = evDropped
	EventCoalesced = evCoalesced
)

// SetObserver has f told of every outcome of s. Call it before the first Push.
func SetObserver(s *Service, f func(Event)) { s.observe = f }

// MaxPayload is the largest payload one push carries.
const MaxPayload = maxPayload

// EncodePayload is encodePayload.
var EncodePayload = encodePayload

// EventKind is the kind of an Event.
type EventKind = eventKind
