package persistence_test

import (
	"context"
	"testing"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/internal/testenv"
	"github.com/commongrounds/commongrounds/persistence"
)

// TestHiddenBy: a message hidden by flags says "flags", one hidden by a moderator "moderator",
// a restored one nothing, in the event, the history and the moderators' queue alike.
func TestHiddenBy(t *testing.T) {
	t.Parallel()
	db := testenv.MustOpenDB(t)
	ctx := context.Background()
	store := persistence.NewMessageStore(db)
	class, users := memberFixture(t, db, 4)
	author, mod := users[0], users[3]
	post := func(content string) *cg.Message {
		t.Helper()
		m, _, err := store.CreateMessage(ctx, cg.NewMessage{Class: class, User: author, Content: content})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	hiddenBy := func(m *cg.Message) string {
		if m.HiddenBy == nil {
			return ""
		}
		return *m.HiddenBy
	}
	history := func(id cg.MessageID) *cg.Message {
		t.Helper()
		page, err := store.ListMessages(ctx, class, cg.MessageFilter{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page.Messages {
			if m.ID == id {
				return m
			}
		}
		t.Fatalf("message %s not in the history", id)
		return nil
	}

	t.Run("Flags", func(t *testing.T) {
		m := post("flagged twice")
		if ev, err := store.FlagMessage(ctx, m.ID, users[1], "spam", 2); err != nil || ev != nil {
			t.Fatalf("first flag: event %v, err %v; want neither", ev, err)
		}
		ev, err := store.FlagMessage(ctx, m.ID, users[2], "spam", 2)
		if err != nil || ev == nil {
			t.Fatalf("second flag: event %v, err %v; want the hide", ev, err)
		}
		if got := hiddenBy(ev.Message); !ev.Message.Hidden || got != "flags" {
			t.Fatalf("event: hidden %v by %q, want hidden by flags", ev.Message.Hidden, got)
		}
		if got := hiddenBy(history(m.ID)); got != "flags" {
			t.Fatalf("history: hidden_by %q, want flags", got)
		}
		flagged, _, err := store.ListFlagged(ctx, 10, "")
		if err != nil || len(flagged) == 0 || flagged[0].ID != m.ID || hiddenBy(&flagged[0].Message) != "flags" {
			t.Fatalf("flagged queue: %v, %v; want the message hidden by flags first", flagged, err)
		}
	})
	t.Run("Moderator", func(t *testing.T) {
		m := post("hidden by a moderator")
		ev, err := store.SetHidden(ctx, m.ID, mod, true)
		if err != nil || ev == nil || hiddenBy(ev.Message) != "moderator" {
			t.Fatalf("hide: event %+v, err %v; want hidden by moderator", ev, err)
		}
		if got := hiddenBy(history(m.ID)); got != "moderator" {
			t.Fatalf("history: hidden_by %q, want moderator", got)
		}
		ev, err = store.SetHidden(ctx, m.ID, mod, false)
		if err != nil || ev == nil || ev.Message.Hidden || ev.Message.HiddenBy != nil {
			t.Fatalf("restore: event %+v, err %v; want visible with no hidden_by", ev, err)
		}
		if got := history(m.ID); got.HiddenBy != nil || got.Content == nil {
			t.Fatalf("history after restore: %+v, want visible with no hidden_by", got)
		}
	})
}
