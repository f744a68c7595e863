package hub

import (
	"context"
	"slices"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/rooms"
)

// maxSubscribeBatch is the most subscribe frames answered together.
const maxSubscribeBatch = 64

// subscribeAll answers subscribe frames in order. Their access checks are looked up together,
// and their replies are held back until all are queued, to go out in one write.
func (s *session) subscribeAll(fs []*rooms.ClientFrame) {
	ids := make([]cg.ClassID, len(fs))
	for i, f := range fs {
		ids[i] = f.Room
	}
	ctx, done := s.t.work(0)
	defer done()
	leaves := s.user.leaves.Load()
	access := s.deps.service.JoinAll(ctx, s.auth.UserID, ids)
	s.t.holdWrites()
	defer s.t.releaseWrites()
	for i, f := range fs {
		if ctx.Err() != nil {
			return // the socket has ended: what is left of the batch would only load the database
		}
		// A user who left a class since the lookup must not join its room: the LeaveRoom event
		// that ends such subscriptions may have come and gone before this one existed. The rooms
		// not yet joined are looked up again, together.
		if n := s.user.leaves.Load(); n != leaves {
			leaves = n
			copy(access[i:], s.deps.service.JoinAll(ctx, s.auth.UserID, ids[i:]))
		}
		// A room's backlog may take up to half the queue (room.attach); what the rooms before it
		// queued drains first, so that rooms answered together cannot overflow it.
		if i > 0 && s.t.queuedBytes() >= s.deps.opts.MaxQueueBytes/4 {
			if err := s.t.waitQueueBelow(ctx, s.deps.opts.MaxQueueBytes/4); err != nil {
				return // the socket is ending
			}
			s.t.holdWrites()
		}
		err := access[i].Err
		if err == nil {
			err = s.subscribe(ctx, f, access[i], leaves)
		}
		if err != nil {
			s.replyError(f.Ref, err)
		}
	}
}

// subscribe joins a room under the user's pseudonym (access.Anon), checked when the user's leaves
// count was leaves: the subscribed reply, then every message after since_seq, then live ones, with
// no gap and no duplicate.
func (s *session) subscribe(ctx context.Context, f *rooms.ClientFrame, access cg.AccessResult, leaves uint64) error {
	anon, k := access.Anon, s.deps.service.Anonymity()
	s.unsubscribe(f.Room) // a repeated subscribe starts over
	r := s.deps.rooms.acquire(f.Room)
	if err := r.ready(ctx); err != nil {
		s.deps.rooms.release(r)
		return err
	}
	m := &member{room: r, user: s.auth.UserID, anon: anon}
	since := f.SinceSeq
	for first := true; ; first = false {
		done, upTo := r.attach(s.t, m, since, first, func(lastSeq int64, online int) {
			s.t.Write(rooms.SubscribedFrame(f.Ref, f.Room, anon, lastSeq, online, access.Members, k))
		})
		if done {
			break
		}
		// Read the missed messages from the store, a page at a time, never letting the
		// queue grow past half its bound: the client is served at the pace it reads.
		for *since < upTo {
			msgs, err := s.deps.store.ListMessages(ctx, f.Room, cg.MessageFilter{AfterSeq: since, Limit: s.deps.opts.BackfillPage})
			if err != nil {
				s.deps.rooms.release(r)
				return err
			}
			if len(msgs) == 0 {
				break
			}
			s.t.releaseWrites() // the queue drains while the store is read
			for _, msg := range msgs {
				if err := s.t.waitQueueBelow(ctx, s.deps.opts.MaxQueueBytes/2); err != nil {
					s.deps.rooms.release(r)
					return err
				}
				s.t.Write(rooms.MessageFrame(msg))
			}
			last := msgs[len(msgs)-1].Seq
			since = &last
		}
	}
	s.rooms = append(s.rooms, m)
	if s.user.leaves.Load() != leaves {
		// Left while joining (the room's backfill, its readiness): leave as the event would have
		// had it come a moment later, unless the event did.
		if _, err := s.deps.service.Join(ctx, s.auth.UserID, f.Room); err != nil {
			if s.unsubscribe(f.Room) {
				s.t.Write(rooms.UnsubscribedFrame("", f.Room))
			}
			if cg.ErrorCode(err) != cg.ENOTENROLLED {
				return err
			}
		}
	}
	return nil
}

// unsubscribe leaves a room, if joined.
// It reports whether the socket was still a member (a LeaveRoom event may have detached it).
func (s *session) unsubscribe(id cg.ClassID) bool {
	i := s.joined(id)
	if i < 0 {
		return false
	}
	m := s.rooms[i]
	s.rooms = slices.Delete(s.rooms, i, i+1)
	member := m.room.detach(s.t)
	s.deps.rooms.release(m.room)
	return member
}

// joined returns the index in s.rooms of the room id, or -1.
func (s *session) joined(id cg.ClassID) int {
	return slices.IndexFunc(s.rooms, func(m *member) bool { return m.room.id == id })
}
