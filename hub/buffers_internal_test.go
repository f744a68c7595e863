package hub

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

type hijackable struct{ http.ResponseWriter }

func (hijackable) Hijack() (net.Conn, *bufio.ReadWriter, error) { return nil, nil, nil }

type unwrapper struct{ http.ResponseWriter }

func (u unwrapper) Unwrap() http.ResponseWriter { return u.ResponseWriter }

// TestWithSmallBuffers wraps only a writer that can be hijacked, directly or through Unwrap:
// otherwise the library must still see that it cannot, and refuse before answering 101.
func TestWithSmallBuffers(t *testing.T) {
	rec := httptest.NewRecorder()
	if _, ok := withSmallBuffers(rec).(smallBuffers); ok {
		t.Error("a recorder, which cannot be hijacked, was wrapped")
	}
	if _, ok := withSmallBuffers(unwrapper{rec}).(smallBuffers); ok {
		t.Error("a wrapper of a recorder was wrapped")
	}
	if _, ok := withSmallBuffers(hijackable{rec}).(smallBuffers); !ok {
		t.Error("a hijackable writer was not wrapped")
	}
	if _, ok := withSmallBuffers(unwrapper{hijackable{rec}}).(smallBuffers); !ok {
		t.Error("a wrapper of a hijackable writer was not wrapped")
	}
}
