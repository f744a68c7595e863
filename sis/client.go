package sis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The paths of the class search and of its options, below the base URL.
const (
	SearchPath  = "/WEBLIB_HCX_CM.H_CLASS_SEARCH.FieldFormula.IScript_ClassSearch"
	OptionsPath = "/WEBLIB_HCX_CM.H_CLASS_SEARCH.FieldFormula.IScript_ClassSearchOptions"
)

// Errors of the client. A failed call wraps one of them, so that callers can tell them apart
// with errors.Is; the message says which page failed and how.
var (
	// ErrHTML is an HTML page (a PeopleSoft error or sign-in page) where JSON was expected.
	ErrHTML = errors.New("the SIS answered with an HTML page instead of JSON")
	// ErrTruncated is JSON that ends before its value does.
	ErrTruncated = errors.New("the SIS answer is truncated JSON")
	// ErrInvalidJSON is an answer that is not JSON of the expected shape.
	ErrInvalidJSON = errors.New("the SIS answer is not the expected JSON")
	// ErrStatus is an HTTP error status.
	ErrStatus = errors.New("the SIS answered with an error status")
	// ErrTimeout is an attempt that got no complete answer within Client.Timeout.
	ErrTimeout = errors.New("the SIS did not answer in time")
	// ErrTooLarge is an answer over Client.MaxBodyBytes.
	ErrTooLarge = errors.New("the SIS answer is too large")
)

// Client calls the SIS class search. The zero value of each optional field gives its default.
type Client struct {
	// BaseURL is where the SIS is, such as https://sis.example.edu/psc/prd/EMPLOYEE/SA/s.
	BaseURL string
	// Institution is the PeopleSoft institution code. Default: UVA01.
	Institution string
	// HTTPClient sends the requests. Default: a client of its own.
	HTTPClient *http.Client
	// Timeout bounds one attempt, from sending the request to reading the whole answer.
	// Default: 30 s.
	Timeout time.Duration
	// Attempts is how many times a call is tried in all when the SIS answers 5xx or 429, does
	// not answer in time, cuts the connection or truncates the answer. Default: 4.
	Attempts int
	// Backoff is the wait before the first retry; it doubles with each further retry, with
	// random jitter, up to MaxBackoff. Defaults: 500 ms and 10 s.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// MaxBodyBytes bounds an answer. Default: 32 MiB.
	MaxBodyBytes int64
}

var defaultHTTPClient = &http.Client{}

func (c *Client) institution() string {
	if c.Institution == "" {
		return "UVA01"
	}
	return c.Institution
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient == nil {
		return defaultHTTPClient
	}
	return c.HTTPClient
}

func durationOr(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Subjects returns the subjects of term, from the class-search options.
func (c *Client) Subjects(ctx context.Context, term string) ([]Subject, error) {
	q := url.Values{"institution": {c.institution()}, "term": {term}}
	var opts struct {
		Subjects []Subject `json:"subjects"`
	}
	if err := c.getJSON(ctx, "subjects of term "+term, OptionsPath, q, &opts); err != nil {
		return nil, err
	}
	return opts.Subjects, nil
}

// Page returns page (1-based) of the sections of term, of one subject unless subject is "".
// An empty page is the end of the listing.
func (c *Client) Page(ctx context.Context, term, subject string, page int) ([]Section, error) {
	q := url.Values{"institution": {c.institution()}, "term": {term}, "page": {strconv.Itoa(page)}}
	what := fmt.Sprintf("term %s page %d", term, page)
	if subject != "" {
		q.Set("subject", subject)
		what = fmt.Sprintf("term %s subject %s page %d", term, subject, page)
	}
	var sections []Section
	if err := c.getJSON(ctx, what, SearchPath, q, &sections); err != nil {
		return nil, err
	}
	return sections, nil
}

// getJSON fetches path?q into v, retrying what may pass.
func (c *Client) getJSON(ctx context.Context, what, path string, q url.Values, v any) error {
	if c.BaseURL == "" {
		return errors.New("sis: no base URL configured (SIS_BASE_URL)")
	}
	u := strings.TrimRight(c.BaseURL, "/") + path + "?" + q.Encode()
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = 4
	}
	backoff := durationOr(c.Backoff, 500*time.Millisecond)
	maxBackoff := durationOr(c.MaxBackoff, 10*time.Second)
	for i := 1; ; i++ {
		retry, err := c.attempt(ctx, u, v)
		switch {
		case err == nil:
			return nil
		case !retry && i == 1:
			return fmt.Errorf("sis: %s: %w", what, err)
		case !retry || i >= attempts:
			return fmt.Errorf("sis: %s: %w (attempt %d of %d)", what, err, i, attempts)
		}
		// Equal jitter: half the doubled wait, plus a random part of the other half.
		d := backoff
		for j := 1; j < i && d < maxBackoff; j++ {
			d *= 2
		}
		d = min(d, maxBackoff)
		d = d/2 + rand.N(d/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("sis: %s: %w (after %d attempts, the last failed with: %v)", what, ctx.Err(), i, err)
		case <-t.C:
		}
	}
}

// attempt makes one request. retry reports whether another attempt may succeed.
func (c *Client) attempt(ctx context.Context, u string, v any) (retry bool, err error) {
	timeout := durationOr(c.Timeout, 30*time.Second)
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return transportError(ctx, actx, timeout, "send request", err)
	}
	defer resp.Body.Close()
	limit := c.MaxBodyBytes
	if limit <= 0 {
		limit = 32 << 20
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return transportError(ctx, actx, timeout, fmt.Sprintf("read answer (after %d bytes)", len(body)), err)
	}
	if int64(len(body)) > limit {
		return false, fmt.Errorf("%w (over %d bytes)", ErrTooLarge, limit)
	}
	html := isHTML(resp.Header.Get("Content-Type"), body)
	if resp.StatusCode != http.StatusOK {
		detail := resp.Status
		if html {
			detail += ", an HTML page" + titleOf(body)
		}
		retry := resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
		return retry, fmt.Errorf("%w: %s", ErrStatus, detail)
	}
	if html {
		return false, fmt.Errorf("%w (status %s%s)", ErrHTML, resp.Status, titleOf(body))
	}
	return decodeJSON(body, v)
}

// transportError classifies an error of sending a request or reading its answer: the caller's
// own cancellation is final; a timeout of the attempt, a refused or cut connection may pass.
func transportError(ctx, actx context.Context, timeout time.Duration, op string, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, fmt.Errorf("%s: %w", op, ctx.Err())
	}
	if errors.Is(actx.Err(), context.DeadlineExceeded) {
		return true, fmt.Errorf("%w: %s: no complete answer within %s", ErrTimeout, op, timeout)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return true, fmt.Errorf("%w: %s: the connection closed mid-answer", ErrTruncated, op)
	}
	return true, fmt.Errorf("%s: %w", op, err)
}

// decodeJSON decodes body, which must be exactly one JSON value, into v.
func decodeJSON(body []byte, v any) (retry bool, err error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return true, fmt.Errorf("%w: the answer is empty", ErrTruncated)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			return true, fmt.Errorf("%w: it ends after %d bytes", ErrTruncated, len(body))
		case errors.As(err, &syn):
			return false, fmt.Errorf("%w: syntax error at byte %d: %v", ErrInvalidJSON, syn.Offset, syn)
		case errors.As(err, &typ):
			return false, fmt.Errorf("%w: %s where %s was expected (field %q, byte %d)", ErrInvalidJSON, typ.Value, typ.Type, typ.Field, typ.Offset)
		default:
			return false, fmt.Errorf("%w: %v", ErrInvalidJSON, err)
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("%w: data after the JSON value", ErrInvalidJSON)
	}
	return false, nil
}

// isHTML reports whether an answer is an HTML page: by its type, or by its first character
// when the SIS labels an error page as JSON.
func isHTML(contentType string, body []byte) bool {
	if mt, _, err := mime.ParseMediaType(contentType); err == nil && (mt == "text/html" || mt == "application/xhtml+xml") {
		return true
	}
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] == '<'
}

var titleRE = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)

// titleOf returns `, titled "…"` for an HTML page with a title, and "" otherwise.
func titleOf(body []byte) string {
	m := titleRE.FindSubmatch(body)
	if m == nil {
		return ""
	}
	t := strings.Join(strings.Fields(string(m[1])), " ")
	if len(t) > 120 {
		t = t[:120] + "…"
	}
	if t == "" {
		return ""
	}
	return fmt.Sprintf(", titled %q", t)
}
