package api

import "github.com/gorilla/mux"

// Router returns the server's route table, for the test that every route is in openapi.yaml.
func (s *Server) Router() *mux.Router { return s.routes().(*mux.Router) }
