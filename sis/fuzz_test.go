package sis_test

import (
	"encoding/json"
	"regexp"
	"testing"

	"github.com/commongrounds/commongrounds/sis"
)

var hhmmRE = regexp.MustCompile(`^[0-2][0-9][0-5][0-9]$`)

// FuzzSectionClass feeds arbitrary sections to the mapping: it never panics, and what it
// produces always fits the schema (times HHMM, the key present).
func FuzzSectionClass(f *testing.F) {
	f.Add(`{"class_nbr":1,"subject":"CS","catalog_nbr":"1110","strm":"1262","meetings":[{"days":"MoWeFr","start_time":"11.00.00.000000-05:00","end_time":"11.50.00.000000-05:00"}]}`)
	f.Add(`{"class_nbr":"2","subject":"cs","catalog_nbr":"1","strm":"1","meetings":[{"days":"TBA","start_time":"99.99"},{"days":"Xy","start_time":"7:5"}]}`)
	f.Add(`{"class_nbr":3,"subject":"A","catalog_nbr":"B","strm":"C","meetings":[{"start_time":"23.59.59","end_time":"24.00.00"}],"instructors":[{"name":""},{"name":"Staff"}]}`)
	f.Add(`{"class_nbr":null,"subject":""}`)
	f.Fuzz(func(t *testing.T, in string) {
		var sec sis.Section
		if json.Unmarshal([]byte(in), &sec) != nil {
			return
		}
		c, err := sec.Class()
		if err != nil {
			return
		}
		if c.Subject == "" || c.CatalogNumber == "" || c.Term == "" || c.SISClassNumber == nil || *c.SISClassNumber == "" {
			t.Fatalf("class without its key: %+v", c)
		}
		for _, tm := range []*string{c.StartTime, c.EndTime} {
			if tm != nil && !hhmmRE.MatchString(*tm) {
				t.Fatalf("time %q is not HHMM", *tm)
			}
		}
		for _, s := range []*string{c.Title, c.ClassSection, c.Component, c.Instructor, c.Days, c.Location} {
			if s != nil && *s == "" {
				t.Fatal("an empty string where null belongs")
			}
		}
	})
}
