package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/commongrounds/commongrounds/persistence"
	"github.com/commongrounds/commongrounds/sis"
	"github.com/commongrounds/commongrounds/sis/sistest"
)

// classFields are the fields of a Class in the contract, exactly.
var classFields = []string{"id", "subject", "catalog_number", "term", "title", "class_section", "component", "instructor",
	"days", "start_time", "end_time", "location", "class_capacity", "enrollment_available", "sis_class_number"}

// syncFixtureTerm syncs the recorded SIS term into the server's database.
func syncFixtureTerm(t *testing.T, ts *testServer) {
	t.Helper()
	srv := sistest.NewServer(t)
	syncer := &sis.Syncer{Client: &sis.Client{BaseURL: srv.URL}, Store: persistence.NewClassStore(ts.DB)}
	res, err := syncer.Sync(context.Background(), sistest.Term, nil)
	if err != nil {
		t.Fatalf("sync the recorded term: %v", err)
	}
	if res.Sections != sistest.Sections {
		t.Fatalf("synced %d sections, want %d", res.Sections, sistest.Sections)
	}
}

// classPage is a reply of GET /api/v1/classes.
type classPage struct {
	Classes    []map[string]any `json:"classes"`
	NextCursor *string          `json:"next_cursor"`
}

// getClasses fetches one page of classes with the query q.
func (ts *testServer) getClasses(t *testing.T, token string, q url.Values) classPage {
	t.Helper()
	resp, raw := ts.doRaw("GET", "/api/v1/classes?"+q.Encode(), token, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET classes?%s: status %d: %s", q.Encode(), resp.StatusCode, raw)
	}
	var p classPage
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	if p.Classes == nil {
		t.Fatalf("classes is %s, want an array", raw)
	}
	return p
}

// allClasses pages through a listing and returns the ids in order, and how many pages it took.
func (ts *testServer) allClasses(t *testing.T, token string, q url.Values, limit int) (ids []string, pages int) {
	t.Helper()
	q = cloneValues(q)
	q.Set("limit", fmt.Sprint(limit))
	for {
		pages++
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		p := ts.getClasses(t, token, q)
		if len(p.Classes) > limit || (p.NextCursor != nil && len(p.Classes) != limit) {
			t.Fatalf("page %d: %d classes with next_cursor %v at limit %d", pages, len(p.Classes), p.NextCursor, limit)
		}
		for _, c := range p.Classes {
			ids = append(ids, c["id"].(string))
		}
		if p.NextCursor == nil {
			return ids, pages
		}
		q.Set("cursor", *p.NextCursor)
	}
}

func cloneValues(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = slices.Clone(v)
	}
	return out
}

func TestListClasses(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	syncFixtureTerm(t, ts)
	token, _ := ts.signIn("cls1a@virginia.edu")
	term := url.Values{"term": {sistest.Term}}

	full := ts.getClasses(t, token, url.Values{"term": {sistest.Term}, "limit": {"200"}})
	if len(full.Classes) != sistest.Sections || full.NextCursor != nil {
		t.Fatalf("limit 200: %d classes next=%v, want all %d and next_cursor null", len(full.Classes), full.NextCursor, sistest.Sections)
	}
	var fullIDs []string
	for _, c := range full.Classes {
		fullIDs = append(fullIDs, c["id"].(string))
	}

	t.Run("Pages", func(t *testing.T) {
		ids, pages := ts.allClasses(t, token, term, 7)
		if !slices.Equal(ids, fullIDs) {
			t.Fatalf("paging by 7 gave %d classes, not the %d of the full list in its order", len(ids), len(fullIDs))
		}
		if pages != (sistest.Sections+6)/7 {
			t.Fatalf("pages=%d, want %d", pages, (sistest.Sections+6)/7)
		}
		sorted := slices.Clone(ids)
		slices.Sort(sorted)
		if len(slices.Compact(sorted)) != sistest.Sections {
			t.Fatal("a class was listed twice")
		}
	})
	t.Run("DefaultLimit", func(t *testing.T) {
		p := ts.getClasses(t, token, term)
		if len(p.Classes) != 50 || p.NextCursor == nil {
			t.Fatalf("%d classes next=%v, want 50 and a cursor", len(p.Classes), p.NextCursor)
		}
	})
	t.Run("Fields", func(t *testing.T) {
		byNbr := map[string]map[string]any{}
		for _, c := range full.Classes {
			keys := make([]string, 0, len(c))
			for k := range c {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			want := slices.Sorted(slices.Values(classFields))
			if !slices.Equal(keys, want) {
				t.Fatalf("class fields=%v, want exactly %v", keys, want)
			}
			byNbr[c["sis_class_number"].(string)] = c
		}
		lec := byNbr["10001"]
		want := map[string]any{"subject": "CS", "catalog_number": "1110", "term": "1262", "title": "Introduction to Programming",
			"class_section": "001", "component": "Lecture", "instructor": "Donald Perlman", "days": "Mo", "start_time": "1530",
			"end_time": "1820", "location": "Rice Hall 130", "class_capacity": float64(40), "enrollment_available": float64(23)}
		for k, v := range want {
			if lec[k] != v {
				t.Errorf("%s=%v, want %v", k, lec[k], v)
			}
		}
		// An online section has no meetings; two instructors are joined.
		online := byNbr["10173"]
		for _, k := range []string{"days", "start_time", "end_time", "location"} {
			if v, ok := online[k]; !ok || v != nil {
				t.Errorf("online section %s=%v, want null", k, v)
			}
		}
		if online["instructor"] != "John Turing, Barbara Dijkstra" || online["component"] != "Laboratory" {
			t.Errorf("instructor=%v component=%v", online["instructor"], online["component"])
		}
		if byNbr["10209"]["instructor"] != "Staff" || byNbr["10025"]["component"] != "Discussion" {
			t.Errorf("Staff section instructor=%v, discussion component=%v", byNbr["10209"]["instructor"], byNbr["10025"]["component"])
		}
	})
	t.Run("Filters", func(t *testing.T) {
		count := func(pred func(c map[string]any) bool) int {
			n := 0
			for _, c := range full.Classes {
				if pred(c) {
					n++
				}
			}
			return n
		}
		titleHas := func(words ...string) func(map[string]any) bool {
			return func(c map[string]any) bool {
				text := strings.ToLower(fmt.Sprintf("%s %s %v", c["subject"], c["catalog_number"], c["title"]))
				for _, w := range words {
					if !strings.Contains(text, w) {
						return false
					}
				}
				return true
			}
		}
		cs3120 := func(c map[string]any) bool { return c["subject"] == "CS" && c["catalog_number"] == "3120" }
		tests := []struct {
			name string
			q    url.Values
			want int
		}{
			{"Subject", url.Values{"subject": {"cs"}}, count(func(c map[string]any) bool { return c["subject"] == "CS" })},
			{"SubjectAndNumber", url.Values{"subject": {"CS"}, "catalog_number": {"3120"}}, count(cs3120)},
			{"QCourse", url.Values{"q": {"CS 3120"}}, count(cs3120)},
			{"QCourseNoSpace", url.Values{"q": {"CS3120"}}, count(cs3120)},
			{"QCourseLower", url.Values{"q": {"cs3120"}}, count(cs3120)},
			{"QWords", url.Values{"q": {"Discrete mathematics"}}, count(titleHas("discrete", "mathematics"))},
			{"QTitle", url.Values{"q": {"systems"}}, count(titleHas("systems"))},
			{"OtherTerm", url.Values{"term": {"1268"}}, 0},
		}
		for _, tt := range tests {
			if tt.q.Get("term") == "" {
				tt.q.Set("term", sistest.Term)
			}
			ids, _ := ts.allClasses(t, token, tt.q, 7)
			if len(ids) != tt.want || (tt.want == 0 && tt.name != "OtherTerm") {
				t.Errorf("%s: %d classes, want %d", tt.name, len(ids), tt.want)
			}
		}
	})
	t.Run("Errors", func(t *testing.T) {
		tests := []struct {
			name, query, code string
		}{
			{"ErrLimitZero", "limit=0", "invalid_limit"},
			{"ErrLimitTooLarge", "limit=201", "invalid_limit"},
			{"ErrLimitNegative", "limit=-1", "invalid_limit"},
			{"ErrLimitNotNumber", "limit=ten", "invalid_limit"},
			{"ErrCursorGarbage", "cursor=garbage!", "invalid_cursor"},
			{"ErrCursorForged", "cursor=" + url.QueryEscape("WyJhIl0"), "invalid_cursor"},
			{"ErrQueryTooLong", "q=" + strings.Repeat("a", 201), "invalid"},
		}
		for _, tt := range tests {
			resp, body := ts.do("GET", "/api/v1/classes?"+tt.query, token, nil)
			if resp.StatusCode != 400 || body["code"] != tt.code {
				t.Errorf("%s: status %d code %v, want 400 %s", tt.name, resp.StatusCode, body["code"], tt.code)
			}
		}
	})
}

func TestGetClass(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	syncFixtureTerm(t, ts)
	token, _ := ts.signIn("cls2a@virginia.edu")
	other, _ := ts.signIn("cls2b@virginia.edu")
	p := ts.getClasses(t, token, url.Values{"q": {"CS 3120"}})
	id := p.Classes[0]["id"].(string)

	t.Run("OK", func(t *testing.T) {
		for i, tok := range []string{token, other} {
			resp, body := ts.do("GET", "/api/v1/classes/"+id, token, nil)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %v", resp.StatusCode, body)
			}
			// The test server's anonymity threshold is 1: no one enrolled is "fewer than 1".
			if i == 0 && (body["enrolled_count"] != nil || body["enrolled_fewer_than"] != float64(1)) {
				t.Fatalf("enrolled_count=%v enrolled_fewer_than=%v, want null and 1", body["enrolled_count"], body["enrolled_fewer_than"])
			}
			if i > 0 && (body["enrolled_count"] != float64(i) || body["enrolled_fewer_than"] != nil) {
				t.Fatalf("enrolled_count=%v, want %d", body["enrolled_count"], i)
			}
			for _, f := range classFields {
				if _, ok := body[f]; !ok {
					t.Fatalf("the detail lacks %s", f)
				}
			}
			want := len(classFields) + 1
			if i == 0 {
				want++ // enrolled_fewer_than
			}
			if len(body) != want {
				t.Fatalf("the detail has %d fields, want the class's and enrolled_count (and enrolled_fewer_than below the threshold)", len(body))
			}
			if resp, _ := ts.do("POST", "/api/v1/me/classes", tok, map[string]string{"class_id": id}); resp.StatusCode != 201 {
				t.Fatalf("enroll: status %d", resp.StatusCode)
			}
		}
	})
	for _, bad := range []string{"00000000-0000-0000-0000-000000000000", "not-a-uuid", "1;DROP"} {
		t.Run("ErrClassNotFound", func(t *testing.T) {
			resp, body := ts.do("GET", "/api/v1/classes/"+bad, token, nil)
			wantProblem(t, resp, body, 404, "class_not_found")
		})
	}
}

func TestEnrollment(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	syncFixtureTerm(t, ts)
	token, me := ts.signIn("enr1a@virginia.edu")
	p := ts.getClasses(t, token, url.Values{"subject": {"MATH"}, "limit": {"3"}})
	a, b := p.Classes[0]["id"].(string), p.Classes[1]["id"].(string)

	myClasses := func() []string {
		t.Helper()
		resp, raw := ts.doRaw("GET", "/api/v1/me/classes", token, nil)
		var body struct {
			Classes []map[string]any `json:"classes"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(raw, &body) != nil || body.Classes == nil {
			t.Fatalf("GET /me/classes: status %d body %s", resp.StatusCode, raw)
		}
		ids := []string{}
		for _, c := range body.Classes {
			ids = append(ids, c["id"].(string))
		}
		return ids
	}

	t.Run("OK", func(t *testing.T) {
		if got := myClasses(); len(got) != 0 {
			t.Fatalf("classes=%v, want none", got)
		}
		resp, body := ts.do("POST", "/api/v1/me/classes", token, map[string]string{"class_id": b})
		if resp.StatusCode != 201 || body["id"] != b || body["subject"] != "MATH" {
			t.Fatalf("enroll: status %d body %v, want 201 with the class", resp.StatusCode, body)
		}
		resp, _ = ts.do("POST", "/api/v1/me/classes", token, map[string]string{"class_id": b})
		if resp.StatusCode != 200 {
			t.Fatalf("enroll again: status %d, want 200", resp.StatusCode)
		}
		if resp, _ := ts.do("POST", "/api/v1/me/classes", token, map[string]string{"class_id": a}); resp.StatusCode != 201 {
			t.Fatalf("enroll in a: status %d", resp.StatusCode)
		}
		if got := myClasses(); !slices.Equal(got, []string{a, b}) {
			t.Fatalf("classes=%v, want %v in listing order", got, []string{a, b})
		}
		for range 2 {
			resp, raw := ts.doRaw("DELETE", "/api/v1/me/classes/"+a, token, nil)
			if resp.StatusCode != 204 || len(raw) != 0 {
				t.Fatalf("drop: status %d body %q, want 204", resp.StatusCode, raw)
			}
		}
		if got := myClasses(); !slices.Equal(got, []string{b}) {
			t.Fatalf("classes=%v, want only %s", got, b)
		}
		for _, unknown := range []string{"00000000-0000-0000-0000-000000000000", "nope"} {
			if resp, raw := ts.doRaw("DELETE", "/api/v1/me/classes/"+unknown, token, nil); resp.StatusCode != 204 || len(raw) != 0 {
				t.Fatalf("drop %s: status %d body %q, want 204: there is no enrollment to end", unknown, resp.StatusCode, raw)
			}
		}
	})
	t.Run("RejoinKeepsPseudonym", func(t *testing.T) {
		ctx := context.Background()
		if resp, _ := ts.do("POST", "/api/v1/me/classes", token, map[string]string{"class_id": a}); resp.StatusCode != 201 {
			t.Fatalf("enroll: status %d", resp.StatusCode)
		}
		// The rooms give the pseudonym on first use; leaving must not take it away.
		if _, err := ts.DB.Pool.Exec(ctx, `INSERT INTO class_pseudonyms (class_id, user_id, anon_id) VALUES ($1, $2, 'Anon_a3f2e1') ON CONFLICT DO NOTHING`, a, me.ID); err != nil {
			t.Fatal(err)
		}
		if resp, _ := ts.do("DELETE", "/api/v1/me/classes/"+a, token, nil); resp.StatusCode != 204 {
			t.Fatalf("drop: status %d", resp.StatusCode)
		}
		if resp, _ := ts.do("POST", "/api/v1/me/classes", token, map[string]string{"class_id": a}); resp.StatusCode != 201 {
			t.Fatalf("re-join: status %d", resp.StatusCode)
		}
		var anon string
		if err := ts.DB.Pool.QueryRow(ctx, `SELECT anon_id FROM class_pseudonyms WHERE class_id = $1 AND user_id = $2`, a, me.ID).Scan(&anon); err != nil || anon != "Anon_a3f2e1" {
			t.Fatalf("pseudonym=%q err=%v, want it kept", anon, err)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		tests := []struct {
			name, method, path string
			body               any
			status             int
			code               string
		}{
			{"ErrUnknownClass", "POST", "/api/v1/me/classes", map[string]string{"class_id": "00000000-0000-0000-0000-000000000000"}, 404, "class_not_found"},
			{"ErrNotUUID", "POST", "/api/v1/me/classes", map[string]string{"class_id": "CS 3120"}, 404, "class_not_found"},
			{"ErrNoClassID", "POST", "/api/v1/me/classes", map[string]string{}, 400, "invalid"},
			{"ErrWrongType", "POST", "/api/v1/me/classes", `{"class_id":12}`, 400, "invalid_json"},
			{"ErrUnknownField", "POST", "/api/v1/me/classes", `{"class":"x"}`, 400, "invalid_json"},
			{"ErrNotJSON", "POST", "/api/v1/me/classes", `class_id=1`, 400, "invalid_json"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				resp, body := ts.do(tt.method, tt.path, token, tt.body)
				wantProblem(t, resp, body, tt.status, tt.code)
			})
		}
	})
}
