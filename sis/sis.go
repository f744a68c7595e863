// Package sis reads class sections from the university's Student Information System (a
// PeopleSoft Campus Solutions class search) and stores them as classes.
//
// The SIS answers GET {base}/WEBLIB_HCX_CM.H_CLASS_SEARCH.FieldFormula.IScript_ClassSearch
// ?institution=UVA01&term=1262&subject=CS&page=1 with a JSON array of sections, one page at a
// time until an empty array; IScript_ClassSearchOptions lists the subjects of a term. Client
// speaks that protocol (timeouts, retries with backoff, clear errors for HTML pages and broken
// JSON); Syncer pages through a term subject by subject and upserts each page as it arrives, so
// a failure part-way keeps everything stored before it; Periodic runs the sync on a timer, on
// one instance at a time.
package sis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	cg "github.com/commongrounds/commongrounds"
)

// FlexString is a JSON value the SIS sends as a string or as a number (class_nbr is a number,
// but it is stored as text).
type FlexString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *FlexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		*s = ""
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = FlexString(v)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("want a string or a number, got %s", b)
		}
		*s = FlexString(n.String())
	}
	return nil
}

// Section is one class section of the SIS class search. Only the fields the sync needs are
// read; the others are ignored.
type Section struct {
	ClassNbr            FlexString   `json:"class_nbr"`
	Subject             FlexString   `json:"subject"`
	CatalogNbr          FlexString   `json:"catalog_nbr"`
	Strm                FlexString   `json:"strm"`
	Descr               string       `json:"descr"`
	ClassSection        FlexString   `json:"class_section"`
	Component           string       `json:"component"`
	SectionType         string       `json:"section_type"`
	ClassCapacity       *int         `json:"class_capacity"`
	EnrollmentTotal     *int         `json:"enrollment_total"`
	EnrollmentAvailable *int         `json:"enrollment_available"`
	Instructors         []Instructor `json:"instructors"`
	Meetings            []Meeting    `json:"meetings"`
}

// Instructor is an instructor of a section; the SIS writes "Staff" when none is assigned.
type Instructor struct {
	Name string `json:"name"`
}

// Meeting is a weekly meeting of a section.
type Meeting struct {
	// Days are two-letter day names run together: MoWeFr.
	Days string `json:"days"`
	// StartTime and EndTime look like 11.00.00.000000-05:00.
	StartTime     string `json:"start_time"`
	EndTime       string `json:"end_time"`
	FacilityDescr string `json:"facility_descr"`
}

// Subject is a subject of a term, from the class-search options.
type Subject struct {
	Subject string `json:"subject"`
	Descr   string `json:"descr"`
}

// components spells out the SIS component codes, for sections without a section_type.
var components = map[string]string{
	"LEC": "Lecture",
	"LAB": "Laboratory",
	"DIS": "Discussion",
	"SEM": "Seminar",
	"IND": "Independent Study",
	"STO": "Studio",
	"PRA": "Practicum",
	"CLN": "Clinical",
	"WKS": "Workshop",
	"DRL": "Drill",
	"RSC": "Research",
	"TUT": "Tutorial",
}

// dayOrder is the order of the two-letter day names.
var dayOrder = []string{"Mo", "Tu", "We", "Th", "Fr", "Sa", "Su"}

var timeRE = regexp.MustCompile(`^(\d{1,2})[.:](\d{2})`)

// Class maps a section to a class. The subject, catalog number, term and class number are
// required; every other field is null when the SIS has nothing for it:
//
//   - sis_class_number is class_nbr as text; title is descr.
//   - component is the readable section_type (Lecture, Laboratory, Discussion), or the spelled
//     out component code when section_type is missing.
//   - instructor joins the instructors' names with ", ", as the SIS gives them (Staff too).
//   - days, start_time and end_time come from the section's primary meeting, the first one
//     with a start time; other meetings at the same times add their days (Mo + We = MoWe).
//     Times become HHMM: 11.00.00.000000-05:00 is 1100. Days of "TBA" or "-" are none.
//   - location is the primary meeting's facility, followed by any other meeting's different
//     facility, separated by "; ".
func (sec *Section) Class() (cg.Class, error) {
	c := cg.Class{
		Subject:       strings.ToUpper(strings.TrimSpace(string(sec.Subject))),
		CatalogNumber: strings.ToUpper(strings.TrimSpace(string(sec.CatalogNbr))),
		Term:          strings.TrimSpace(string(sec.Strm)),
	}
	nbr := strings.TrimSpace(string(sec.ClassNbr))
	switch {
	case c.Subject == "":
		return c, fmt.Errorf("section %s has no subject", nbr)
	case c.CatalogNumber == "":
		return c, fmt.Errorf("section %s of %s has no catalog_nbr", nbr, c.Subject)
	case c.Term == "":
		return c, fmt.Errorf("section %s of %s %s has no strm", nbr, c.Subject, c.CatalogNumber)
	case nbr == "":
		return c, fmt.Errorf("a section of %s %s has no class_nbr", c.Subject, c.CatalogNumber)
	}
	c.SISClassNumber = &nbr
	c.Title = optional(sec.Descr)
	c.ClassSection = optional(string(sec.ClassSection))
	c.Component = optional(sec.SectionType)
	if c.Component == nil {
		code := strings.ToUpper(strings.TrimSpace(sec.Component))
		if name, ok := components[code]; ok {
			c.Component = &name
		} else {
			c.Component = optional(code)
		}
	}
	c.Instructor = instructors(sec.Instructors)
	c.Days, c.StartTime, c.EndTime, c.Location = meetings(sec.Meetings)
	c.ClassCapacity = sec.ClassCapacity
	c.EnrollmentAvailable = sec.EnrollmentAvailable
	if c.EnrollmentAvailable == nil && sec.ClassCapacity != nil && sec.EnrollmentTotal != nil {
		n := max(*sec.ClassCapacity-*sec.EnrollmentTotal, 0)
		c.EnrollmentAvailable = &n
	}
	return c, nil
}

// optional returns nil for a blank string and the trimmed string otherwise.
func optional(s string) *string {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil
	}
	return &s
}

func instructors(list []Instructor) *string {
	var names []string
	seen := map[string]bool{}
	for _, in := range list {
		n := strings.TrimSpace(in.Name)
		if n != "" && !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	return optional(strings.Join(names, ", "))
}

// hhmm turns an SIS time such as 11.00.00.000000-05:00 into 1100; nil when there is none.
func hhmm(s string) *string {
	m := timeRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return nil
	}
	h, _ := strconv.Atoi(m[1])
	mm, _ := strconv.Atoi(m[2])
	if h > 23 || mm > 59 {
		return nil
	}
	t := fmt.Sprintf("%02d%02d", h, mm)
	return &t
}

// parseDays splits MoWeFr into its days; ok is false for text that is not made of day names.
func parseDays(s string) (days map[string]bool, ok bool) {
	days = map[string]bool{}
	for len(s) >= 2 {
		d := s[:2]
		found := false
		for _, name := range dayOrder {
			if strings.EqualFold(d, name) {
				days[name], found = true, true
			}
		}
		if !found {
			return nil, false
		}
		s = s[2:]
	}
	return days, s == "" && len(days) > 0
}

func joinDays(days map[string]bool) string {
	var b strings.Builder
	for _, d := range dayOrder {
		if days[d] {
			b.WriteString(d)
		}
	}
	return b.String()
}

// noDays are the SIS's ways of saying a meeting has no fixed days.
func noDays(s string) bool {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "", "-", "TBA", "TBD":
		return true
	}
	return false
}

func meetings(ms []Meeting) (days, start, end, location *string) {
	if len(ms) == 0 {
		return nil, nil, nil, nil
	}
	primary := 0
	for i, m := range ms {
		if hhmm(m.StartTime) != nil {
			primary = i
			break
		}
	}
	p := ms[primary]
	start, end = hhmm(p.StartTime), hhmm(p.EndTime)
	if start != nil && end != nil && *start == "0000" && *end == "0000" {
		start, end = nil, nil // PeopleSoft's midnight-to-midnight means "to be announced"
	}
	if !noDays(p.Days) {
		set, ok := parseDays(strings.TrimSpace(p.Days))
		if ok {
			for i, m := range ms {
				if i == primary || !equal(hhmm(m.StartTime), start) || !equal(hhmm(m.EndTime), end) {
					continue
				}
				if more, ok := parseDays(strings.TrimSpace(m.Days)); ok {
					for d := range more {
						set[d] = true
					}
				}
			}
			d := joinDays(set)
			days = &d
		} else {
			days = optional(p.Days)
		}
	}
	var places []string
	seen := map[string]bool{}
	order := append([]Meeting{p}, ms...)
	for _, m := range order {
		f := strings.TrimSpace(m.FacilityDescr)
		if f == "" || noDays(f) || seen[f] {
			continue
		}
		seen[f] = true
		places = append(places, f)
	}
	location = optional(strings.Join(places, "; "))
	return days, start, end, location
}

func equal(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
