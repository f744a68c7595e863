package api

import "net/http"

// notImplemented answers 501 for a route whose handler is still being written.
func notImplemented() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotImplemented, "not_implemented", "Not implemented yet.")
	})
}
