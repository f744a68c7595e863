package api

import (
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	cg "github.com/commongrounds/commongrounds"
)

// listLimit reads ?limit= (default 50, at most 200).
func listLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 50, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 200 {
		return 0, cg.Errorf(cg.EINVALIDLIMIT, "limit must be a whole number from 1 to 200.")
	}
	return n, nil
}

// seqParam reads an optional non-negative seq query parameter.
func seqParam(r *http.Request, name string) (*int64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return nil, cg.Errorf(cg.EINVALID, "%s must be a whole number of at least 0.", name)
	}
	return &n, nil
}

// classParam returns the class id of the path; a malformed one is an unknown class.
func classParam(r *http.Request) (cg.ClassID, error) {
	id := mux.Vars(r)["id"]
	if !cg.ValidUUID(id) {
		return "", cg.ErrClassNotFound
	}
	return cg.ClassID(id), nil
}

func (s *Server) handleListMessages() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		class, err := classParam(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var f cg.MessageFilter
		if f.Limit, err = listLimit(r); err == nil {
			if f.AfterSeq, err = seqParam(r, "after_seq"); err == nil {
				f.BeforeSeq, err = seqParam(r, "before_seq")
			}
		}
		if err == nil && f.AfterSeq != nil && f.BeforeSeq != nil {
			err = cg.Errorf(cg.EINVALID, "Give after_seq or before_seq, not both.")
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		page, err := s.Rooms.History(r.Context(), sessionOf(r).UserID, class, f)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if page.Messages == nil {
			page.Messages = []*cg.Message{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"messages": page.Messages, "last_seq": page.LastSeq})
	})
}

func (s *Server) handleThread() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		class, err := classParam(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		root, replies, err := s.Rooms.Thread(r.Context(), sessionOf(r).UserID, class, cg.MessageID(mux.Vars(r)["message_id"]))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if replies == nil {
			replies = []*cg.Message{}
		}
		writeJSON(w, http.StatusOK, map[string]any{"root": root, "replies": replies})
	})
}

func (s *Server) handlePostMessage() http.Handler {
	type request struct {
		Content     *string       `json:"content"`
		ParentID    *cg.MessageID `json:"parent_id"`
		ClientMsgID *string       `json:"client_msg_id"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		class, err := classParam(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var req request
		if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		if req.Content == nil {
			s.writeError(w, r, cg.Errorf(cg.EINVALIDCONTENT, "content is required."))
			return
		}
		var clientMsgID string
		if req.ClientMsgID != nil {
			clientMsgID = *req.ClientMsgID
		}
		msg, err := s.Rooms.Publish(r.Context(), sessionOf(r).UserID, class, *req.Content, req.ParentID, clientMsgID, nil)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusCreated, msg)
	})
}

func (s *Server) handleFlag() http.Handler {
	type request struct {
		Reason *string `json:"reason"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if r.ContentLength != 0 {
			if err := decode(r, &req); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		reason := ""
		if req.Reason != nil {
			reason = *req.Reason
			if !cg.StorableText(reason) || len([]rune(reason)) > 500 {
				s.writeError(w, r, cg.Errorf(cg.EINVALID, "reason is UTF-8 text of at most 500 characters, without NUL."))
				return
			}
		}
		if err := s.Rooms.Flag(r.Context(), sessionOf(r).UserID, cg.MessageID(mux.Vars(r)["id"]), reason); err != nil {
			s.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

func (s *Server) handleEditMessage() http.Handler {
	type request struct {
		Content *string `json:"content"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		if req.Content == nil {
			s.writeError(w, r, cg.Errorf(cg.EINVALIDCONTENT, "content is required."))
			return
		}
		msg, err := s.Rooms.Edit(r.Context(), sessionOf(r).UserID, cg.MessageID(mux.Vars(r)["id"]), *req.Content)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, msg)
	})
}

func (s *Server) handleDeleteMessage() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.Rooms.Delete(r.Context(), sessionOf(r).UserID, cg.MessageID(mux.Vars(r)["id"])); err != nil {
			s.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
