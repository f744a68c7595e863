package api

import (
	"net/http"
	"time"

	cg "github.com/commongrounds/commongrounds"

	"github.com/commongrounds/commongrounds/persistence"
)

// handleGetMe returns the caller's account.
func (s *Server) handleGetMe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, err := s.Users.FindUserByID(r.Context(), sessionOf(r).UserID)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, u)
	})
}

// handleDeleteMe deletes the caller's account and everything it owns, and has its sockets
// closed. Its messages keep their content and pseudonym and lose the link to the account, so that
// nothing other students see changes; with ?erase_messages=true each of them is also erased at
// an independent random time within EraseSpread.
func (s *Server) handleDeleteMe() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user := sessionOf(r).UserID
		var spread time.Duration
		switch r.URL.Query().Get("erase_messages") {
		case "", "false":
		case "true":
			spread = s.EraseSpread
		default:
			s.writeError(w, r, cg.Errorf(cg.EINVALID, "erase_messages must be true or false."))
			return
		}
		if err := s.Users.DeleteUser(r.Context(), user, spread); err != nil {
			s.writeError(w, r, err)
			return
		}
		if s.Revoker != nil {
			// The account is gone already: its sessions no longer authenticate anywhere.
			if err := s.Revoker.RevokeUser(r.Context(), user); err != nil {
				s.logger.ErrorContext(r.Context(), "revoke user sockets", "err", err)
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNoContent)
	})
}

// handlePhone sends a verification code to a phone number.
func (s *Server) handlePhone() http.Handler {
	type request struct {
		Phone string `json:"phone"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.Phones.StartVerification(r.Context(), sessionOf(r).UserID, req.Phone); err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "sent"})
	})
}

// handlePhoneVerify checks a verification code and marks the number verified.
func (s *Server) handlePhoneVerify() http.Handler {
	type request struct {
		Code string `json:"code"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.Phones.Verify(r.Context(), sessionOf(r).UserID, req.Code); err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"phone_verified": true})
	})
}

// handleContacts finds the users with a verified number among the caller's contacts.
func (s *Server) handleContacts() http.Handler {
	type request struct {
		Phones []string `json:"phones"`
	}
	type reply struct {
		Matches []persistence.ContactMatch `json:"matches"`
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
		user := sessionOf(r).UserID
		hashes, err := s.Phones.ContactHashes(r.Context(), user, req.Phones)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		matches, err := s.PhoneStore.ImportContacts(r.Context(), user, hashes)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, reply{Matches: matches})
	})
}
