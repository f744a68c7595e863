package commongrounds

import (
	"errors"
	"io"
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

// TestCodes: the one table gives each code its HTTP status and says which a socket reports.
func TestCodes(t *testing.T) {
	for _, tc := range []struct {
		code   string
		status int
		socket bool
	}{
		{EUNAUTHORIZED, http.StatusUnauthorized, false},
		{ENOTENROLLED, http.StatusForbidden, true},
		{ENOTFOUND, http.StatusNotFound, true},
		{ERATELIMITED, http.StatusTooManyRequests, true},
		{EUNAVAILABLE, http.StatusServiceUnavailable, true},
		{EINTERNAL, http.StatusInternalServerError, true},
		{EINVALIDCONTENT, http.StatusBadRequest, true},
		{EINVALIDLIMIT, http.StatusBadRequest, false},
		{EINVALID, http.StatusBadRequest, false},
	} {
		if got := HTTPStatus(tc.code); got != tc.status {
			t.Errorf("HTTPStatus(%s)=%d, want %d", tc.code, got, tc.status)
		}
		if got := SocketCode(tc.code); got != tc.socket {
			t.Errorf("SocketCode(%s)=%v, want %v", tc.code, got, tc.socket)
		}
	}
}
