package api

import "net/http"

// TODO(stub): replaced by the real handler.
func (s *Server) handleVerifyPage() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleMagicLink() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleVerify() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleLogout() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleWSTicket() http.Handler { return notImplemented() }
