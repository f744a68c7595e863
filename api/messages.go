package api

import "net/http"

// TODO(stub): replaced by the real handler.
func (s *Server) handleListMessages() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleThread() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handlePostMessage() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleFlag() http.Handler { return notImplemented() }
