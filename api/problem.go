package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"

	cg "github.com/commongrounds/commongrounds"
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

// decode reads the JSON body of r into v. It answers 413 for a body over the limit (set by the
// body-limit middleware), 415 for a body declared as something other than JSON, and 400
// invalid_json for anything that is not one JSON object of the expected shape. An empty body
// decodes as {} when allowEmpty is true.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && mt != "text/plain") {
			return cg.Errorf(cg.EINVALIDJSON, "The body must be JSON (Content-Type: application/json).")
		}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return cg.Errorf(cg.ETOOLARGE, "The body is larger than %d bytes.", tooLarge.Limit)
		}
		if errors.Is(err, io.EOF) {
			return cg.Errorf(cg.EINVALIDJSON, "The body is empty; a JSON object is expected.")
		}
		return cg.Errorf(cg.EINVALIDJSON, "The body is not valid JSON of the expected shape: %s", jsonErrorDetail(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return cg.Errorf(cg.ETOOLARGE, "The body is larger than %d bytes.", tooLarge.Limit)
		}
		return cg.Errorf(cg.EINVALIDJSON, "The body has data after the JSON object.")
	}
	return nil
}

// jsonErrorDetail describes a decoding error without echoing the body.
func jsonErrorDetail(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type", typ.Field)
	default:
		return "unexpected input"
	}
}
