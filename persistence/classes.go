package persistence

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	cg "github.com/commongrounds/commongrounds"
)

// ClassStore stores class sections: the SIS sync writes them, search and detail read them.
type ClassStore struct{ db *DB }

// NewClassStore returns the class store of db.
func NewClassStore(db *DB) *ClassStore { return &ClassStore{db: db} }

// classColumns are the columns of cg.Class, in the order scanClass reads them.
const classColumns = `id, subject, catalog_number, term, title, class_section, component, instructor,
	days, start_time, end_time, location, class_capacity, enrollment_available, sis_class_number`

// prefixedClassColumns is classColumns qualified with the alias c.
var prefixedClassColumns = func() string {
	cols := strings.Split(classColumns, ",")
	for i, c := range cols {
		cols[i] = "c." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

func scanClass(row pgx.Row, extra ...any) (*cg.Class, error) {
	var c cg.Class
	dst := []any{&c.ID, &c.Subject, &c.CatalogNumber, &c.Term, &c.Title, &c.ClassSection, &c.Component,
		&c.Instructor, &c.Days, &c.StartTime, &c.EndTime, &c.Location, &c.ClassCapacity,
		&c.EnrollmentAvailable, &c.SISClassNumber}
	if err := row.Scan(append(dst, extra...)...); err != nil {
		return nil, err
	}
	return &c, nil
}

// collectClasses reads every row of rows as a class.
func collectClasses(rows pgx.Rows) ([]*cg.Class, error) {
	defer rows.Close()
	classes := []*cg.Class{}
	for rows.Next() {
		c, err := scanClass(rows)
		if err != nil {
			return nil, err
		}
		classes = append(classes, c)
	}
	return classes, rows.Err()
}

// UpsertClasses stores classes in one transaction, matching existing rows on (subject,
// catalog_number, term, sis_class_number), and reports how many rows it created, how many it
// updated because a field differed, and how many were already the same. Every row it saw gets
// last_synced_at = syncedAt. Either every class is stored or, on error, none of this call's.
// Classes without a subject, catalog number or term are refused with invalid.
func (s *ClassStore) UpsertClasses(ctx context.Context, classes []cg.Class, syncedAt time.Time) (created, updated, unchanged int, err error) {
	for i := range classes {
		c := &classes[i]
		if c.Subject == "" || c.CatalogNumber == "" || c.Term == "" {
			return 0, 0, 0, cg.Errorf(cg.EINVALID, "Class %d has no subject, catalog number or term.", i)
		}
	}
	err = pgx.BeginFunc(ctx, s.db.Pool, func(tx pgx.Tx) error {
		created, updated, unchanged = 0, 0, 0
		for i := range classes {
			c := &classes[i]
			// The update happens only when a field differs, so that xmax tells a new row (0)
			// from an updated one, and no row at all means nothing changed.
			var inserted bool
			err := tx.QueryRow(ctx, `
				INSERT INTO classes (subject, catalog_number, term, sis_class_number, title, class_section,
				                     component, instructor, days, start_time, end_time, location,
				                     class_capacity, enrollment_available, last_synced_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
				ON CONFLICT (subject, catalog_number, term, sis_class_number) DO UPDATE SET
				       title = EXCLUDED.title, class_section = EXCLUDED.class_section,
				       component = EXCLUDED.component, instructor = EXCLUDED.instructor,
				       days = EXCLUDED.days, start_time = EXCLUDED.start_time, end_time = EXCLUDED.end_time,
				       location = EXCLUDED.location, class_capacity = EXCLUDED.class_capacity,
				       enrollment_available = EXCLUDED.enrollment_available,
				       last_synced_at = EXCLUDED.last_synced_at
				 WHERE (classes.title, classes.class_section, classes.component, classes.instructor,
				        classes.days, classes.start_time, classes.end_time, classes.location,
				        classes.class_capacity, classes.enrollment_available)
				       IS DISTINCT FROM
				       (EXCLUDED.title, EXCLUDED.class_section, EXCLUDED.component, EXCLUDED.instructor,
				        EXCLUDED.days, EXCLUDED.start_time, EXCLUDED.end_time, EXCLUDED.location,
				        EXCLUDED.class_capacity, EXCLUDED.enrollment_available)
				RETURNING xmax = 0`,
				c.Subject, c.CatalogNumber, c.Term, c.SISClassNumber, c.Title, c.ClassSection,
				c.Component, c.Instructor, c.Days, c.StartTime, c.EndTime, c.Location,
				c.ClassCapacity, c.EnrollmentAvailable, syncedAt).Scan(&inserted)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				unchanged++
				_, err = tx.Exec(ctx, `
					UPDATE classes SET last_synced_at = $5
					 WHERE subject = $1 AND catalog_number = $2 AND term = $3
					   AND sis_class_number IS NOT DISTINCT FROM $4`,
					c.Subject, c.CatalogNumber, c.Term, c.SISClassNumber, syncedAt)
				if err != nil {
					return err
				}
			case err != nil:
				return fmt.Errorf("class %s %s (%s): %w", c.Subject, c.CatalogNumber, deref(c.SISClassNumber), err)
			case inserted:
				created++
			default:
				updated++
			}
		}
		return nil
	})
	if err != nil {
		return 0, 0, 0, wrap("upsert classes", err)
	}
	return created, updated, unchanged, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// FindClassByID returns the class with id; class_not_found if there is none (also for an id
// that is not a UUID).
func (s *ClassStore) FindClassByID(ctx context.Context, id cg.ClassID) (*cg.Class, error) {
	if !cg.ValidUUID(string(id)) {
		return nil, cg.ErrClassNotFound
	}
	c, err := scanClass(s.db.Pool.QueryRow(ctx, `SELECT `+classColumns+` FROM classes WHERE id = $1`, id))
	if err != nil {
		return nil, notFound("find class", err, cg.ECLASSNOTFOUND, "No such class.")
	}
	return c, nil
}

// FindClassWithCount returns the class with id and the number of users enrolled in it;
// class_not_found if there is none.
func (s *ClassStore) FindClassWithCount(ctx context.Context, id cg.ClassID) (*cg.Class, int, error) {
	if !cg.ValidUUID(string(id)) {
		return nil, 0, cg.ErrClassNotFound
	}
	var n int
	c, err := scanClass(s.db.Pool.QueryRow(ctx, `
		SELECT `+prefixedClassColumns+`, (SELECT count(*) FROM user_classes uc WHERE uc.class_id = c.id)
		  FROM classes c WHERE c.id = $1`, id), &n)
	if err != nil {
		return nil, 0, notFound("find class", err, cg.ECLASSNOTFOUND, "No such class.")
	}
	return c, n, nil
}

// ClassExists reports whether a class with id exists; an id that is not a UUID names none.
func (s *ClassStore) ClassExists(ctx context.Context, id cg.ClassID) (bool, error) {
	if !cg.ValidUUID(string(id)) {
		return false, nil
	}
	var ok bool
	err := s.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM classes WHERE id = $1)`, id).Scan(&ok)
	return ok, wrap("class exists", err)
}

// CountClasses returns the number of classes of term, or of every term when term is "".
func (s *ClassStore) CountClasses(ctx context.Context, term string) (int, error) {
	var n int
	err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM classes WHERE $1 = '' OR term = $1`, term).Scan(&n)
	return n, wrap("count classes", err)
}

// ClassFilter selects classes for ListClasses. Empty fields do not filter.
type ClassFilter struct {
	// Term is the SIS term (strm), such as 1262.
	Term string
	// Subject matches the subject exactly, ignoring case.
	Subject string
	// CatalogNumber matches the catalog number exactly.
	CatalogNumber string
	// Query is free text matched against "SUBJECT NUMBER Title Instructor ClassNumber" (see
	// SearchPatterns).
	Query string
	// Cursor continues a listing where the previous page ended; "" starts at the beginning.
	Cursor string
	// Limit is the page size, 1 to MaxLimit. Default: DefaultLimit.
	Limit int
}

// Page sizes of the lists.
const (
	DefaultLimit = 50
	MaxLimit     = 200
)

// ClassSearchExpr is the text that free-text class search matches with ILIKE: the course, the
// title, the instructor and the SIS class number. It is the expression of the trigram index
// classes_search_trgm, which serves a query only when it uses exactly this expression.
const ClassSearchExpr = `(subject || ' ' || catalog_number || ' ' || coalesce(title, '') || ' ' || ` +
	`coalesce(instructor, '') || ' ' || coalesce(sis_class_number, ''))`

// courseRE matches a query that names a course: a subject and a number, with or without a
// space between them (CS 3120, cs3120, MATH 1310E).
var courseRE = regexp.MustCompile(`^([A-Za-z]{2,8})\s*([0-9]{3,5}[A-Za-z]?)$`)

// SearchPatterns turns a free-text query into the substrings that a class must all contain
// (ignoring case) in "SUBJECT NUMBER Title Instructor ClassNumber". A course name such as
// "CS3120" or "cs  3120" becomes the one pattern "CS 3120"; any other text becomes one pattern
// per word, so "basit" finds an instructor and "10281" a class number.
func SearchPatterns(q string) []string {
	words := strings.Fields(q)
	if len(words) == 0 {
		return nil
	}
	joined := strings.Join(words, " ")
	if m := courseRE.FindStringSubmatch(joined); m != nil {
		return []string{strings.ToUpper(m[1]) + " " + strings.ToUpper(m[2])}
	}
	return words
}

// likeEscaper escapes the wildcards of LIKE, whose default escape character is the backslash.
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// classCursor is the position after which a listing continues: the sort key of the last class
// of the previous page.
type classCursor struct {
	Term, Subject, CatalogNumber, Section string
	ID                                    cg.ClassID
}

func encodeClassCursor(c *cg.Class) string {
	key := []string{c.Term, c.Subject, c.CatalogNumber, deref(c.ClassSection), string(c.ID)}
	b, _ := json.Marshal(key)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeClassCursor(s string) (*classCursor, error) {
	bad := cg.Errorf(cg.EINVALIDCURSOR, "The cursor is not one this server gave out.")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, bad
	}
	var key []string
	if err := json.Unmarshal(b, &key); err != nil || len(key) != 5 || !cg.ValidUUID(key[4]) {
		return nil, bad
	}
	for _, k := range key {
		if !cg.StorableText(k) {
			return nil, bad
		}
	}
	return &classCursor{Term: key[0], Subject: key[1], CatalogNumber: key[2], Section: key[3], ID: cg.ClassID(key[4])}, nil
}

// ListClasses returns one page of the classes that match f, ordered by term, subject, catalog
// number, section and id, and the cursor of the next page ("" after the last page). Paging is
// by key, so that classes added or changed between pages are never repeated or skipped.
// Errors: invalid_cursor, invalid_limit.
func (s *ClassStore) ListClasses(ctx context.Context, f ClassFilter) ([]*cg.Class, string, error) {
	if f.Limit == 0 {
		f.Limit = DefaultLimit
	}
	if f.Limit < 1 || f.Limit > MaxLimit {
		return nil, "", cg.Errorf(cg.EINVALIDLIMIT, "limit must be between 1 and %d.", MaxLimit)
	}
	var conds []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if t := strings.TrimSpace(f.Term); t != "" {
		conds = append(conds, "term = "+arg(t))
	}
	if sub := strings.TrimSpace(f.Subject); sub != "" {
		conds = append(conds, "subject = "+arg(strings.ToUpper(sub)))
	}
	if n := strings.TrimSpace(f.CatalogNumber); n != "" {
		conds = append(conds, "catalog_number = "+arg(strings.ToUpper(n)))
	}
	for _, p := range SearchPatterns(f.Query) {
		conds = append(conds, ClassSearchExpr+" ILIKE "+arg("%"+likeEscaper.Replace(p)+"%"))
	}
	if f.Cursor != "" {
		cur, err := decodeClassCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		conds = append(conds, fmt.Sprintf("(term, subject, catalog_number, coalesce(class_section, ''), id) > (%s, %s, %s, %s, %s::uuid)",
			arg(cur.Term), arg(cur.Subject), arg(cur.CatalogNumber), arg(cur.Section), arg(cur.ID)))
	}
	sql := `SELECT ` + classColumns + ` FROM classes`
	if len(conds) > 0 {
		sql += " WHERE " + strings.Join(conds, " AND ")
	}
	sql += " ORDER BY term, subject, catalog_number, coalesce(class_section, ''), id LIMIT " + arg(f.Limit+1)
	rows, err := s.db.Pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", wrap("list classes", err)
	}
	classes, err := collectClasses(rows)
	if err != nil {
		return nil, "", wrap("list classes", err)
	}
	next := ""
	if len(classes) > f.Limit {
		classes = classes[:f.Limit]
		next = encodeClassCursor(classes[len(classes)-1])
	}
	return classes, next, nil
}

// syncLockKey is the Postgres advisory lock that one instance holds while it runs the periodic
// SIS sync.
const syncLockKey int64 = 0x636c_7379_6e63 // "clsync"

// WithSyncLock runs fn while this process holds the SIS-sync advisory lock, and reports
// whether it ran: when another session holds the lock it returns at once with ran false. The
// lock belongs to one pooled connection, held until fn returns; if that connection is lost, so
// is the lock, and another instance may take over.
func (s *ClassStore) WithSyncLock(ctx context.Context, fn func(context.Context) error) (ran bool, err error) {
	conn, err := s.db.Pool.Acquire(ctx)
	if err != nil {
		return false, wrap("acquire connection", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, syncLockKey).Scan(&locked); err != nil {
		return false, wrap("try sync lock", err)
	}
	if !locked {
		return false, nil
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, uerr := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, syncLockKey); uerr != nil {
			// A connection that may still hold the lock must not go back to the pool.
			_ = conn.Conn().Close(uctx)
		}
	}()
	return true, fn(ctx)
}
