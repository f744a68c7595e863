package commongrounds

import (
	"errors"
	"fmt"
	"log/slog"
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
	// Edits an author may not make.
	EEDITWINDOW     = "edit_window_passed" // the message is older than the edit window
	EMESSAGEHIDDEN  = "message_hidden"     // a hidden message cannot be edited
	EMESSAGEDELETED = "message_deleted"    // a deleted message cannot be edited
)

// Codes of the HTTP side alone.
const (
	EMETHODNOTALLOWED = "method_not_allowed"     // a request whose method its path does not take
	EUNSUPPORTEDMEDIA = "unsupported_media_type" // a JSON route's body not declared application/json
	EREQUESTTIMEOUT   = "request_timeout"        // a body that did not arrive in time
	EUPGRADEREQUIRED  = "upgrade_required"       // a request to the socket's path that is not an upgrade
)

// codes is the one table of what each code means to the transports: its HTTP status (codes not
// listed are 400), and the code a WebSocket error frame reports it with (codes not listed, or
// listed without one, are reported as internal, or as the socket's invalid_frame). A class that
// does not exist is class_not_found on the HTTP side and not_found on the socket, as each
// contract names it.
var codes = map[string]struct {
	status int
	socket string
}{
	EUNAUTHORIZED:     {http.StatusUnauthorized, ""},
	EINVALIDTOKEN:     {http.StatusUnauthorized, ""},
	EFORBIDDEN:        {http.StatusForbidden, ""},
	ENOTENROLLED:      {http.StatusForbidden, ENOTENROLLED},
	EBLOCKED:          {http.StatusForbidden, ""},
	ENOTFOUND:         {http.StatusNotFound, ENOTFOUND},
	ECLASSNOTFOUND:    {http.StatusNotFound, ENOTFOUND},
	EPUSHDISABLED:     {http.StatusNotFound, ""},
	EUSERNOTFOUND:     {http.StatusNotFound, ""},
	ECONFLICT:         {http.StatusConflict, ""},
	ERATELIMITED:      {http.StatusTooManyRequests, ERATELIMITED},
	ETOOLARGE:         {http.StatusRequestEntityTooLarge, ""},
	EUNAVAILABLE:      {http.StatusServiceUnavailable, EUNAVAILABLE},
	EINTERNAL:         {http.StatusInternalServerError, EINTERNAL},
	EMETHODNOTALLOWED: {http.StatusMethodNotAllowed, ""},
	EUNSUPPORTEDMEDIA: {http.StatusUnsupportedMediaType, ""},
	EREQUESTTIMEOUT:   {http.StatusRequestTimeout, ""},
	EUPGRADEREQUIRED:  {http.StatusUpgradeRequired, ""},
	EINVALIDCONTENT:   {http.StatusBadRequest, EINVALIDCONTENT},
	EINVALIDPARENT:    {http.StatusBadRequest, EINVALIDPARENT},
	EEDITWINDOW:       {http.StatusConflict, ""},
	EMESSAGEHIDDEN:    {http.StatusConflict, ""},
	EMESSAGEDELETED:   {http.StatusConflict, ""},
}

// HTTPStatus returns the HTTP status of an error code: 400 for a code of the client's input.
func HTTPStatus(code string) int {
	if c, ok := codes[code]; ok {
		return c.status
	}
	return http.StatusBadRequest
}

// SocketCode returns the code a WebSocket error frame reports code with, and false when a frame
// does not report it as it is.
func SocketCode(code string) (string, bool) {
	c := codes[code].socket
	return c, c != ""
}

// Sentinel errors, one per code callers test for: errors.Is(err, ErrNotFound) holds for every
// application error of code not_found, whatever its message and cause (Error.Is). Return them as
// they are, or with a cause (Error.WithCause); never change them.
var (
	ErrNotFound      = &Error{Code: ENOTFOUND, Message: "Not found."}
	ErrClassNotFound = &Error{Code: ECLASSNOTFOUND, Message: "No such class."}
	ErrUserNotFound  = &Error{Code: EUSERNOTFOUND, Message: "No such user."}
	ErrNotEnrolled   = &Error{Code: ENOTENROLLED, Message: "You are not enrolled in this class."}
	ErrUnauthorized  = &Error{Code: EUNAUTHORIZED, Message: "Sign in first."}
	ErrConflict      = &Error{Code: ECONFLICT, Message: "It exists already."}
	ErrBlocked       = &Error{Code: EBLOCKED, Message: "Blocked."}
)

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

// Is reports whether target is an application error of the same code (a sentinel such as
// ErrNotFound), so that errors.Is matches an error by its code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// WithCause returns a copy of e with err as its cause, for the logs.
func (e *Error) WithCause(err error) *Error {
	c := *e
	c.Err = err
	return &c
}

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

// LogLevel returns the level to log err at: Warn for an unavailable dependency (retried, and its
// cause says which), Error for anything else.
func LogLevel(err error) slog.Level {
	if ErrorCode(err) == EUNAVAILABLE {
		return slog.LevelWarn
	}
	return slog.LevelError
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
