package sis_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/commongrounds/commongrounds/sis"
)

func TestParseSections(t *testing.T) {
	t.Parallel()
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Run("OKPage", func(t *testing.T) {
		sections, err := sis.ParseSections(read("class-search-term-1262-page-1.json"))
		if err != nil || len(sections) != 50 {
			t.Fatalf("%d sections, err=%v; want 50", len(sections), err)
		}
		if sections[0].ClassNbr != "10001" || sections[0].Subject != "CS" {
			t.Fatalf("first section %+v, want class 10001 of CS", sections[0])
		}
	})
	t.Run("OKEmptyPage", func(t *testing.T) {
		sections, err := sis.ParseSections(read("class-search-term-1262-page-4.json"))
		if err != nil || len(sections) != 0 {
			t.Fatalf("%d sections, err=%v; want none", len(sections), err)
		}
	})
	t.Run("ErrTruncated", func(t *testing.T) {
		b := read("class-search-term-1262-page-1.json")
		if _, err := sis.ParseSections(b[:len(b)/2]); !errors.Is(err, sis.ErrTruncated) {
			t.Fatalf("err=%v, want ErrTruncated", err)
		}
	})
	for name, in := range map[string][]byte{
		"ErrOptions":  read("class-search-options-term-1262.json"),
		"ErrHTML":     []byte("<html><title>Sign in</title></html>"),
		"ErrEmpty":    []byte(" \n"),
		"ErrNumbers":  []byte("[1, 2, 3]"),
		"ErrSubjects": []byte(`[{"subject":"CS","descr":"Computer Science"}]`),
		"ErrObject":   []byte(`{"classes":"none"}`),
		"ErrString":   []byte(`"sections"`),
		"ErrTrailing": []byte(`[] []`),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := sis.ParseSections(in); !errors.Is(err, sis.ErrNotSections) {
				t.Fatalf("err=%v, want ErrNotSections", err)
			}
		})
	}
	t.Run("IsOptions", func(t *testing.T) {
		if !sis.IsOptions(read("class-search-options-term-1262.json")) || sis.IsOptions(read("class-search-term-1262-page-1.json")) {
			t.Fatal("IsOptions does not tell the options from a page")
		}
	})
}

// TestSampleSections: the embedded sample catalogue parses, is a few dozen sections of the
// sample term, and every section makes a class.
func TestSampleSections(t *testing.T) {
	t.Parallel()
	sections := sis.SampleSections()
	if len(sections) < 24 || len(sections) > 60 {
		t.Fatalf("%d sample sections, want a few dozen", len(sections))
	}
	seen := map[string]bool{}
	for _, sec := range sections {
		c, err := sec.Class()
		if err != nil {
			t.Fatal(err)
		}
		if c.Term != sis.SampleTerm || sis.ValidTerm(c.Term) {
			t.Fatalf("class %s %s has term %q, want %q (no real term)", c.Subject, c.CatalogNumber, c.Term, sis.SampleTerm)
		}
		if seen[*c.SISClassNumber] {
			t.Fatalf("class number %s twice", *c.SISClassNumber)
		}
		seen[*c.SISClassNumber] = true
	}
}
