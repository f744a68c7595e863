package api

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3.1 document of every route (openapi.yaml), served at
// /api/v1/openapi.yaml. The API tests hold the server to it.
//
//go:embed openapi.yaml
var OpenAPI []byte

// handleOpenAPI serves the document.
func (s *Server) handleOpenAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(OpenAPI)
	})
}
