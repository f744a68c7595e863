package sis

import (
	"context"
	_ "embed"
	"fmt"
	"time"
)

// SampleTerm is the term of the sample catalogue. It is no SIS term (those are four digits), so
// that nobody takes the sample classes for real ones.
const SampleTerm = "SAMPLE"

// sampleJSON is the sample catalogue: a few dozen sections of made-up classes in the SIS
// format, all of term SampleTerm.
//
//go:embed sample/classes.json
var sampleJSON []byte

// SampleSections returns the sections of the sample catalogue.
func SampleSections() []Section {
	sections, err := ParseSections(sampleJSON)
	if err != nil {
		panic(fmt.Sprintf("sis: the embedded sample catalogue: %v", err)) // a broken build, caught by the tests
	}
	return sections
}

// ImportSample stores the sample catalogue in one transaction.
func ImportSample(ctx context.Context, store Store, now time.Time) (Counts, error) {
	return ImportSections(ctx, store, SampleSections(), now, 0, nil)
}
