package hub

import (
	"context"
	"slices"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/rooms"
)

// Each socket subscribes the broker to its user's channel while it is open (the broker counts
// the subscriptions, so an instance holds the channel while it holds one of the user's
// sockets). Events of the user reach all the user's sockets here, whatever rooms they are in.

// subscribeUser subscribes the broker to the socket's user before its reader starts: an event
// published after the client's first reply reaches it. When the broker cannot confirm, the
// socket still serves; what it misses is in the store (markers, the inbox).
func (k *socket) subscribeUser() {
	h := k.t.hub
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.RoomReadyTimeout)
	defer cancel()
	if err := h.broker.SubscribeUser(ctx, k.s.auth.UserID); err != nil && ctx.Err() == nil {
		h.opts.Logger.Warn("subscribe user events", "err", err)
	}
}

// unsubscribeUser undoes subscribeUser; the socket has ended.
func (k *socket) unsubscribeUser() {
	h := k.t.hub
	ctx, cancel := context.WithTimeout(context.Background(), h.opts.UnsubscribeTimeout)
	defer cancel()
	if err := h.broker.UnsubscribeUser(ctx, k.s.auth.UserID); err != nil {
		h.opts.Logger.Warn("unsubscribe user events", "err", err)
	}
}

// HandleUserEvent implements cg.BrokerHandler: the event's frame goes to every socket of the
// user here but the one it came from.
func (h *Hub) HandleUserEvent(user cg.UserID, payload []byte) {
	e, err := rooms.DecodeUserEvent(payload)
	if err != nil {
		h.opts.Logger.Warn("drop malformed user event", "err", err)
		return
	}
	h.mu.Lock()
	var mine []*socket
	if u := h.byUser[user]; u != nil {
		mine = slices.Clone(u.sockets)
	}
	h.mu.Unlock()
	gather := h.busy()
	for _, k := range mine {
		if k.id != e.Origin {
			k.t.enqueueWith(e.Frame, gather)
		}
	}
}

// Online reports whether the user has a socket open on this instance or, with Options.Sockets,
// on any. When the count across instances cannot be had, the user counts as offline when they
// have no socket here.
func (h *Hub) Online(ctx context.Context, user cg.UserID) bool {
	h.mu.Lock()
	u := h.byUser[user]
	local := u != nil && len(u.sockets) > 0
	h.mu.Unlock()
	if local || h.opts.Sockets == nil {
		return local
	}
	n, err := h.opts.Sockets.Count(ctx, user)
	if err != nil {
		h.opts.Logger.Warn("count sockets across instances", "err", err)
		return false
	}
	return n > 0
}

// markRead sets the user's read marker in a room and answers with where it stands; the user's
// other sockets, on every instance, hear of it.
func (s *session) markRead(f *rooms.ClientFrame) error {
	ctx, done := s.t.work(s.deps.opts.PublishTimeout)
	defer done()
	seq, err := s.deps.service.MarkRead(ctx, s.auth.UserID, f.Room, f.Seq, s.id)
	if err != nil {
		return err
	}
	s.t.Write(rooms.ReadFrame(f.Ref, f.Room, seq))
	return nil
}
