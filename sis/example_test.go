package sis_test

import (
	"encoding/json"
	"fmt"

	"github.com/commongrounds/commongrounds/sis"
)

// A section of the SIS class search becomes a class: the readable component, the instructors
// joined, times as HHMM, and days merged from the meetings at the same time.
func ExampleSection_Class() {
	var sec sis.Section
	_ = json.Unmarshal([]byte(`{
		"class_nbr": 10281, "subject": "CS", "catalog_nbr": "3120", "strm": "1262",
		"descr": "Discrete Mathematics and Theory 2", "class_section": "001",
		"component": "LEC", "section_type": "Lecture", "class_capacity": 120, "enrollment_available": 62,
		"instructors": [{"name": "Barbara Wirth"}, {"name": "Staff"}],
		"meetings": [
			{"days": "MoWe", "start_time": "11.00.00.000000-05:00", "end_time": "11.50.00.000000-05:00", "facility_descr": "Thornton Hall E316"},
			{"days": "Fr", "start_time": "11.00.00.000000-05:00", "end_time": "11.50.00.000000-05:00", "facility_descr": "Rice Hall 130"}
		]}`), &sec)
	c, err := sec.Class()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Subject, c.CatalogNumber, *c.ClassSection, *c.Component, *c.SISClassNumber)
	fmt.Println(*c.Instructor)
	fmt.Println(*c.Days, *c.StartTime, *c.EndTime)
	fmt.Println(*c.Location)
	// Output:
	// CS 3120 001 Lecture 10281
	// Barbara Wirth, Staff
	// MoWeFr 1100 1150
	// Thornton Hall E316; Rice Hall 130
}
