package api_test

import (
	"encoding/base64"
	"net/url"
	"testing"
)

// TestUnstorableText sends text that no Postgres text column can hold — NUL, from a URL escape
// or a JSON \u0000, and bytes that are not UTF-8 — through every route that takes free text.
// Each gets the route's documented client error, never a 500.
func TestUnstorableText(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	token, _ := ts.signIn("txt1a@virginia.edu")
	author, _ := ts.signIn("txt2b@virginia.edu")
	mod, _ := ts.signIn("txt3c@virginia.edu")
	if err := ts.Users.SetRole(t.Context(), "txt3c@virginia.edu", "moderator"); err != nil {
		t.Fatal(err)
	}
	class := ts.newRoomClass(token, author)
	msg := ts.post(author, class, map[string]any{"content": "a message to flag"})
	id := msg["id"].(string)

	cursor := func(key string) string {
		return base64.RawURLEncoding.EncodeToString([]byte(`["1262","CS","` + key + `","001","00000000-0000-0000-0000-000000000000"]`))
	}
	for _, c := range []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"ClassesQueryNUL", "GET", "/api/v1/classes?q=a%00b", nil, 400, "invalid"},
		{"ClassesQueryNotUTF8", "GET", "/api/v1/classes?q=%FF%FE", nil, 400, "invalid"},
		{"ClassesSubjectNUL", "GET", "/api/v1/classes?subject=CS%00", nil, 400, "invalid"},
		{"ClassesTermNotUTF8", "GET", "/api/v1/classes?term=%C3", nil, 400, "invalid"},
		{"ClassesCursorNUL", "GET", "/api/v1/classes?cursor=" + url.QueryEscape(cursor(`\u0000`)), nil, 400, "invalid_cursor"},
		{"FlagReasonNUL", "POST", "/api/v1/messages/" + id + "/flag", `{"reason":"spam\u0000"}`, 400, "invalid"},
		{"RevealReasonNUL", "GET", "/api/v1/mod/messages/" + id + "/author?reason=why%00", nil, 400, "invalid"},
		{"PostClientMsgIDNUL", "POST", "/api/v1/classes/" + class + "/messages", `{"content":"hi","client_msg_id":"a\u0000b"}`, 400, "invalid"},
		{"PostContentNUL", "POST", "/api/v1/classes/" + class + "/messages", `{"content":"hi\u0000"}`, 400, "invalid_content"},
		{"MagicLinkNUL", "POST", "/api/v1/auth/magic-link", `{"email":"ab1c\u0000@virginia.edu"}`, 400, "invalid_email"},
		{"VerifyTokenNUL", "POST", "/api/v1/auth/verify", `{"token":"abc\u0000"}`, 401, "invalid_token"},
		{"PhoneNUL", "POST", "/api/v1/me/phone", `{"phone":"+1 434 555 0100\u0000"}`, 400, "invalid_phone"},
		{"PhoneCodeNUL", "POST", "/api/v1/me/phone/verify", `{"code":"12345\u0000"}`, 400, "invalid_code"},
		{"RevealReasonNotUTF8", "GET", "/api/v1/mod/messages/" + id + "/author?reason=%FF", nil, 400, "invalid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			tok := token
			if c.name[:6] == "Reveal" {
				tok = mod
			}
			resp, body := ts.do(c.method, c.path, tok, c.body)
			wantProblem(t, resp, body, c.status, c.code)
		})
	}
}
