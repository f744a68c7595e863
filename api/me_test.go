package api_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/commongrounds/commongrounds/api"
	"github.com/commongrounds/commongrounds/auth"
	"github.com/commongrounds/commongrounds/config"
)

// verifyPhone gives the user of token the phone number through the API and the SMS webhook.
func (e *authEnv) verifyPhone(t *testing.T, ts *testServer, token, phone string) {
	t.Helper()
	if resp, body := ts.do("POST", "/api/v1/me/phone", token, map[string]string{"phone": phone}); resp.StatusCode != 202 {
		t.Fatalf("POST /me/phone %q: %d %v", phone, resp.StatusCode, body)
	}
	code := e.sms.Next(t).Code()
	if resp, body := ts.do("POST", "/api/v1/me/phone/verify", token, map[string]string{"code": code}); resp.StatusCode != 200 || body["phone_verified"] != true {
		t.Fatalf("POST /me/phone/verify: %d %v", resp.StatusCode, body)
	}
}

func TestGetMe(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t)
	token, user := env.signInByMail(t, ts, "me1a@virginia.edu")

	t.Run("OK", func(t *testing.T) {
		resp, raw := ts.doRaw("GET", "/api/v1/me", token, nil)
		if resp.StatusCode != 200 {
			t.Fatalf("Status=%d", resp.StatusCode)
		}
		me := decodeJSON(t, raw)
		for _, k := range []string{"id", "email", "computing_id", "email_verified", "phone_verified", "created_at"} {
			if _, ok := me[k]; !ok {
				t.Fatalf("no %q in %s", k, raw)
			}
		}
		if me["id"] != user["id"] || me["email"] != "me1a@virginia.edu" || me["computing_id"] != "me1a" || me["email_verified"] != true || me["phone_verified"] != false {
			t.Fatalf("me %s", raw)
		}
		if _, err := time.Parse(time.RFC3339, fmt.Sprint(me["created_at"])); err != nil {
			t.Fatalf("created_at %v: %v", me["created_at"], err)
		}
	})
	t.Run("ErrNoToken", func(t *testing.T) {
		resp, body := ts.do("GET", "/api/v1/me", "", nil)
		wantProblem(t, resp, body, 401, "unauthorized")
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Fatal("no WWW-Authenticate")
		}
	})
}

func TestDeleteMe(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t)
	ctx := context.Background()
	token, me := env.signInByMail(t, ts, "del1a@virginia.edu")
	otherToken, other := env.signInByMail(t, ts, "del2b@virginia.edu")
	secondDevice, _ := env.signInByMail(t, ts, "del1a@virginia.edu")
	meID, otherID := fmt.Sprint(me["id"]), fmt.Sprint(other["id"])

	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := ts.DB.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// Everything an account can own: a class and its room with a message of each user, a flag,
	// a friendship, a block, a verified phone, contacts, a pending verification, a ticket.
	var classID, myMsg, theirMsg string
	if err := ts.DB.Pool.QueryRow(ctx, `INSERT INTO classes (subject, catalog_number, term) VALUES ('CS', '1110', '1262') RETURNING id`).Scan(&classID); err != nil {
		t.Fatal(err)
	}
	exec(`INSERT INTO rooms (class_id, last_seq) VALUES ($1, 2)`, classID)
	exec(`INSERT INTO user_classes (user_id, class_id) VALUES ($1, $3), ($2, $3)`, meID, otherID, classID)
	exec(`INSERT INTO class_pseudonyms (class_id, user_id, anon_id) VALUES ($1, $2, 'Anon_aaaaaa'), ($1, $3, 'Anon_bbbbbb')`, classID, meID, otherID)
	if err := ts.DB.Pool.QueryRow(ctx, `INSERT INTO class_messages (class_id, seq, user_id, anon_id, content) VALUES ($1, 1, $2, 'Anon_aaaaaa', 'mine') RETURNING id`, classID, meID).Scan(&myMsg); err != nil {
		t.Fatal(err)
	}
	if err := ts.DB.Pool.QueryRow(ctx, `INSERT INTO class_messages (class_id, seq, user_id, anon_id, content, parent_id) VALUES ($1, 2, $2, 'Anon_bbbbbb', 'theirs', $3) RETURNING id`, classID, otherID, myMsg).Scan(&theirMsg); err != nil {
		t.Fatal(err)
	}
	exec(`INSERT INTO message_flags (message_id, user_id) VALUES ($1, $2)`, theirMsg, meID)
	exec(`INSERT INTO friendships (user_id_1, user_id_2) VALUES ($1, $2)`, meID, otherID)
	exec(`INSERT INTO user_blocks (blocker_id, blocked_id) VALUES ($1, $2)`, otherID, meID)
	env.verifyPhone(t, ts, token, "+1 434 555 0111")
	if resp, _ := ts.do("POST", "/api/v1/me/contacts", token, map[string]any{"phones": []string{"+1 434 555 0112"}}); resp.StatusCode != 200 {
		t.Fatal("contacts failed")
	}
	if resp, _ := ts.do("POST", "/api/v1/me/phone", token, map[string]string{"phone": "+1 434 555 0113"}); resp.StatusCode != 202 {
		t.Fatal("phone failed")
	}
	env.sms.Next(t)
	if resp, _ := ts.do("POST", "/api/v1/auth/ws-ticket", token, nil); resp.StatusCode != 200 {
		t.Fatal("ticket failed")
	}

	resp, raw := ts.doRaw("DELETE", "/api/v1/me", token, nil)
	if resp.StatusCode != 204 || len(raw) != 0 {
		t.Fatalf("DELETE /me: %d %q, want 204", resp.StatusCode, raw)
	}

	t.Run("OKSessionsEnded", func(t *testing.T) {
		for _, tok := range []string{token, secondDevice} {
			resp, body := ts.do("GET", "/api/v1/me", tok, nil)
			wantProblem(t, resp, body, 401, "unauthorized")
		}
		if resp, _ := ts.do("GET", "/api/v1/me", otherToken, nil); resp.StatusCode != 200 {
			t.Fatal("the other user's session ended too")
		}
		_, users := env.revoked.snapshot()
		if len(users) != 1 || string(users[0]) != meID {
			t.Fatalf("revoked users %v, want [%s]", users, meID)
		}
	})
	t.Run("OKNothingOwnedLeft", func(t *testing.T) {
		for table, where := range map[string]string{
			"users":               "id = $1",
			"sessions":            "user_id = $1",
			"user_classes":        "user_id = $1",
			"class_pseudonyms":    "user_id = $1",
			"friendships":         "user_id_1 = $1 OR user_id_2 = $1",
			"user_blocks":         "blocker_id = $1 OR blocked_id = $1",
			"user_contacts":       "user_id = $1",
			"phone_verifications": "user_id = $1",
			"message_flags":       "user_id = $1",
			"class_messages":      "user_id = $1",
			"ws_tickets":          "$1::text IS NOT NULL", // only the deleted user had tickets
			"magic_links":         "email = 'del1a@virginia.edu' AND $1::text IS NOT NULL",
		} {
			var n int
			if err := ts.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()+` WHERE `+where, meID).Scan(&n); err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			if n != 0 {
				t.Fatalf("%d rows of %s left for the deleted user", n, table)
			}
		}
	})
	t.Run("OKMessagesKeptWithoutAuthor", func(t *testing.T) {
		rows, err := ts.DB.Pool.Query(ctx, `SELECT seq, user_id::text, anon_id, content, deleted_at IS NOT NULL, parent_id::text FROM class_messages WHERE class_id = $1 ORDER BY seq`, classID)
		if err != nil {
			t.Fatal(err)
		}
		type msg struct {
			seq              int64
			user, anon, text *string
			deleted          bool
			parent           *string
		}
		msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (msg, error) {
			var m msg
			return m, r.Scan(&m.seq, &m.user, &m.anon, &m.text, &m.deleted, &m.parent)
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != 2 {
			t.Fatalf("%d messages, want both kept", len(msgs))
		}
		if m := msgs[0]; m.seq != 1 || m.user != nil || m.anon == nil || m.text == nil || m.deleted {
			t.Fatalf("the deleted user's message: %+v, want it kept at seq 1 without its author", m)
		}
		if m := msgs[1]; m.seq != 2 || m.text == nil || *m.text != "theirs" || m.deleted || m.parent == nil || *m.parent != myMsg {
			t.Fatalf("the other user's reply changed: %+v", m)
		}
	})
	t.Run("OKSignInAgainIsNewAccount", func(t *testing.T) {
		_, again := env.signInByMail(t, ts, "del1a@virginia.edu")
		if again["id"] == meID || again["phone_verified"] != false {
			t.Fatalf("signed in to %v, want a fresh account", again)
		}
	})
}

func TestPhone(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t)
	token, _ := env.signInByMail(t, ts, "phone1a@virginia.edu")

	t.Run("OK", func(t *testing.T) {
		resp, body := ts.do("POST", "/api/v1/me/phone", token, map[string]string{"phone": "+1 434 555 0100"})
		if resp.StatusCode != 202 {
			t.Fatalf("Status=%d %v", resp.StatusCode, body)
		}
		sms := env.sms.Next(t)
		if sms.To != "+14345550100" || len(sms.Code()) != 6 {
			t.Fatalf("text message %+v", sms)
		}
		wrong := fmt.Sprintf("%06d", (atoi(sms.Code())+1)%1000000)
		resp, body = ts.do("POST", "/api/v1/me/phone/verify", token, map[string]string{"code": wrong})
		wantProblem(t, resp, body, 400, "invalid_code")
		resp, raw := ts.doRaw("POST", "/api/v1/me/phone/verify", token, map[string]string{"code": sms.Code()})
		if resp.StatusCode != 200 || strings.TrimSpace(string(raw)) != `{"phone_verified":true}` {
			t.Fatalf("verify: %d %s", resp.StatusCode, raw)
		}
		if _, me := ts.do("GET", "/api/v1/me", token, nil); me["phone_verified"] != true {
			t.Fatalf("me %v, want phone_verified", me)
		}
	})
	for _, phone := range []string{"", "12345", "not a phone", "+1 434 555 01000", strings.Repeat("1", 100)} {
		t.Run("ErrInvalidPhone_"+phone, func(t *testing.T) {
			resp, body := ts.do("POST", "/api/v1/me/phone", token, map[string]string{"phone": phone})
			wantProblem(t, resp, body, 400, "invalid_phone")
		})
	}
	for _, code := range []string{"", "12345", "1234567", "abcdef", "12345a"} {
		t.Run("ErrInvalidCode_"+code, func(t *testing.T) {
			resp, body := ts.do("POST", "/api/v1/me/phone/verify", token, map[string]string{"code": code})
			wantProblem(t, resp, body, 400, "invalid_code")
		})
	}
	t.Run("ErrVoidAfterFiveWrongTries", func(t *testing.T) {
		tok, _ := env.signInByMail(t, ts, "phone2b@virginia.edu")
		if resp, _ := ts.do("POST", "/api/v1/me/phone", tok, map[string]string{"phone": "434-555-0102"}); resp.StatusCode != 202 {
			t.Fatal("phone failed")
		}
		code := env.sms.Next(t).Code()
		for i := range 5 {
			wrong := fmt.Sprintf("%06d", (atoi(code)+1+i)%1000000)
			resp, body := ts.do("POST", "/api/v1/me/phone/verify", tok, map[string]string{"code": wrong})
			wantProblem(t, resp, body, 400, "invalid_code")
		}
		resp, body := ts.do("POST", "/api/v1/me/phone/verify", tok, map[string]string{"code": code})
		wantProblem(t, resp, body, 400, "invalid_code")
	})
	t.Run("ErrExpired", func(t *testing.T) {
		tok, _ := env.signInByMail(t, ts, "phone3c@virginia.edu")
		if resp, _ := ts.do("POST", "/api/v1/me/phone", tok, map[string]string{"phone": "434-555-0103"}); resp.StatusCode != 202 {
			t.Fatal("phone failed")
		}
		code := env.sms.Next(t).Code()
		env.clock.Advance(10*time.Minute + time.Second)
		resp, body := ts.do("POST", "/api/v1/me/phone/verify", tok, map[string]string{"code": code})
		wantProblem(t, resp, body, 400, "invalid_code")
	})
	t.Run("OKNewCodeReplacesOld", func(t *testing.T) {
		tok, _ := env.signInByMail(t, ts, "phone4d@virginia.edu")
		var codes []string
		for range 2 {
			if resp, _ := ts.do("POST", "/api/v1/me/phone", tok, map[string]string{"phone": "434-555-0104"}); resp.StatusCode != 202 {
				t.Fatal("phone failed")
			}
			codes = append(codes, env.sms.Next(t).Code())
		}
		if codes[0] != codes[1] {
			resp, body := ts.do("POST", "/api/v1/me/phone/verify", tok, map[string]string{"code": codes[0]})
			wantProblem(t, resp, body, 400, "invalid_code")
		}
		if resp, _ := ts.do("POST", "/api/v1/me/phone/verify", tok, map[string]string{"code": codes[1]}); resp.StatusCode != 200 {
			t.Fatalf("the newest code: %d, want 200", resp.StatusCode)
		}
	})
	t.Run("OKNumberMovesToNewVerifier", func(t *testing.T) {
		a, _ := env.signInByMail(t, ts, "phone5e@virginia.edu")
		b, _ := env.signInByMail(t, ts, "phone6f@virginia.edu")
		env.verifyPhone(t, ts, a, "434-555-0105")
		env.verifyPhone(t, ts, b, "+1 (434) 555-0105")
		if _, me := ts.do("GET", "/api/v1/me", a, nil); me["phone_verified"] != false {
			t.Fatalf("the previous holder still has the number: %v", me)
		}
		if _, me := ts.do("GET", "/api/v1/me", b, nil); me["phone_verified"] != true {
			t.Fatalf("the new holder: %v", me)
		}
	})
	t.Run("ErrSMSUnavailable", func(t *testing.T) {
		t.Parallel()
		ts, env := newAuthServer(t)
		tok, _ := env.signInByMail(t, ts, "phone7g@virginia.edu")
		env.sms.Fail(502)
		resp, body := ts.do("POST", "/api/v1/me/phone", tok, map[string]string{"phone": "434-555-0107"})
		wantProblem(t, resp, body, 503, "unavailable")
	})
	t.Run("ErrRateLimited", func(t *testing.T) {
		t.Parallel()
		ts, env := newAuthServer(t, func(d *api.Deps) { d.Phones.CodesPerUser = auth.Rate{Limit: 2, Window: time.Hour} })
		tok, _ := env.signInByMail(t, ts, "phone8h@virginia.edu")
		for range 2 {
			if resp, _ := ts.do("POST", "/api/v1/me/phone", tok, map[string]string{"phone": "434-555-0108"}); resp.StatusCode != 202 {
				t.Fatal("phone failed")
			}
		}
		resp, body := ts.do("POST", "/api/v1/me/phone", tok, map[string]string{"phone": "434-555-0108"})
		wantRetryAfter(t, resp, body)
	})
	t.Run("ErrNoSession", func(t *testing.T) {
		resp, body := ts.do("POST", "/api/v1/me/phone", "", map[string]string{"phone": "434-555-0100"})
		wantProblem(t, resp, body, 401, "unauthorized")
	})
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// TestPhoneDigitsNeverStoredOrLogged runs the phone and contact flows and then looks for the
// digits in every column of every table and in the server's logs.
func TestPhoneDigitsNeverStoredOrLogged(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t)
	ctx := context.Background()
	token, _ := env.signInByMail(t, ts, "digits1a@virginia.edu")
	other, _ := env.signInByMail(t, ts, "digits2b@virginia.edu")

	if resp, _ := ts.do("POST", "/api/v1/me/phone", token, map[string]string{"phone": "+1 434 555 0142"}); resp.StatusCode != 202 {
		t.Fatal("phone failed")
	}
	code := env.sms.Next(t).Code()
	pendingCode := code
	if resp, _ := ts.do("POST", "/api/v1/me/phone/verify", token, map[string]string{"code": code}); resp.StatusCode != 200 {
		t.Fatal("verify failed")
	}
	// A pending verification stays in the database with its code.
	if resp, _ := ts.do("POST", "/api/v1/me/phone", other, map[string]string{"phone": "+1 434 555 0143"}); resp.StatusCode != 202 {
		t.Fatal("phone failed")
	}
	pendingCode = env.sms.Next(t).Code()
	if resp, _ := ts.do("POST", "/api/v1/me/contacts", other, map[string]any{"phones": []string{"+1 434 555 0142", "(434) 555-0144"}}); resp.StatusCode != 200 {
		t.Fatal("contacts failed")
	}

	rows, err := ts.DB.Pool.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) < 10 {
		t.Fatalf("tables %v (%v)", tables, err)
	}
	needles := []string{"4345550142", "4345550143", "4345550144", "555-0142", "555 0142"}
	for _, table := range tables {
		// Every row as JSON text, in which byte strings show as hex: the digits are looked for
		// as text and as the hex of their bytes.
		rows, err := ts.DB.Pool.Query(ctx, `SELECT to_jsonb(t)::text FROM `+pgx.Identifier{table}.Sanitize()+` t`)
		if err != nil {
			t.Fatal(err)
		}
		dump, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		all := strings.Join(dump, "\n")
		for _, n := range needles {
			if strings.Contains(all, n) || strings.Contains(all, hex.EncodeToString([]byte(n))) {
				t.Fatalf("table %s holds the phone digits %s", table, n)
			}
		}
		if table == "phone_verifications" && len(dump) != 1 {
			t.Fatalf("%d pending verifications, want 1", len(dump))
		}
		var codeCols int
		if err := ts.DB.Pool.QueryRow(ctx, `
			SELECT count(*) FROM `+pgx.Identifier{table}.Sanitize()+` t, jsonb_each_text(to_jsonb(t)) AS c(k, v)
			 WHERE c.v = $1 OR c.v = $2 OR c.v LIKE '%' || encode(convert_to($2, 'UTF8'), 'hex') || '%'`, code, pendingCode).Scan(&codeCols); err != nil {
			t.Fatal(err)
		}
		if codeCols != 0 {
			t.Fatalf("table %s holds a verification code", table)
		}
	}
	logs := env.logs.String()
	for _, n := range append(needles, code, pendingCode) {
		if strings.Contains(logs, n) {
			t.Fatalf("the logs hold %s", n)
		}
	}
}

func TestContacts(t *testing.T) {
	t.Parallel()
	ts, env := newAuthServer(t)
	ctx := context.Background()
	me, meUser := env.signInByMail(t, ts, "con0a@virginia.edu")
	env.verifyPhone(t, ts, me, "434-555-0120")
	users := map[string]map[string]any{}
	tokens := map[string]string{}
	for i, name := range []string{"friend", "pending", "stranger", "blocked", "blocker"} {
		tok, u := env.signInByMail(t, ts, "con"+name+"@virginia.edu")
		env.verifyPhone(t, ts, tok, fmt.Sprintf("434-555-012%d", i+1))
		users[name], tokens[name] = u, tok
	}
	unverified, _ := env.signInByMail(t, ts, "conunver@virginia.edu")
	if resp, _ := ts.do("POST", "/api/v1/me/phone", unverified, map[string]string{"phone": "434-555-0129"}); resp.StatusCode != 202 {
		t.Fatal("phone failed")
	}
	env.sms.Next(t)
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := ts.DB.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`INSERT INTO friendships (user_id_1, user_id_2, status, accepted_at) VALUES ($1, $2, 'ACCEPTED', now())`, users["friend"]["id"], meUser["id"])
	exec(`INSERT INTO friendships (user_id_1, user_id_2) VALUES ($1, $2)`, meUser["id"], users["pending"]["id"])
	exec(`INSERT INTO user_blocks (blocker_id, blocked_id) VALUES ($1, $2)`, meUser["id"], users["blocked"]["id"])
	exec(`INSERT INTO user_blocks (blocker_id, blocked_id) VALUES ($1, $2)`, users["blocker"]["id"], meUser["id"])
	list := []string{
		"+1 434 555 0121", "(434) 555-0122", "4345550123", "434.555.0124", "+14345550125", // friend, pending, stranger, blocked, blocker
		"434-555-0129",                   // not verified
		"434-555-0120",                   // the caller's own
		"434-555-0199",                   // nobody's
		"garbage", "", "+1 434 555 0121", // junk and a repeat
	}

	t.Run("OK", func(t *testing.T) {
		resp, raw := ts.doRaw("POST", "/api/v1/me/contacts", me, map[string]any{"phones": list})
		if resp.StatusCode != 200 {
			t.Fatalf("Status=%d %s", resp.StatusCode, raw)
		}
		body := decodeJSON(t, raw)
		matches, _ := body["matches"].([]any)
		got := map[string]any{}
		for _, m := range matches {
			m := m.(map[string]any)
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			if !slices.Equal(keys, []string{"computing_id", "email", "friendship_status", "user_id"}) {
				t.Fatalf("match fields %v", keys)
			}
			got[fmt.Sprint(m["email"])] = m["friendship_status"]
		}
		want := map[string]any{"confriend@virginia.edu": "ACCEPTED", "conpending@virginia.edu": "PENDING", "constranger@virginia.edu": nil}
		if len(got) != len(want) {
			t.Fatalf("matches %v, want %v", got, want)
		}
		for k, v := range want {
			if gv, ok := got[k]; !ok || gv != v {
				t.Fatalf("matches %v, want %v", got, want)
			}
		}
		// Stored for suggestions: one hash per valid distinct number (one pepper version).
		var n int
		if err := ts.DB.Pool.QueryRow(ctx, `SELECT count(*) FROM user_contacts WHERE user_id = $1`, meUser["id"]).Scan(&n); err != nil || n != 8 {
			t.Fatalf("%d stored contact hashes (%v), want 8", n, err)
		}
	})
	t.Run("OKEmpty", func(t *testing.T) {
		resp, raw := ts.doRaw("POST", "/api/v1/me/contacts", me, map[string]any{"phones": []string{}})
		if resp.StatusCode != 200 || strings.TrimSpace(string(raw)) != `{"matches":[]}` {
			t.Fatalf("%d %s, want 200 {\"matches\":[]}", resp.StatusCode, raw)
		}
	})
	t.Run("OKPepperRotation", func(t *testing.T) {
		// A new pepper becomes the newest: numbers verified under the old one still match.
		twin := env.twin(t, ts, func(d *api.Deps) {
			newer := config.Key{ID: "2", Secret: []byte("pepper-pepper-pepper-pepper-0002")}
			h, err := auth.NewPhoneHasher([]config.Key{newer, testPepper})
			if err != nil {
				t.Fatal(err)
			}
			d.Phones.Hasher = h
		})
		_, body := twin.do("POST", "/api/v1/me/contacts", me, map[string]any{"phones": []string{"434-555-0123"}})
		if matches, _ := body["matches"].([]any); len(matches) != 1 {
			t.Fatalf("after rotation: %v, want the stranger", body)
		}
		// And a user verified under the new pepper is found by a client of the rotated server.
		newTok, _ := env.signInByMail(t, twin, "conrot@virginia.edu")
		if resp, _ := twin.do("POST", "/api/v1/me/phone", newTok, map[string]string{"phone": "434-555-0130"}); resp.StatusCode != 202 {
			t.Fatal("phone failed")
		}
		code := env.sms.Next(t).Code()
		if resp, _ := twin.do("POST", "/api/v1/me/phone/verify", newTok, map[string]string{"code": code}); resp.StatusCode != 200 {
			t.Fatal("verify failed")
		}
		var version int
		if err := ts.DB.Pool.QueryRow(ctx, `SELECT phone_pepper_version FROM users WHERE email = 'conrot@virginia.edu'`).Scan(&version); err != nil || version != 2 {
			t.Fatalf("pepper version %d (%v), want 2", version, err)
		}
		_, body = twin.do("POST", "/api/v1/me/contacts", me, map[string]any{"phones": []string{"434-555-0130"}})
		if matches, _ := body["matches"].([]any); len(matches) != 1 {
			t.Fatalf("new pepper: %v, want conrot", body)
		}
	})
	t.Run("ErrTooManyPhones", func(t *testing.T) {
		phones := make([]string, 2001)
		for i := range phones {
			phones[i] = fmt.Sprintf("+1434555%04d", i)
		}
		resp, body := ts.do("POST", "/api/v1/me/contacts", me, map[string]any{"phones": phones})
		wantProblem(t, resp, body, 400, "too_many_phones")
		if resp, body := ts.do("POST", "/api/v1/me/contacts", me, map[string]any{"phones": phones[:2000]}); resp.StatusCode != 200 {
			t.Fatalf("2000 numbers: %d %v, want 200", resp.StatusCode, body)
		}
	})
	t.Run("ErrInvalidJSON", func(t *testing.T) {
		resp, body := ts.do("POST", "/api/v1/me/contacts", me, `{"phones":[1,2]}`)
		wantProblem(t, resp, body, 400, "invalid_json")
	})
	t.Run("ErrDailyQuota", func(t *testing.T) {
		t.Parallel()
		ts, env := newAuthServer(t, func(d *api.Deps) { d.Phones.ContactsPerDay = auth.Rate{Limit: 5, Window: 24 * time.Hour} })
		tok, _ := env.signInByMail(t, ts, "conquota@virginia.edu")
		if resp, _ := ts.do("POST", "/api/v1/me/contacts", tok, map[string]any{"phones": []string{"434-555-0101", "434-555-0102", "434-555-0103"}}); resp.StatusCode != 200 {
			t.Fatal("first lookup refused")
		}
		resp, body := ts.do("POST", "/api/v1/me/contacts", tok, map[string]any{"phones": []string{"434-555-0104", "434-555-0105", "434-555-0106"}})
		wantRetryAfter(t, resp, body)
		if resp, _ := ts.do("POST", "/api/v1/me/contacts", tok, map[string]any{"phones": []string{"434-555-0104", "434-555-0105"}}); resp.StatusCode != 200 {
			t.Fatal("a lookup within the rest of the quota was refused")
		}
	})
}
