package api

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/persistence"
)

// friendRequestJSON is a friend request as the API shows it: User is the other user.
type friendRequestJSON struct {
	ID        string        `json:"id"`
	User      cg.PublicUser `json:"user"`
	Status    string        `json:"status"`
	CreatedAt time.Time     `json:"created_at"`
}

func toRequestJSON(r *persistence.FriendRequest) friendRequestJSON {
	return friendRequestJSON{ID: r.ID, User: r.User, Status: r.Status, CreatedAt: r.CreatedAt.UTC()}
}

// friendJSON is a friend: the user as others see it, and since when the two are friends.
type friendJSON struct {
	cg.PublicUser
	Since time.Time `json:"since"`
}

// suggestionJSON is a user the caller may know.
type suggestionJSON struct {
	User          cg.PublicUser `json:"user"`
	SharedClasses int           `json:"shared_classes"`
	InContacts    bool          `json:"in_contacts"`
}

// handleFriendRequest sends a friend request to the user named by exactly one of email,
// computing_id or user_id: 201 with the pending request, or 200 with status ACCEPTED when that
// user had already asked the caller. A user named by email or computing_id gets 202
// {"status":"requested"} instead of 201, and so does a name that no account has, one of a user
// who blocks the caller or whom the caller blocks (nothing is created for those), and a repeated
// request: the answer does not tell whether an address has an account. Requests count against
// FriendRequestRate.
func (s *Server) handleFriendRequest() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Email       *string `json:"email"`
			ComputingID *string `json:"computing_id"`
			UserID      *string `json:"user_id"`
		}
		if err := decode(r, &body); err != nil {
			s.writeError(w, r, err)
			return
		}
		given := 0
		for _, p := range []*string{body.Email, body.ComputingID, body.UserID} {
			if p != nil && strings.TrimSpace(*p) != "" {
				given++
			}
		}
		if given != 1 {
			s.writeError(w, r, cg.Errorf(cg.EINVALID, "Name the user with exactly one of email, computing_id or user_id."))
			return
		}
		ctx, me := r.Context(), sessionOf(r).UserID
		if err := s.Quotas.Allow(ctx, me, "friend-request", 1, s.FriendRequestRate); err != nil {
			s.writeError(w, r, err)
			return
		}
		byName := body.UserID == nil || strings.TrimSpace(*body.UserID) == ""
		var target cg.UserID
		if !byName {
			target = cg.UserID(strings.ToLower(strings.TrimSpace(*body.UserID)))
		} else {
			var u *cg.User
			var err error
			if body.Email != nil && strings.TrimSpace(*body.Email) != "" {
				u, err = s.Users.FindUserByEmail(ctx, strings.ToLower(strings.TrimSpace(*body.Email)))
			} else {
				u, err = s.Users.FindUserByComputingID(ctx, strings.ToLower(strings.TrimSpace(*body.ComputingID)))
			}
			if errors.Is(err, cg.ErrUserNotFound) {
				writeJSON(w, http.StatusAccepted, map[string]string{"status": "requested"})
				return
			}
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			target = u.ID
		}
		req, accepted, err := s.Friends.RequestFriend(ctx, me, target)
		if byName && errors.Is(err, cg.ErrConflict) {
			// Asking again is answered as the first time, unless the two are friends (then
			// the caller knows the account already).
			friends, ferr := s.Friends.AreFriends(ctx, me, target)
			if ferr != nil {
				s.writeError(w, r, ferr)
				return
			}
			if !friends {
				err = nil
			}
		}
		switch {
		case byName && errors.Is(err, cg.ErrBlocked), byName && err == nil && !accepted:
			writeJSON(w, http.StatusAccepted, map[string]string{"status": "requested"})
		case err != nil:
			s.writeError(w, r, err)
		case accepted:
			writeJSON(w, http.StatusOK, toRequestJSON(req))
		default:
			writeJSON(w, http.StatusCreated, toRequestJSON(req))
		}
	})
}

// handleListFriendRequests lists the caller's incoming (default) or outgoing friend requests.
func (s *Server) handleListFriendRequests() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var incoming bool
		switch r.URL.Query().Get("direction") {
		case "", "incoming":
			incoming = true
		case "outgoing":
		default:
			s.writeError(w, r, cg.Errorf(cg.EINVALID, "direction must be incoming or outgoing."))
			return
		}
		reqs, err := s.Friends.ListFriendRequests(r.Context(), sessionOf(r).UserID, incoming)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out := make([]friendRequestJSON, len(reqs))
		for i, req := range reqs {
			out[i] = toRequestJSON(req)
		}
		writeJSON(w, http.StatusOK, map[string]any{"requests": out})
	})
}

// handleAnswerFriendRequest accepts or rejects a friend request addressed to the caller.
func (s *Server) handleAnswerFriendRequest(accept bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := s.Friends.AnswerFriendRequest(r.Context(), sessionOf(r).UserID, mux.Vars(r)["id"], accept)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, toRequestJSON(req))
	})
}

// handleListFriends lists the caller's friends.
func (s *Server) handleListFriends() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		friends, err := s.Friends.ListFriends(r.Context(), sessionOf(r).UserID)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out := make([]friendJSON, len(friends))
		for i, f := range friends {
			out[i] = friendJSON{PublicUser: f.PublicUser, Since: f.Since.UTC()}
		}
		writeJSON(w, http.StatusOK, map[string]any{"friends": out})
	})
}

// handleFriendSuggestions lists users the caller may know, most shared classes first.
func (s *Server) handleFriendSuggestions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, err := parseLimit(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if limit == 0 {
			limit = persistence.DefaultLimit
		}
		sugs, err := s.Friends.Suggestions(r.Context(), sessionOf(r).UserID, limit, s.Rooms.Anonymity())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out := make([]suggestionJSON, len(sugs))
		for i, sg := range sugs {
			out[i] = suggestionJSON{User: sg.User, SharedClasses: sg.SharedClasses, InContacts: sg.InContacts}
		}
		writeJSON(w, http.StatusOK, map[string]any{"suggestions": out})
	})
}

// handleUnfriend ends a friendship, or withdraws the caller's pending request.
func (s *Server) handleUnfriend() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.Friends.Unfriend(r.Context(), sessionOf(r).UserID, cg.UserID(mux.Vars(r)["user_id"])); err != nil {
			s.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// handleCommonClasses lists the classes the caller shares with a friend.
func (s *Server) handleCommonClasses() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		classes, err := s.Friends.CommonClasses(r.Context(), sessionOf(r).UserID, cg.UserID(mux.Vars(r)["user_id"]), s.Rooms.Anonymity())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"classes": classes})
	})
}

// handleListBlocked lists the users the caller blocked.
func (s *Server) handleListBlocked() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		blocked, err := s.Friends.ListBlocked(r.Context(), sessionOf(r).UserID)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out := make([]friendJSON, len(blocked))
		for i, f := range blocked {
			out[i] = friendJSON{PublicUser: f.PublicUser, Since: f.Since.UTC()}
		}
		writeJSON(w, http.StatusOK, map[string]any{"blocked": out})
	})
}

// handleBlock blocks or unblocks a user.
func (s *Server) handleBlock(block bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		me, other := sessionOf(r).UserID, cg.UserID(mux.Vars(r)["user_id"])
		var err error
		if block {
			err = s.Friends.Block(r.Context(), me, other)
		} else {
			err = s.Friends.Unblock(r.Context(), me, other)
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
