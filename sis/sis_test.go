package sis_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/sis"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func ptr[T any](v T) *T { return &v }

// str shows an optional string in failure messages.
func str(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

func TestSectionClass(t *testing.T) {
	t.Parallel()
	t.Run("OK", func(t *testing.T) {
		// The first section of the recorded term, field by field.
		data, err := os.ReadFile(filepath.Join("testdata", "class-search-term-1262-page-1.json"))
		if err != nil {
			t.Fatal(err)
		}
		var secs []sis.Section
		if err := json.Unmarshal(data, &secs); err != nil {
			t.Fatal(err)
		}
		got, err := secs[0].Class()
		if err != nil {
			t.Fatal(err)
		}
		want := cg.Class{
			Subject: "CS", CatalogNumber: "1110", Term: "1262", Title: ptr("Introduction to Programming"),
			ClassSection: ptr("001"), Component: ptr("Lecture"), Instructor: ptr("Donald Perlman"),
			Days: ptr("Mo"), StartTime: ptr("1530"), EndTime: ptr("1820"), Location: ptr("Rice Hall 130"),
			ClassCapacity: ptr(40), EnrollmentAvailable: ptr(23), SISClassNumber: ptr("10001"),
		}
		if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
			t.Fatalf("Class=%s\nwant  %s", g, w)
		}
	})

	meeting := func(days, start, end, place string) sis.Meeting {
		return sis.Meeting{Days: days, StartTime: start, EndTime: end, FacilityDescr: place}
	}
	base := func() sis.Section {
		return sis.Section{ClassNbr: "12345", Subject: "cs", CatalogNbr: "3120", Strm: "1262", ClassSection: "001"}
	}
	tests := []struct {
		name                       string
		edit                       func(*sis.Section)
		component, instructor      string
		days, start, end, location string
		capacity, available        int // -1 for null
	}{
		{name: "NoMeetings", edit: func(s *sis.Section) {}, capacity: -1, available: -1},
		{name: "TwoInstructors", edit: func(s *sis.Section) {
			s.Instructors = []sis.Instructor{{Name: "Ada Lovelace"}, {Name: " Alan Turing "}, {Name: ""}}
		}, instructor: "Ada Lovelace, Alan Turing", capacity: -1, available: -1},
		{name: "Staff", edit: func(s *sis.Section) { s.Instructors = []sis.Instructor{{Name: "Staff"}} },
			instructor: "Staff", capacity: -1, available: -1},
		{name: "ComponentCode", edit: func(s *sis.Section) { s.Component = "LAB" },
			component: "Laboratory", capacity: -1, available: -1},
		{name: "SectionTypeWins", edit: func(s *sis.Section) { s.Component = "DIS"; s.SectionType = "Discussion" },
			component: "Discussion", capacity: -1, available: -1},
		{name: "UnknownComponent", edit: func(s *sis.Section) { s.Component = "XYZ" },
			component: "XYZ", capacity: -1, available: -1},
		{name: "Morning", edit: func(s *sis.Section) {
			s.Meetings = []sis.Meeting{meeting("TuTh", "08.00.00.000000-05:00", "09.15.00.000000-05:00", "Nau Hall 101")}
		}, days: "TuTh", start: "0800", end: "0915", location: "Nau Hall 101", capacity: -1, available: -1},
		{name: "SameTimesMergeDays", edit: func(s *sis.Section) {
			s.Meetings = []sis.Meeting{
				meeting("Fr", "11.00.00.000000-05:00", "11.50.00.000000-05:00", "Rice Hall 130"),
				meeting("MoWe", "11.00.00.000000-05:00", "11.50.00.000000-05:00", "Rice Hall 130"),
			}
		}, days: "MoWeFr", start: "1100", end: "1150", location: "Rice Hall 130", capacity: -1, available: -1},
		{name: "OtherTimesKeepPrimary", edit: func(s *sis.Section) {
			s.Meetings = []sis.Meeting{
				meeting("MoWe", "10.00.00.000000-05:00", "10.50.00.000000-05:00", "Rice Hall 130"),
				meeting("Fr", "14.00.00.000000-05:00", "15.50.00.000000-05:00", "Olsson Hall 120"),
			}
		}, days: "MoWe", start: "1000", end: "1050", location: "Rice Hall 130; Olsson Hall 120", capacity: -1, available: -1},
		{name: "PrimaryIsFirstWithTime", edit: func(s *sis.Section) {
			s.Meetings = []sis.Meeting{
				meeting("TBA", "", "", "TBA"),
				meeting("Th", "13.30.00.000000-05:00", "14.45.00.000000-05:00", "Gilmer Hall 301"),
			}
		}, days: "Th", start: "1330", end: "1445", location: "Gilmer Hall 301", capacity: -1, available: -1},
		{name: "TBA", edit: func(s *sis.Section) {
			s.Meetings = []sis.Meeting{meeting("TBA", "00.00.00.000000-05:00", "00.00.00.000000-05:00", "")}
		}, capacity: -1, available: -1},
		{name: "BadTime", edit: func(s *sis.Section) {
			s.Meetings = []sis.Meeting{meeting("Mo", "25.00.00", "nonsense", "Web-Based")}
		}, days: "Mo", location: "Web-Based", capacity: -1, available: -1},
		{name: "Counts", edit: func(s *sis.Section) { s.ClassCapacity = ptr(30); s.EnrollmentAvailable = ptr(0) },
			capacity: 30, available: 0},
		{name: "AvailableFromTotal", edit: func(s *sis.Section) { s.ClassCapacity = ptr(30); s.EnrollmentTotal = ptr(25) },
			capacity: 30, available: 5},
	}
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	optInt := func(n int) *int {
		if n < 0 {
			return nil
		}
		return &n
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec := base()
			tt.edit(&sec)
			c, err := sec.Class()
			if err != nil {
				t.Fatal(err)
			}
			if c.Subject != "CS" || c.CatalogNumber != "3120" || c.Term != "1262" || str(c.SISClassNumber) != "12345" || str(c.ClassSection) != "001" {
				t.Fatalf("key=%s %s %s %s %s, want CS 3120 1262 12345 001", c.Subject, c.CatalogNumber, c.Term, str(c.SISClassNumber), str(c.ClassSection))
			}
			if c.Title != nil {
				t.Fatalf("Title=%q, want null", *c.Title)
			}
			got := []*string{c.Component, c.Instructor, c.Days, c.StartTime, c.EndTime, c.Location}
			want := []*string{opt(tt.component), opt(tt.instructor), opt(tt.days), opt(tt.start), opt(tt.end), opt(tt.location)}
			names := []string{"Component", "Instructor", "Days", "StartTime", "EndTime", "Location"}
			for i := range got {
				if str(got[i]) != str(want[i]) {
					t.Errorf("%s=%s, want %s", names[i], str(got[i]), str(want[i]))
				}
			}
			if mustJSON(t, c.ClassCapacity) != mustJSON(t, optInt(tt.capacity)) || mustJSON(t, c.EnrollmentAvailable) != mustJSON(t, optInt(tt.available)) {
				t.Errorf("capacity=%s available=%s, want %d %d (-1 null)", mustJSON(t, c.ClassCapacity), mustJSON(t, c.EnrollmentAvailable), tt.capacity, tt.available)
			}
		})
	}

	missing := []struct {
		name string
		edit func(*sis.Section)
	}{
		{"ErrNoSubject", func(s *sis.Section) { s.Subject = " " }},
		{"ErrNoCatalogNumber", func(s *sis.Section) { s.CatalogNbr = "" }},
		{"ErrNoTerm", func(s *sis.Section) { s.Strm = "" }},
		{"ErrNoClassNumber", func(s *sis.Section) { s.ClassNbr = "" }},
	}
	for _, tt := range missing {
		t.Run(tt.name, func(t *testing.T) {
			sec := base()
			tt.edit(&sec)
			if _, err := sec.Class(); err == nil {
				t.Fatal("err=nil, want an error for a section without its key")
			}
		})
	}
}

func TestFlexString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{`{"class_nbr":10001}`, "10001", true},
		{`{"class_nbr":"10001"}`, "10001", true},
		{`{"class_nbr":null}`, "", true},
		{`{"class_nbr":true}`, "", false},
		{`{"class_nbr":[1]}`, "", false},
	}
	for _, tt := range tests {
		var s sis.Section
		err := json.Unmarshal([]byte(tt.in), &s)
		if (err == nil) != tt.ok || string(s.ClassNbr) != tt.want {
			t.Errorf("%s: ClassNbr=%q err=%v, want %q ok=%v", tt.in, s.ClassNbr, err, tt.want, tt.ok)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
