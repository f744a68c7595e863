package commongrounds

import (
	"errors"
	"fmt"
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

// Error is an application error: a code from the list above and a message safe to show to the
// client. Errors without a code are internal and are logged, never shown.
type Error struct {
	Code    string
	Message string
	// RetryAfterMs is set on rate_limited and unavailable errors: how long the client should wait.
	RetryAfterMs int64
}

// Error implements the error interface.
func (e *Error) Error() string {
	return fmt.Sprintf("commongrounds error: code=%s message=%s", e.Code, e.Message)
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
