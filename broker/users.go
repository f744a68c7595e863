package broker

import (
	"context"
	"fmt"
	"strings"

	cg "github.com/commongrounds/commongrounds"
)

// PublishUser hands the event to the handler if the user is subscribed.
func (m *Memory) PublishUser(_ context.Context, user cg.UserID, payload []byte) error {
	m.mu.RLock()
	ok := m.users[user] > 0
	h := m.handler
	m.mu.RUnlock()
	if ok && h != nil {
		h.HandleUserEvent(user, payload)
	}
	return nil
}

// SubscribeUser starts delivering the user's events. Subscriptions are counted.
func (m *Memory) SubscribeUser(_ context.Context, user cg.UserID) error {
	m.mu.Lock()
	m.users[user]++
	m.mu.Unlock()
	return nil
}

// UnsubscribeUser undoes one SubscribeUser; the last one stops delivering the user's events.
func (m *Memory) UnsubscribeUser(_ context.Context, user cg.UserID) error {
	m.mu.Lock()
	if m.users[user]--; m.users[user] <= 0 {
		delete(m.users, user)
	}
	m.mu.Unlock()
	return nil
}

// userSubs is the Redis broker's record of the users subscribed here. User channels take the
// rooms' way: sharded pub/sub (one connection per node, shardsub.go) with RedisOptions.Sharded,
// so that a user's events travel only through the shard that owns the user's channel; plain
// pub/sub on the control channel's connection otherwise.
type userSubs struct {
	local map[cg.UserID]struct{} // guarded by Redis.mu: users subscribed here
}

func (b *Redis) userChannel(u cg.UserID) string { return b.opts.Prefix + "user:" + string(u) }

// dispatchUser hands an event of a user channel to the handler; false when channel is not one.
func (b *Redis) dispatchUser(h cg.BrokerHandler, channel string, payload []byte) bool {
	user, ok := strings.CutPrefix(channel, b.opts.Prefix+"user:")
	if ok {
		h.HandleUserEvent(cg.UserID(user), payload)
	}
	return ok
}

// SubscribeUser subscribes the user's channel and waits until Redis confirms it, so that an
// event published after it returns is not missed. Subscriptions are counted as rooms' are.
// When Redis is down, or does not confirm in time, it returns an error at once or after
// SubscribeTimeout; the subscription stays requested and takes effect when Redis is back.
func (b *Redis) SubscribeUser(ctx context.Context, user cg.UserID) error {
	// A socket does not wait for Redis to come back.
	return b.subscribeChannel(ctx, b.userChannel(user), func() {
		if b.users.local == nil {
			b.users.local = make(map[cg.UserID]struct{})
		}
		b.users.local[user] = struct{}{}
	}, false)
}

// UnsubscribeUser undoes one SubscribeUser; the last one stops receiving the user's events.
func (b *Redis) UnsubscribeUser(ctx context.Context, user cg.UserID) error {
	return b.unsubscribeChannel(ctx, b.userChannel(user), func() { delete(b.users.local, user) })
}

// PublishUser sends an event to the instances holding the user's sockets. While Redis is
// unreachable the event is handed to this instance's own subscriber directly and ErrUnavailable
// returned.
func (b *Redis) PublishUser(ctx context.Context, user cg.UserID, payload []byte) error {
	var err error
	if b.Up() {
		if b.opts.Sharded {
			err = b.client.SPublish(ctx, b.userChannel(user), payload).Err()
		} else {
			err = b.client.Publish(ctx, b.userChannel(user), payload).Err()
		}
		if err == nil {
			return nil
		}
		reloadTopology(b.client, err)
	} else {
		err = ErrUnavailable
	}
	b.mu.Lock()
	_, local := b.users.local[user]
	b.mu.Unlock()
	if h := b.getHandler(); local && h != nil {
		h.HandleUserEvent(user, payload)
	}
	return fmt.Errorf("publish user event: %w", err)
}

// Count returns the number of sockets the user holds across instances (entries not lapsed).
func (s *RedisSockets) Count(ctx context.Context, user cg.UserID) (int, error) {
	n, err := s.client.ZCount(ctx, s.key(user), fmt.Sprint(s.now().UnixMilli()), "+inf").Result()
	if err != nil {
		reloadTopology(s.client, err)
		return 0, fmt.Errorf("count sockets: %w", err)
	}
	return int(n), nil
}
