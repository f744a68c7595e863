package persistence

import (
	"context"

	cg "github.com/commongrounds/commongrounds"
)

// EnrollmentStore stores which users are enrolled in which classes. Enrolling and dropping are
// idempotent. Dropping a class leaves the user's pseudonym in it alone, so re-joining keeps it.
type EnrollmentStore struct{ db *DB }

// NewEnrollmentStore returns the enrollment store of db.
func NewEnrollmentStore(db *DB) *EnrollmentStore { return &EnrollmentStore{db: db} }

// Enroll enrolls user in class; created is false when the user already was.
// Errors: class_not_found, user_not_found.
func (s *EnrollmentStore) Enroll(ctx context.Context, user cg.UserID, class cg.ClassID) (created bool, err error) {
	if !cg.ValidUUID(string(class)) {
		return false, cg.ErrClassNotFound
	}
	tag, err := s.db.Pool.Exec(ctx, `
		INSERT INTO user_classes (user_id, class_id) VALUES ($1, $2)
		ON CONFLICT (user_id, class_id) DO NOTHING`, user, class)
	if isCode(err, "23503") { // foreign_key_violation
		if constraintOf(err) == "user_classes_user_id_fkey" {
			return false, cg.Errorf(cg.EUSERNOTFOUND, "No such user.")
		}
		return false, cg.ErrClassNotFound
	}
	if err != nil {
		return false, wrap("enroll", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Drop ends user's enrollment in class, if any. Dropping a class one is not in, or one that
// does not exist, changes nothing and is no error: the contract answers 204 either way.
func (s *EnrollmentStore) Drop(ctx context.Context, user cg.UserID, class cg.ClassID) error {
	if !cg.ValidUUID(string(class)) || !cg.ValidUUID(string(user)) {
		return nil
	}
	_, err := s.db.Pool.Exec(ctx, `DELETE FROM user_classes WHERE user_id = $1 AND class_id = $2`, user, class)
	return wrap("drop class", err)
}

// IsEnrolled reports whether user is enrolled in class. An id that is not a UUID names no
// class, so the answer is false.
func (s *EnrollmentStore) IsEnrolled(ctx context.Context, user cg.UserID, class cg.ClassID) (bool, error) {
	if !cg.ValidUUID(string(class)) || !cg.ValidUUID(string(user)) {
		return false, nil
	}
	var ok bool
	err := s.db.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM user_classes WHERE user_id = $1 AND class_id = $2)`,
		user, class).Scan(&ok)
	return ok, wrap("is enrolled", err)
}

// ListUserClasses returns the classes user is enrolled in, ordered by term, subject, catalog
// number and section.
func (s *EnrollmentStore) ListUserClasses(ctx context.Context, user cg.UserID) ([]*cg.Class, error) {
	rows, err := s.db.Pool.Query(ctx, `
		SELECT `+prefixedClassColumns+`
		  FROM user_classes uc JOIN classes c ON c.id = uc.class_id
		 WHERE uc.user_id = $1
		 ORDER BY c.term, c.subject, c.catalog_number, coalesce(c.class_section, ''), c.id`, user)
	if err != nil {
		return nil, wrap("list user classes", err)
	}
	classes, err := collectClasses(rows)
	return classes, wrap("list user classes", err)
}

// CountEnrolled returns the number of users enrolled in class.
func (s *EnrollmentStore) CountEnrolled(ctx context.Context, class cg.ClassID) (int, error) {
	if !cg.ValidUUID(string(class)) {
		return 0, nil
	}
	var n int
	err := s.db.Pool.QueryRow(ctx, `SELECT count(*) FROM user_classes WHERE class_id = $1`, class).Scan(&n)
	return n, wrap("count enrolled", err)
}
