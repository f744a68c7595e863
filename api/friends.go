package api

import "net/http"

// TODO(stub): replaced by the real handler.
func (s *Server) handleFriendRequest() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleListFriendRequests() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleAnswerFriendRequest(accept bool) http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleListFriends() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleFriendSuggestions() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleUnfriend() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleCommonClasses() http.Handler { return notImplemented() }

// TODO(stub): replaced by the real handler.
func (s *Server) handleBlock(block bool) http.Handler { return notImplemented() }
