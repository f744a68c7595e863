package hub

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
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
	if w, sb := withSmallBuffers(rec, false); sb != nil || w != http.ResponseWriter(rec) {
		t.Error("a recorder, which cannot be hijacked, was wrapped")
	}
	if w, sb := withSmallBuffers(unwrapper{rec}, false); sb != nil || w != http.ResponseWriter(unwrapper{rec}) {
		t.Error("a wrapper of a recorder was wrapped")
	}
	if w, sb := withSmallBuffers(hijackable{rec}, false); sb == nil || w != http.ResponseWriter(sb) {
		t.Error("a hijackable writer was not wrapped")
	}
	if w, sb := withSmallBuffers(unwrapper{hijackable{rec}}, false); sb == nil || w != http.ResponseWriter(sb) {
		t.Error("a wrapper of a hijackable writer was not wrapped")
	}
}

// TestReadBuffer: the read buffer is small while shrunk and large again once grown, and what
// is read through it arrives whole and in order across the changes.
func TestReadBuffer(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	rb := &readBuffer{Reader: new(bufio.Reader), lead: &leadConn{Conn: server}}
	rb.grow()
	go func() {
		for i := range 300 {
			if _, err := fmt.Fprintf(client, "%03d", i); err != nil {
				return
			}
		}
	}()
	var got []byte
	var shrunk, grown int
	for i := range 300 {
		if i%7 == 3 && !rb.pending() {
			shrunk++
			rb.shrink()
			if n := rb.Size(); n != parkedReadBufferSize {
				t.Fatalf("shrunk to %d bytes, want %d", n, parkedReadBufferSize)
			}
		}
		b := make([]byte, 3)
		if _, err := io.ReadFull(rb, b); err != nil {
			t.Fatal(err)
		}
		got = append(got, b...)
		if i%7 == 5 && !rb.pending() {
			grown++
			rb.grow()
			if n := rb.Size(); n != socketBufferSize {
				t.Fatalf("grown to %d bytes, want %d", n, socketBufferSize)
			}
		}
	}
	var want []byte
	for i := range 300 {
		want = fmt.Appendf(want, "%03d", i)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
	if shrunk < 40 || grown < 40 {
		t.Fatalf("shrunk %d and grown %d times, want 40 or more each", shrunk, grown)
	}
}
