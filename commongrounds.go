// Package commongrounds holds the domain of Common Grounds: the types that cross package
// boundaries, the application error, and the interfaces of the stores and the broker. It imports
// nothing else of this module; storage (persistence), transport (api, hub) and the broker
// implementations depend on it, and cmd wires them together.
package commongrounds

import (
	"regexp"
	"time"
)

// UserID identifies a user. It never leaves the server inside a message, frame or list of
// messages: the distinct type keeps it from being put there by accident.
type UserID string

// ClassID identifies a class, and the class's room.
type ClassID string

// MessageID identifies a message.
type MessageID string

// SessionID identifies a sign-in session.
type SessionID string

// AnonID is a user's pseudonym within one class, such as Anon_a3f2e1.
type AnonID string

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ValidUUID reports whether s is a UUID in its canonical textual form. Identifiers from clients
// are checked with it before they reach a query.
func ValidUUID(s string) bool { return uuidRE.MatchString(s) }

// Role is a user's role.
type Role string

// The roles.
const (
	RoleStudent   Role = "student"
	RoleModerator Role = "moderator"
)

// User is an account as its owner sees it.
type User struct {
	ID            UserID    `json:"id"`
	Email         string    `json:"email"`
	ComputingID   *string   `json:"computing_id"`
	EmailVerified bool      `json:"email_verified"`
	PhoneVerified bool      `json:"phone_verified"`
	Role          Role      `json:"role"`
	CreatedAt     time.Time `json:"created_at"`
}

// Public returns the user as others see it.
func (u *User) Public() PublicUser {
	return PublicUser{ID: u.ID, Email: u.Email, ComputingID: u.ComputingID}
}

// PublicUser is a user as other users see it.
type PublicUser struct {
	ID          UserID  `json:"id"`
	Email       string  `json:"email"`
	ComputingID *string `json:"computing_id"`
}

// Class is a class section from the SIS. Its room is the class's chat room.
type Class struct {
	ID                  ClassID `json:"id"`
	Subject             string  `json:"subject"`
	CatalogNumber       string  `json:"catalog_number"`
	Term                string  `json:"term"`
	Title               *string `json:"title"`
	ClassSection        *string `json:"class_section"`
	Component           *string `json:"component"`
	Instructor          *string `json:"instructor"`
	Days                *string `json:"days"`
	StartTime           *string `json:"start_time"`
	EndTime             *string `json:"end_time"`
	Location            *string `json:"location"`
	ClassCapacity       *int    `json:"class_capacity"`
	EnrollmentAvailable *int    `json:"enrollment_available"`
	SISClassNumber      *string `json:"sis_class_number"`
}

// Message is a message of a class room as every client sees it. It has no field for its author:
// only the pseudonym leaves the server.
type Message struct {
	ID         MessageID  `json:"id"`
	Room       ClassID    `json:"room"`
	Seq        int64      `json:"seq"`
	AnonID     *AnonID    `json:"anon_id"`
	Content    *string    `json:"content"`
	ParentID   *MessageID `json:"parent_id"`
	ReplyCount int        `json:"reply_count"`
	CreatedAt  time.Time  `json:"created_at"`
	Hidden     bool       `json:"hidden"`
	Deleted    bool       `json:"deleted"`
}

// Session is a sign-in session: who is signed in, with which role, until when.
type Session struct {
	ID        SessionID
	UserID    UserID
	Role      Role
	ExpiresAt time.Time
	LastUsed  time.Time
}
