package sis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// ErrNotSections is a classes file that is neither a list of sections nor a class-search page:
// the class-search options, an HTML page, JSON of another shape.
var ErrNotSections = errors.New("not a list of sections or a class-search page")

// ParseSections reads a classes file: a JSON array of sections in the SIS format, which is also
// what one page of the class search is (an empty page is an empty list). Anything else is
// ErrNotSections; JSON that ends early is ErrTruncated.
func ParseSections(body []byte) ([]Section, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrNotSections)
	}
	if trimmed[0] != '[' {
		return nil, notSections(trimmed)
	}
	var items []json.RawMessage
	if _, err := decodeJSON(body, &items); err != nil {
		if errors.Is(err, ErrTruncated) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrNotSections, err)
	}
	sections := make([]Section, len(items))
	named := false
	for i, item := range items {
		item = bytes.TrimSpace(item)
		if len(item) == 0 || item[0] != '{' {
			return nil, fmt.Errorf("%w: item %d is not an object", ErrNotSections, i+1)
		}
		if err := json.Unmarshal(item, &sections[i]); err != nil {
			return nil, fmt.Errorf("%w: item %d: %w", ErrNotSections, i+1, err)
		}
		named = named || sections[i].ClassNbr != "" || sections[i].CatalogNbr != ""
	}
	if len(sections) > 0 && !named {
		return nil, fmt.Errorf("%w: no item has a class_nbr or a catalog_nbr", ErrNotSections)
	}
	return sections, nil
}

// notSections describes a file that is not an array at all.
func notSections(b []byte) error {
	switch {
	case b[0] == '<':
		return fmt.Errorf("%w: it is an HTML page", ErrNotSections)
	case b[0] == '{':
		var obj map[string]json.RawMessage
		if json.Unmarshal(b, &obj) == nil && obj["subjects"] != nil {
			return fmt.Errorf("%w: it is the class-search options (its subjects), which list no sections", ErrNotSections)
		}
		return fmt.Errorf("%w: it is a JSON object, not an array", ErrNotSections)
	}
	return ErrNotSections
}

// IsOptions reports whether a classes file is the class-search options of a term, which an SIS
// dump holds beside its pages.
func IsOptions(body []byte) bool {
	var obj struct {
		Subjects []Subject `json:"subjects"`
	}
	b := bytes.TrimSpace(body)
	return len(b) > 0 && b[0] == '{' && json.Unmarshal(b, &obj) == nil && obj.Subjects != nil
}

// ImportSections stores sections batch by batch (batch sections, or all at once when batch is
// 0 or more), each batch in one transaction, and calls progress, when it is not nil, with the
// counts so far after each batch. Sections without a subject, catalog number, term or class
// number are skipped and counted. On error the batches stored before stay stored; importing
// again is harmless (a stored section is found unchanged).
func ImportSections(ctx context.Context, store Store, sections []Section, syncedAt time.Time, batch int, progress func(Counts)) (Counts, error) {
	var total Counts
	classes := make([]cg.Class, 0, len(sections))
	for i := range sections {
		class, err := sections[i].Class()
		if err != nil {
			total.Skipped++
			continue
		}
		classes = append(classes, class)
	}
	if batch <= 0 {
		batch = len(classes)
	}
	for len(classes) > 0 {
		n := min(batch, len(classes))
		var c Counts
		var err error
		c.Created, c.Updated, c.Unchanged, err = store.UpsertClasses(ctx, classes[:n], syncedAt.UTC())
		if err != nil {
			return total, fmt.Errorf("store classes: %w", err)
		}
		c.Sections = c.Created + c.Updated + c.Unchanged
		total.Add(c)
		classes = classes[n:]
		if progress != nil {
			progress(total)
		}
	}
	return total, nil
}
