package api

import (
	"net/http"

	"github.com/gorilla/mux"

	cg "github.com/commongrounds/commongrounds"
)

func (s *Server) handleFlagged() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, err := listLimit(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		msgs, next, err := s.Rooms.ListFlagged(r.Context(), limit, r.URL.Query().Get("cursor"))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if msgs == nil {
			msgs = []*cg.FlaggedMessage{}
		}
		var nextCursor *string
		if next != "" {
			nextCursor = &next
		}
		writeJSON(w, http.StatusOK, map[string]any{"messages": msgs, "next_cursor": nextCursor})
	})
}

func (s *Server) handleHide(hide bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.Rooms.SetHidden(r.Context(), sessionOf(r).UserID, cg.MessageID(mux.Vars(r)["id"]), hide); err != nil {
			s.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) handleRevealAuthor() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reason := r.URL.Query().Get("reason")
		if !cg.StorableText(reason) || len([]rune(reason)) > 500 {
			s.writeError(w, r, cg.Errorf(cg.EINVALID, "reason is UTF-8 text of at most 500 characters, without NUL."))
			return
		}
		u, err := s.Rooms.RevealAuthor(r.Context(), sessionOf(r).UserID, cg.MessageID(mux.Vars(r)["id"]), reason)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"user": u})
	})
}

func (s *Server) handleVersions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		vs, err := s.Rooms.Versions(r.Context(), cg.MessageID(mux.Vars(r)["id"]))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"versions": vs})
	})
}
