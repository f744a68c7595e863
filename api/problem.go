package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	cg "github.com/commongrounds/commongrounds"
)

// Codes of the HTTP side alone; their statuses are in the one table of codes (cg.HTTPStatus).
const (
	eUnsupportedMedia = cg.EUNSUPPORTEDMEDIA
	eRequestTimeout   = cg.EREQUESTTIMEOUT
)

// problem is an RFC 9457 problem details object with the machine-readable code of the contract.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail,omitempty"`
}

// writeProblem writes a problem+json reply with the given status and code.
func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Code: code, Detail: detail})
}

// writeError writes err as a problem. Application errors show their code and message; any other
// error is logged and shown as a bare internal error.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := cg.ErrorCode(err)
	status := cg.HTTPStatus(code)
	switch code {
	case cg.EINTERNAL:
		s.logger.ErrorContext(r.Context(), "internal error", "method", r.Method, "path", r.URL.Path, "err", err)
	case cg.EUNAVAILABLE:
		s.logger.WarnContext(r.Context(), "unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if code == eRequestTimeout {
		// The rest of the body may still come; the connection cannot serve another request.
		w.Header().Set("Connection", "close")
	}
	var appErr *cg.Error
	if errors.As(err, &appErr) && appErr.RetryAfterMs > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt((appErr.RetryAfterMs+999)/1000, 10))
	}
	writeProblem(w, status, code, cg.ErrorMessage(err))
}

// writeJSON writes v as a JSON reply with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		slog.Debug("write reply", "err", err)
	}
}

// decode reads the JSON body of r into v. It answers 415 for a body not declared as
// application/json (a browser sends text/plain, form and multipart bodies to another site
// without asking it first), 413 for a body over the limit (set by the body-limit middleware),
// 408 for one that did not arrive in time, and 400 invalid_json for anything that is not one
// JSON object of the expected shape: unknown fields, names in another case than the contract's,
// a name given twice, text that is not valid UTF-8 and escaped lone surrogates included
// (encoding/json/v2 semantics, where encoding/json matches names in any case and stores such
// text as U+FFFD).
func decode(r *http.Request, v any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return cg.Errorf(eUnsupportedMedia, "The body must be JSON, sent with Content-Type: application/json.")
	}
	if err := jsonv2.UnmarshalRead(r.Body, v, jsonv2.RejectUnknownMembers(true)); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return cg.Errorf(cg.ETOOLARGE, "The body is larger than %d bytes.", tooLarge.Limit)
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return cg.Errorf(eRequestTimeout, "The body did not arrive in time.")
		}
		if errors.Is(err, io.ErrUnexpectedEOF) && r.ContentLength == 0 {
			return cg.Errorf(cg.EINVALIDJSON, "The body is empty; a JSON object is expected.")
		}
		return cg.Errorf(cg.EINVALIDJSON, "The body is not valid JSON of the expected shape: %s", jsonErrorDetail(err))
	}
	return nil
}

// jsonErrorDetail describes a decoding error without echoing the body.
func jsonErrorDetail(err error) string {
	var syn *jsontext.SyntacticError
	var sem *jsonv2.SemanticError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("invalid JSON or text that is not valid UTF-8 at byte %d", syn.ByteOffset)
	case errors.As(err, &sem) && errors.Is(sem.Err, jsonv2.ErrUnknownName):
		return "an unknown field (names are lower-case snake_case, exactly as documented)"
	case errors.As(err, &sem) && sem.JSONPointer != "":
		return fmt.Sprintf("field %q has the wrong type", strings.TrimPrefix(string(sem.JSONPointer), "/"))
	case errors.As(err, &sem):
		return "a JSON object is expected"
	default:
		return "unexpected input"
	}
}
