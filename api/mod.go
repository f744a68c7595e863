package api

import "net/http"

// TODO(stub): replaced by the real handler.
func (s *Server) handleFlagged() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleHide(hide bool) http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleRevealAuthor() http.Handler { return notImplemented() }
