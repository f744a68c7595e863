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

// subscribeUser subscribes the broker to the socket's user before the socket reads its first
// frame: an event published after the client's first reply reaches it. When the broker cannot
// confirm, the socket still serves; what it misses is in the store (markers, the inbox).
func (c *conn) subscribeUser() {
	ctx, done := c.work(c.hub.opts.RoomReadyTimeout)
	defer done()
	if err := c.hub.broker.SubscribeUser(ctx, c.session.UserID); err != nil && ctx.Err() == nil {
		c.hub.opts.Logger.Warn("subscribe user events", "err", err)
	}
}

// unsubscribeUser undoes subscribeUser; the socket has ended.
func (c *conn) unsubscribeUser() {
	ctx, cancel := context.WithTimeout(context.Background(), c.hub.opts.UnsubscribeTimeout)
	defer cancel()
	if err := c.hub.broker.UnsubscribeUser(ctx, c.session.UserID); err != nil {
		c.hub.opts.Logger.Warn("unsubscribe user events", "err", err)
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
	var mine []*conn
	if u := h.byUser[user]; u != nil {
		mine = slices.Clone(u.conns)
	}
	h.mu.Unlock()
	gather := h.busy()
	for _, c := range mine {
		if c.id != e.Origin {
			c.enqueueWith(e.Frame, gather)
		}
	}
}

// Online reports whether the user has a socket open on this instance or, with Options.Sockets,
// on any. When the count across instances cannot be had, the user counts as offline when they
// have no socket here.
func (h *Hub) Online(ctx context.Context, user cg.UserID) bool {
	h.mu.Lock()
	u := h.byUser[user]
	local := u != nil && len(u.conns) > 0
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
func (c *conn) markRead(f *rooms.ClientFrame) error {
	ctx, done := c.work(c.hub.opts.PublishTimeout)
	defer done()
	seq, err := c.hub.service.MarkRead(ctx, c.session.UserID, f.Room, f.Seq, c.id)
	if err != nil {
		return err
	}
	c.enqueue(rooms.ReadFrame(f.Ref, f.Room, seq))
	return nil
}
