// Package sistest serves the SIS class search from recorded pages, for tests of the sync: the
// synthetic term 1262 (133 sections of six subjects over three pages of at most 50, then an
// empty page), with faults that can be injected per page: HTML error pages, 5xx, answers that
// never come, truncated JSON and connections cut mid-answer.
package sistest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/commongrounds/commongrounds/sis"
)

// Term is the term of the recorded pages, and Sections the number of its sections.
const (
	Term     = "1262"
	Sections = 133
	// PageSize is the most sections the server puts on one page, unless SetPageSize changes
	// it for the pages of one subject.
	PageSize = 50
)

// Fault is a way for the server to fail one request.
type Fault int

// The faults.
const (
	// HTML answers 200 with a PeopleSoft-style HTML error page.
	HTML Fault = iota + 1
	// Unavailable answers 503 with an HTML page.
	Unavailable
	// Slow never answers: it waits until the client gives up (or the server closes).
	Slow
	// Truncated answers 200 with the first half of the JSON, as a complete HTTP response.
	Truncated
	// Cut promises the whole answer, sends half of it and closes the connection.
	Cut
)

// Key names what a request asks for: Page 0 is the options (subjects) of the term; Subject ""
// is the term without a subject filter.
type Key struct {
	Subject string
	Page    int
}

// Server is an SIS class search over HTTP.
type Server struct {
	*httptest.Server
	pages    [][]byte          // the recorded pages of the unfiltered term, page 1 first
	sections []json.RawMessage // every section, in page order
	subjects []string          // the subject of each section
	options  []byte
	closing  chan struct{}

	mu           sync.Mutex
	faults       map[Key][]Fault // guarded by mu; the next faults of each key, in order
	always       map[Key]Fault   // guarded by mu; faults that never run out
	hits         map[Key]int     // guarded by mu
	pageSize     int             // guarded by mu
	hideSubjects bool            // guarded by mu
}

// Dir returns the directory of the recorded pages.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "testdata")
}

// NewServer starts a server on the recorded pages; it is closed when the test ends.
func NewServer(tb testing.TB) *Server {
	tb.Helper()
	s := &Server{closing: make(chan struct{}), faults: map[Key][]Fault{}, always: map[Key]Fault{}, hits: map[Key]int{}, pageSize: PageSize}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(Dir(), name))
		if err != nil {
			tb.Fatalf("sistest: %v", err)
		}
		return b
	}
	s.options = read("class-search-options-term-" + Term + ".json")
	for p := 1; ; p++ {
		name := fmt.Sprintf("class-search-term-%s-page-%d.json", Term, p)
		if _, err := os.Stat(filepath.Join(Dir(), name)); err != nil {
			break
		}
		page := read(name)
		var secs []json.RawMessage
		if err := json.Unmarshal(page, &secs); err != nil {
			tb.Fatalf("sistest: %s: %v", name, err)
		}
		if len(secs) == 0 {
			break
		}
		s.pages = append(s.pages, page)
		for _, raw := range secs {
			var sec struct {
				Subject string `json:"subject"`
			}
			if err := json.Unmarshal(raw, &sec); err != nil {
				tb.Fatalf("sistest: %s: %v", name, err)
			}
			s.sections = append(s.sections, raw)
			s.subjects = append(s.subjects, sec.Subject)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+sis.SearchPath, s.handleSearch)
	mux.HandleFunc("GET "+sis.OptionsPath, s.handleOptions)
	s.Server = httptest.NewServer(mux)
	tb.Cleanup(func() {
		close(s.closing)
		s.Server.Close()
	})
	return s
}

// Inject makes the next n requests for k fail with f, after any faults already queued for k;
// n < 0 makes every later request for k fail.
func (s *Server) Inject(k Key, f Fault, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n < 0 {
		s.always[k] = f
		return
	}
	for range n {
		s.faults[k] = append(s.faults[k], f)
	}
}

// Heal removes every fault of k.
func (s *Server) Heal(k Key) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.faults, k)
	delete(s.always, k)
}

// SetPageSize sets the most sections on a page of one subject (the unfiltered term keeps its
// recorded pages of 50), so that a subject spans several pages.
func (s *Server) SetPageSize(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pageSize = n
}

// HideSubjects makes the options list no subjects, so that a sync reads the term unfiltered.
func (s *Server) HideSubjects() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hideSubjects = true
}

// Hits returns how many requests for k the server received.
func (s *Server) Hits(k Key) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[k]
}

// SectionsOf returns how many sections subject has ("" for all).
func (s *Server) SectionsOf(subject string) int {
	n := 0
	for _, sub := range s.subjects {
		if subject == "" || sub == subject {
			n++
		}
	}
	return n
}

// take counts a request for k and returns the fault it should meet, if any.
func (s *Server) take(k Key) Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hits[k]++
	if q := s.faults[k]; len(q) > 0 {
		s.faults[k] = q[1:]
		return q[0]
	}
	return s.always[k]
}

func (s *Server) handleOptions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("institution") == "" || q.Get("term") == "" {
		http.Error(w, "institution and term are required", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	hide := s.hideSubjects
	s.mu.Unlock()
	body := s.options
	if q.Get("term") != Term || hide {
		body = []byte(`{"subjects":[],"terms":[]}`)
	}
	s.answer(w, r, s.take(Key{Page: 0}), body)
}

func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := strconv.Atoi(q.Get("page"))
	if q.Get("institution") == "" || q.Get("term") == "" || err != nil || page < 1 {
		http.Error(w, "institution, term and a page from 1 are required", http.StatusBadRequest)
		return
	}
	subject := strings.ToUpper(q.Get("subject"))
	fault := s.take(Key{Subject: subject, Page: page})
	var body []byte
	switch {
	case q.Get("term") != Term:
		body = []byte("[]")
	case subject == "":
		// The whole term: the recorded pages as they are, then an empty page.
		body = []byte("[]")
		if page <= len(s.pages) {
			body = s.pages[page-1]
		}
	default:
		var secs []json.RawMessage
		for i, raw := range s.sections {
			if s.subjects[i] == subject {
				secs = append(secs, raw)
			}
		}
		s.mu.Lock()
		size := s.pageSize
		s.mu.Unlock()
		lo, hi := min((page-1)*size, len(secs)), min(page*size, len(secs))
		body, _ = json.Marshal(append([]json.RawMessage{}, secs[lo:hi]...))
	}
	s.answer(w, r, fault, body)
}

const errorPage = `<!DOCTYPE html>
<html><head><title>PeopleSoft Error</title></head>
<body><h1>The service is temporarily unavailable</h1><p>Please try again later.</p></body></html>
`

// answer writes body, or fails as fault says.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, fault Fault, body []byte) {
	switch fault {
	case HTML:
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		_, _ = w.Write([]byte(errorPage))
	case Unavailable:
		w.Header().Set("Content-Type", "text/html; charset=UTF-8")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(errorPage))
	case Slow:
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
	case Truncated:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body[:len(body)/2])
	case Cut:
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		_, _ = fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		_, _ = buf.Write(body[:len(body)/2])
		_ = buf.Flush()
	default:
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}
}
