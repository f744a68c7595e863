package api

import (
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/web"
)

// routes is the whole route table.
func (s *Server) routes() http.Handler {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, cg.HTTPStatus(cg.ENOTFOUND), cg.ENOTFOUND, "No such route.")
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, cg.HTTPStatus(cg.EMETHODNOTALLOWED), cg.EMETHODNOTALLOWED, "This route does not take "+r.Method+".")
	})

	// handle registers a route; API routes take OPTIONS too, for CORS preflight.
	handle := func(method, path, name string, h http.Handler) {
		methods := []string{method}
		if strings.HasPrefix(path, "/api/v1/") {
			methods = append(methods, http.MethodOptions)
		}
		r.Handle(path, s.instrument(name, h)).Methods(methods...)
	}
	public := func(h http.Handler) http.Handler { return s.cors(h) }
	private := func(h http.Handler) http.Handler { return s.cors(s.requireSession(h)) }
	moderator := func(h http.Handler) http.Handler { return s.cors(s.requireModerator(h)) }

	// Operations. /metrics is served on a listener of its own (METRICS_ADDR), not here.
	handle("GET", "/healthz", "healthz", s.handleHealthz())
	handle("GET", "/readyz", "readyz", s.handleReadyz())

	// The page a magic link opens: it confirms the sign-in with a POST (a GET never uses a token).
	handle("GET", "/auth/verify", "verify_page", s.handleVerifyPage())

	// What the browser client learns before signing in.
	handle("GET", "/api/v1/config", "config", public(s.handleConfig()))

	// This API as an OpenAPI document.
	handle("GET", "/api/v1/openapi.yaml", "openapi", public(s.handleOpenAPI()))

	// Auth.
	handle("POST", "/api/v1/auth/magic-link", "magic_link", public(s.handleMagicLink()))
	handle("POST", "/api/v1/auth/verify", "verify", public(s.handleVerify()))
	handle("POST", "/api/v1/auth/logout", "logout", private(s.handleLogout()))
	handle("POST", "/api/v1/auth/ws-ticket", "ws_ticket", private(s.handleWSTicket()))

	// Me.
	handle("GET", "/api/v1/me", "me", private(s.handleGetMe()))
	handle("DELETE", "/api/v1/me", "delete_me", private(s.handleDeleteMe()))
	handle("POST", "/api/v1/me/phone", "phone", private(s.handlePhone()))
	handle("POST", "/api/v1/me/phone/verify", "phone_verify", private(s.handlePhoneVerify()))
	handle("POST", "/api/v1/me/contacts", "contacts", private(s.handleContacts()))

	// Notifications and mutes.
	handle("GET", "/api/v1/me/notifications", "notifications", private(s.handleListNotifications()))
	handle("POST", "/api/v1/me/notifications/read", "notifications_read", private(s.handleReadAllNotifications()))
	handle("POST", "/api/v1/me/notifications/{id}/read", "notification_read", private(s.handleReadNotification()))
	handle("GET", "/api/v1/me/mutes", "mutes", private(s.handleListMutes()))
	handle("POST", "/api/v1/me/mutes", "mute", private(s.handleMute()))
	handle("DELETE", "/api/v1/me/mutes", "unmute", private(s.handleUnmute()))
	// Web Push.
	handle("GET", "/api/v1/push/key", "push_key", public(s.handlePushKey()))
	handle("GET", "/api/v1/me/push-subscriptions", "push_subscriptions", private(s.handleListPushSubscriptions()))
	handle("POST", "/api/v1/me/push-subscriptions", "push_subscribe", private(s.handleSavePushSubscription()))
	handle("DELETE", "/api/v1/me/push-subscriptions", "push_unsubscribe", private(s.handleDeletePushSubscription()))

	// Classes and enrollment.
	handle("GET", "/api/v1/classes", "classes", private(s.handleListClasses()))
	handle("GET", "/api/v1/classes/{id}", "class", private(s.handleGetClass()))
	handle("GET", "/api/v1/me/classes", "my_classes", private(s.handleMyClasses()))
	handle("POST", "/api/v1/me/classes", "enroll", private(s.handleEnroll()))
	handle("DELETE", "/api/v1/me/classes/{class_id}", "drop", private(s.handleDrop()))
	handle("GET", "/api/v1/classes/{id}/friends", "class_friends", private(s.handleClassFriends()))
	handle("PUT", "/api/v1/classes/{id}/read", "mark_read", private(s.handleMarkRead()))

	// Friends.
	handle("POST", "/api/v1/friends/requests", "friend_request", private(s.handleFriendRequest()))
	handle("GET", "/api/v1/friends/requests", "friend_requests", private(s.handleListFriendRequests()))
	handle("POST", "/api/v1/friends/requests/{id}/accept", "friend_accept", private(s.handleAnswerFriendRequest(true)))
	handle("POST", "/api/v1/friends/requests/{id}/reject", "friend_reject", private(s.handleAnswerFriendRequest(false)))
	handle("GET", "/api/v1/friends", "friends", private(s.handleListFriends()))
	handle("GET", "/api/v1/friends/suggestions", "friend_suggestions", private(s.handleFriendSuggestions()))
	handle("DELETE", "/api/v1/friends/{user_id}", "unfriend", private(s.handleUnfriend()))
	handle("GET", "/api/v1/friends/{user_id}/common-classes", "common_classes", private(s.handleCommonClasses()))
	handle("GET", "/api/v1/me/blocks", "blocked", private(s.handleListBlocked()))
	handle("POST", "/api/v1/users/{user_id}/block", "block", private(s.handleBlock(true)))
	handle("DELETE", "/api/v1/users/{user_id}/block", "unblock", private(s.handleBlock(false)))

	// Messages.
	handle("GET", "/api/v1/classes/{id}/messages", "messages", private(s.handleListMessages()))
	handle("GET", "/api/v1/classes/{id}/messages/{message_id}/thread", "thread", private(s.handleThread()))
	handle("POST", "/api/v1/classes/{id}/messages", "post_message", private(s.handlePostMessage()))
	handle("PATCH", "/api/v1/messages/{id}", "edit_message", private(s.handleEditMessage()))
	handle("DELETE", "/api/v1/messages/{id}", "delete_message", private(s.handleDeleteMessage()))
	handle("POST", "/api/v1/messages/{id}/flag", "flag", private(s.handleFlag()))

	// Moderation.
	handle("GET", "/api/v1/mod/flagged", "mod_flagged", moderator(s.handleFlagged()))
	handle("POST", "/api/v1/mod/messages/{id}/hide", "mod_hide", moderator(s.handleHide(true)))
	handle("POST", "/api/v1/mod/messages/{id}/unhide", "mod_unhide", moderator(s.handleHide(false)))
	handle("GET", "/api/v1/mod/messages/{id}/author", "mod_author", moderator(s.handleRevealAuthor()))
	handle("GET", "/api/v1/mod/messages/{id}/versions", "mod_versions", moderator(s.handleVersions()))

	// The WebSocket.
	if s.WebSocket != nil {
		handle("GET", "/ws", "ws", s.WebSocket)
	}

	// The browser client: its page at "/", its service worker at "/sw.js" (a worker controls
	// only the pages under its own path), its files under "/static/".
	handle("GET", "/", "web", web.Handler())
	handle("GET", "/sw.js", "web_worker", web.Handler())
	r.PathPrefix("/static/").Methods("GET").Handler(s.instrument("web_static", web.Handler()))

	return r
}
