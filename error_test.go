package commongrounds

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
)

// TestErrorCause: an application error keeps its cause for the logs, reachable with errors.Is
// and shown in Error, never in the client's message.
func TestErrorCause(t *testing.T) {
	err := error(&Error{Code: EUNAVAILABLE, Message: "The database is unavailable; try again.", Err: io.ErrUnexpectedEOF})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatal("the cause is not reachable through Unwrap")
	}
	if !strings.Contains(err.Error(), io.ErrUnexpectedEOF.Error()) {
		t.Fatalf("Error()=%q, want the cause in it", err.Error())
	}
	if got := ErrorMessage(err); strings.Contains(got, io.ErrUnexpectedEOF.Error()) {
		t.Fatalf("ErrorMessage=%q shows the cause", got)
	}
}

// TestCodes: the one table gives each code its HTTP status and the code a socket reports it with.
func TestCodes(t *testing.T) {
	for _, tc := range []struct {
		code   string
		status int
		socket string // "": not reported as it is
	}{
		{EUNAUTHORIZED, http.StatusUnauthorized, ""},
		{ENOTENROLLED, http.StatusForbidden, ENOTENROLLED},
		{ENOTFOUND, http.StatusNotFound, ENOTFOUND},
		{ECLASSNOTFOUND, http.StatusNotFound, ENOTFOUND},
		{ERATELIMITED, http.StatusTooManyRequests, ERATELIMITED},
		{EUNAVAILABLE, http.StatusServiceUnavailable, EUNAVAILABLE},
		{EINTERNAL, http.StatusInternalServerError, EINTERNAL},
		{EINVALIDCONTENT, http.StatusBadRequest, EINVALIDCONTENT},
		{EINVALIDLIMIT, http.StatusBadRequest, ""},
		{EINVALID, http.StatusBadRequest, ""},
		{EMETHODNOTALLOWED, http.StatusMethodNotAllowed, ""},
		{EUPGRADEREQUIRED, http.StatusUpgradeRequired, ""},
	} {
		if got := HTTPStatus(tc.code); got != tc.status {
			t.Errorf("HTTPStatus(%s)=%d, want %d", tc.code, got, tc.status)
		}
		got, ok := SocketCode(tc.code)
		if got != tc.socket || ok != (tc.socket != "") {
			t.Errorf("SocketCode(%s)=(%q, %v), want %q", tc.code, got, ok, tc.socket)
		}
	}
}

// TestSentinels: errors.Is matches an application error by its code, through wrapping, and
// still reaches the error's cause.
func TestSentinels(t *testing.T) {
	err := fmt.Errorf("list messages: %w", Errorf(ECLASSNOTFOUND, "No such class here."))
	if !errors.Is(err, ErrClassNotFound) {
		t.Fatal("errors.Is(class_not_found error, ErrClassNotFound) = false")
	}
	if errors.Is(err, ErrNotFound) {
		t.Fatal("errors.Is(class_not_found error, ErrNotFound) = true: codes differ")
	}
	if errors.Is(errors.New("plain"), ErrNotFound) {
		t.Fatal("a plain error matched ErrNotFound")
	}
	caused := ErrUserNotFound.WithCause(io.ErrUnexpectedEOF)
	if !errors.Is(caused, ErrUserNotFound) || !errors.Is(caused, io.ErrUnexpectedEOF) {
		t.Fatal("WithCause lost the code or the cause")
	}
	if ErrUserNotFound.Err != nil {
		t.Fatal("WithCause changed the sentinel")
	}
}

// TestLogLevel: an unavailable dependency is logged at Warn, anything else at Error.
func TestLogLevel(t *testing.T) {
	db := &Error{Code: EUNAVAILABLE, Message: "The database is unavailable.", Err: io.ErrUnexpectedEOF}
	if got := LogLevel(fmt.Errorf("erase: %w", db)); got != slog.LevelWarn {
		t.Fatalf("LogLevel(unavailable)=%v, want WARN", got)
	}
	if got := LogLevel(errors.New("a bug")); got != slog.LevelError {
		t.Fatalf("LogLevel(internal)=%v, want ERROR", got)
	}
}
