package commongrounds

import (
	"errors"
	"fmt"
	"net/http"
)

// Error codes. They are the machine-readable `code` of an HTTP problem and of a WebSocket error
// frame; the transports map each to a status of their own.
const (
	EINVALID      = "invalid"      // generic validation failure
	EINVALIDJSON  = "invalid_json" // a request body that is not the expected JSON
	EUNAUTHORIZED = "unauthorized" // no valid session
	EFORBIDDEN    = "forbidden"    // a valid session without the right
	ENOTFOUND     = "not_found"    // no such thing (or not visible to the caller)
	ECONFLICT     = "already_exists"
	ERATELIMITED  = "rate_limited"
	EUNAVAILABLE  = "unavailable" // a dependency is down; the call may be retried
	EINTERNAL     = "internal"

	EINVALIDEMAIL   = "invalid_email"
	EINVALIDTOKEN   = "invalid_token"
	EINVALIDPHONE   = "invalid_phone"
	EINVALIDCODE    = "invalid_code"
	ETOOMANYPHONES  = "too_many_phones"
	ECLASSNOTFOUND  = "class_not_found"
	EUSERNOTFOUND   = "user_not_found"
	ESELFREQUEST    = "self_request"
	EBLOCKED        = "blocked"
	ENOTENROLLED    = "not_enrolled"
	EINVALIDCONTENT = "invalid_content"
	EINVALIDPARENT  = "invalid_parent"
	EOWNMESSAGE     = "own_message"
	ETOOLARGE       = "too_large"
	EINVALIDCURSOR  = "invalid_cursor" // a list cursor this server did not give out
	EINVALIDLIMIT   = "invalid_limit"  // a list limit out of range
)

// Codes of the HTTP side alone.
const (
	EMETHODNOTALLOWED = "method_not_allowed"     // a request whose method its path does not take
	EUNSUPPORTEDMEDIA = "unsupported_media_type" // a JSON route's body not declared application/json
	EREQUESTTIMEOUT   = "request_timeout"        // a body that did not arrive in time
)

// codes is the one table of what each code means to the transports: its HTTP status (codes not
// listed are 400), and whether a WebSocket error frame reports it as it is (others are reported
// as internal, or as the socket's invalid_frame).
var codes = map[string]struct {
	status int
	socket bool
}{
	EUNAUTHORIZED:     {http.StatusUnauthorized, false},
	EINVALIDTOKEN:     {http.StatusUnauthorized, false},
	EFORBIDDEN:        {http.StatusForbidden, false},
	ENOTENROLLED:      {http.StatusForbidden, true},
	EBLOCKED:          {http.StatusForbidden, false},
	ENOTFOUND:         {http.StatusNotFound, true},
	ECLASSNOTFOUND:    {http.StatusNotFound, false},
	EPUSHDISABLED:     {http.StatusNotFound, false},
	EUSERNOTFOUND:     {http.StatusNotFound, false},
	ECONFLICT:         {http.StatusConflict, false},
	ERATELIMITED:      {http.StatusTooManyRequests, true},
	ETOOLARGE:         {http.StatusRequestEntityTooLarge, false},
	EUNAVAILABLE:      {http.StatusServiceUnavailable, true},
	EINTERNAL:         {http.StatusInternalServerError, true},
	EMETHODNOTALLOWED: {http.StatusMethodNotAllowed, false},
	EUNSUPPORTEDMEDIA: {http.StatusUnsupportedMediaType, false},
	EREQUESTTIMEOUT:   {http.StatusRequestTimeout, false},
	EINVALIDCONTENT:   {http.StatusBadRequest, true},
	EINVALIDPARENT:    {http.StatusBadRequest, true},
}

// HTTPStatus returns the HTTP status of an error code: 400 for a code of the client's input.
func HTTPStatus(code string) int {
	if c, ok := codes[code]; ok {
		return c.status
	}
	return http.StatusBadRequest
}

// SocketCode reports whether a WebSocket error frame carries code as it is.
func SocketCode(code string) bool { return codes[code].socket }

// Error is an application error: a code from the list above and a message safe to show to the
// client. Errors without a code are internal and are logged, never shown.
type Error struct {
	Code    string
	Message string
	// RetryAfterMs is set on rate_limited and unavailable errors: how long the client should wait.
	RetryAfterMs int64
	// Err is the cause, for the logs (a broken database connection behind unavailable); it is
	// never shown to the client.
	Err error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("commongrounds error: code=%s message=%s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("commongrounds error: code=%s message=%s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an application error with the given code and a formatted message.
func Errorf(code string, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the application error inside err, EINTERNAL for any other
// non-nil error, and "" for nil.
func ErrorCode(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of the application error inside err, and a
// generic text for any other error.
func ErrorMessage(err error) string {
	var e *Error
	if err == nil {
		return ""
	} else if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}
