package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/persistence"
)

// maxQueryLen bounds the free-text class search.
const maxQueryLen = 200

// classDetail is a class with the number of users enrolled in it: exact from the anonymity
// threshold k up; below it EnrolledCount is null and EnrolledFewerThan is k, so that the count
// cannot tell who enrolled or dropped.
type classDetail struct {
	*cg.Class
	EnrolledCount     *int `json:"enrolled_count"`
	EnrolledFewerThan int  `json:"enrolled_fewer_than,omitempty"`
}

// parseLimit reads the limit query parameter: 0 when absent (the store's default applies),
// invalid_limit when it is not a whole number from 1 to persistence.MaxLimit.
func parseLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > persistence.MaxLimit {
		return 0, cg.Errorf(cg.EINVALIDLIMIT, "limit must be a whole number from 1 to %d.", persistence.MaxLimit)
	}
	return n, nil
}

// ClassReader reads classes for search and details: a *persistence.ClassStore, or a
// *persistence.ReadClasses that may read a replica.
type ClassReader interface {
	ListClasses(ctx context.Context, f persistence.ClassFilter) ([]*cg.Class, string, error)
	FindClassWithCount(ctx context.Context, id cg.ClassID) (*cg.Class, int, error)
}

// handleListClasses searches classes by term, subject, catalog number and free text, one page
// at a time.
func (s *Server) handleListClasses() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, err := parseLimit(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		f := persistence.ClassFilter{
			Term:          q.Get("term"),
			Subject:       q.Get("subject"),
			CatalogNumber: q.Get("catalog_number"),
			Query:         q.Get("q"),
			Cursor:        q.Get("cursor"),
			Limit:         limit,
		}
		for name, v := range map[string]string{"term": f.Term, "subject": f.Subject, "catalog_number": f.CatalogNumber, "q": f.Query} {
			if len(v) > maxQueryLen {
				s.writeError(w, r, cg.Errorf(cg.EINVALID, "%s is longer than %d bytes.", name, maxQueryLen))
				return
			}
			if !cg.StorableText(v) {
				s.writeError(w, r, cg.Errorf(cg.EINVALID, "%s must be UTF-8 text without NUL.", name))
				return
			}
		}
		classes, next, err := s.ClassReads.ListClasses(r.Context(), f)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		var nextCursor *string
		if next != "" {
			nextCursor = &next
		}
		writeJSON(w, http.StatusOK, map[string]any{"classes": classes, "next_cursor": nextCursor})
	})
}

// handleGetClass returns a class with its enrollment count.
func (s *Server) handleGetClass() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, n, err := s.ClassReads.FindClassWithCount(r.Context(), cg.ClassID(mux.Vars(r)["id"]))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		d := classDetail{Class: c}
		if k := s.Rooms.Anonymity(); n < k {
			d.EnrolledFewerThan = k
		} else {
			d.EnrolledCount = &n
		}
		writeJSON(w, http.StatusOK, d)
	})
}

// handleMyClasses lists the caller's classes.
func (s *Server) handleMyClasses() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		classes, err := s.Enrollments.ListUserClasses(r.Context(), sessionOf(r).UserID)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"classes": classes})
	})
}

// handleEnroll enrolls the caller in a class: 201 with the class, or 200 if already enrolled.
// Enrolling and dropping count against the caller's EnrollRate, so that probing classes by
// enrolling in them is slow.
func (s *Server) handleEnroll() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ClassID string `json:"class_id"`
		}
		if err := decode(r, &body); err != nil {
			s.writeError(w, r, err)
			return
		}
		id := cg.ClassID(strings.TrimSpace(body.ClassID))
		if id == "" {
			s.writeError(w, r, cg.Errorf(cg.EINVALID, "class_id is required."))
			return
		}
		if err := s.Quotas.Allow(r.Context(), sessionOf(r).UserID, "enroll", 1, s.EnrollRate); err != nil {
			s.writeError(w, r, err)
			return
		}
		created, err := s.Enrollments.Enroll(r.Context(), sessionOf(r).UserID, id)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		c, err := s.Classes.FindClassByID(r.Context(), id)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		writeJSON(w, status, c)
	})
}

// handleDrop ends the caller's enrollment in a class; dropping a class one is not in is 204 too.
func (s *Server) handleDrop() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, class := sessionOf(r).UserID, cg.ClassID(mux.Vars(r)["class_id"])
		if err := s.Quotas.Allow(r.Context(), user, "enroll", 1, s.EnrollRate); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.Enrollments.Drop(r.Context(), user, class); err != nil {
			s.writeError(w, r, err)
			return
		}
		if s.Leaver != nil && cg.ValidUUID(string(class)) {
			// The drop is committed; a failure here only delays the end of live delivery
			// until the broker is back (other instances keep the subscription meanwhile).
			if err := s.Leaver.LeaveRoom(r.Context(), user, class); err != nil {
				s.logger.WarnContext(r.Context(), "leave room", "err", err)
			}
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleClassFriends lists the caller's friends enrolled in a class; none in a class below the
// anonymity threshold.
func (s *Server) handleClassFriends() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		friends, err := s.Friends.FriendsInClass(r.Context(), sessionOf(r).UserID, cg.ClassID(mux.Vars(r)["id"]), s.Rooms.Anonymity())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"friends": friends})
	})
}
