package api

import "net/http"

// TODO(stub): replaced by the real handler.
func (s *Server) handleListClasses() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleGetClass() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleMyClasses() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleEnroll() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleDrop() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleClassFriends() http.Handler { return notImplemented() }
