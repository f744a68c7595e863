package api

import (
	"net/http"

	"github.com/gorilla/mux"

	cg "github.com/commongrounds/commongrounds"
)

// handleMarkRead moves the caller's read marker in a class's room forward; the caller's sockets
// hear of it.
func (s *Server) handleMarkRead() http.Handler {
	type request struct {
		Seq *int64 `json:"seq"`
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
		if req.Seq == nil || *req.Seq < 0 {
			s.writeError(w, r, cg.Errorf(cg.EINVALID, "seq must be a whole number of at least 0."))
			return
		}
		seq, err := s.Rooms.MarkRead(r.Context(), sessionOf(r).UserID, class, *req.Seq, "")
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, cg.ReadMarker{Room: class, Seq: seq})
	})
}

// handleListNotifications returns a page of the caller's inbox, newest first.
func (s *Server) handleListNotifications() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, err := listLimit(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		page, next, unread, err := s.Notifications.ListNotifications(r.Context(), sessionOf(r).UserID,
			cg.NotificationFilter{Limit: limit, Cursor: r.URL.Query().Get("cursor")})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if page == nil {
			page = []*cg.Notification{}
		}
		var cursor *string
		if next != "" {
			cursor = &next
		}
		writeJSON(w, http.StatusOK, map[string]any{"notifications": page, "unread": unread, "next_cursor": cursor})
	})
}

// handleReadNotification marks one of the caller's notifications read.
func (s *Server) handleReadNotification() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := cg.NotificationID(mux.Vars(r)["id"])
		if err := s.Notifications.MarkNotificationRead(r.Context(), sessionOf(r).UserID, id); err != nil {
			s.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleReadAllNotifications marks every notification of the caller read.
func (s *Server) handleReadAllNotifications() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := s.Notifications.MarkAllNotificationsRead(r.Context(), sessionOf(r).UserID)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int64{"marked": n})
	})
}

// muteRequest names a room or a thread, exactly one.
type muteRequest struct {
	Room     *string `json:"room"`
	ThreadID *string `json:"thread_id"`
}

// target returns the room or thread of the request, or an invalid_mute error.
func (m muteRequest) target() (cg.ClassID, cg.MessageID, error) {
	switch {
	case (m.Room == nil) == (m.ThreadID == nil):
		return "", "", cg.Errorf(eInvalidMute, "Give either room or thread_id.")
	case m.Room != nil:
		if !cg.ValidUUID(*m.Room) {
			return "", "", cg.Errorf(cg.ECLASSNOTFOUND, "No such class.")
		}
		return cg.ClassID(*m.Room), "", nil
	default:
		if !cg.ValidUUID(*m.ThreadID) {
			return "", "", cg.Errorf(cg.ENOTFOUND, "No such thread.")
		}
		return "", cg.MessageID(*m.ThreadID), nil
	}
}

// eInvalidMute is a mute that names neither a room nor a thread, or both.
const eInvalidMute = "invalid_mute"

// handleMute mutes a room or a thread for the caller.
func (s *Server) handleMute() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req muteRequest
		if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		room, thread, err := req.target()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		m, err := s.Notifications.Mute(r.Context(), sessionOf(r).UserID, room, thread)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, m)
	})
}

// handleUnmute lifts a mute of a room or a thread, named in the body or the query.
func (s *Server) handleUnmute() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req muteRequest
		q := r.URL.Query()
		if q.Has("room") || q.Has("thread_id") {
			if q.Has("room") {
				req.Room = new(string)
				*req.Room = q.Get("room")
			}
			if q.Has("thread_id") {
				req.ThreadID = new(string)
				*req.ThreadID = q.Get("thread_id")
			}
		} else if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		room, thread, err := req.target()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.Notifications.Unmute(r.Context(), sessionOf(r).UserID, room, thread); err != nil {
			s.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleListMutes lists the caller's mutes, newest first.
func (s *Server) handleListMutes() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mutes, err := s.Notifications.ListMutes(r.Context(), sessionOf(r).UserID)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"mutes": mutes})
	})
}
