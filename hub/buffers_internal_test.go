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
	if w, sb := withSmallBuffers(rec); sb != nil || w != http.ResponseWriter(rec) {
		t.Error("a recorder, which cannot be hijacked, was wrapped")
	}
	if w, sb := withSmallBuffers(unwrapper{rec}); sb != nil || w != http.ResponseWriter(unwrapper{rec}) {
		t.Error("a wrapper of a recorder was wrapped")
	}
	if w, sb := withSmallBuffers(hijackable{rec}); sb == nil || w != http.ResponseWriter(sb) {
		t.Error("a hijackable writer was not wrapped")
	}
	if w, sb := withSmallBuffers(unwrapper{hijackable{rec}}); sb == nil || w != http.ResponseWriter(sb) {
		t.Error("a wrapper of a hijackable writer was not wrapped")
	}
}
