package api

import "net/http"

// TODO(stub): replaced by the real handler.
func (s *Server) handleGetMe() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleDeleteMe() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handlePhone() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handlePhoneVerify() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleContacts() http.Handler { return notImplemented() }
