// Package notify tells users of replies in the threads they take part in: after a reply is
// committed, off the publish path, it stores the notifications (the inbox is the truth), sends
// each to every socket of its user on any instance, and hands those of users with no socket
// open to the Pusher.
package notify

import (
	"context"
	"log/slog"
	"sync"
	"time"

	cg "github.com/commongrounds/commongrounds"
	"github.com/commongrounds/commongrounds/rooms"
)

// Notifier makes the notifications of replies. Publishing hands it each reply (Replied), which
// never blocks: a bounded queue feeds one worker, which stores the replies that queued up
// together in one statement. Set the fields, then call Start; Close stops it.
type Notifier struct {
	Store cg.NotificationStore
	// Service sends the notification frames through the broker to the users' sockets.
	Service *rooms.Service
	// Online reports whether a user has a socket open on any instance. Optional: without it
	// every user counts as online (nothing is pushed).
	Online func(ctx context.Context, user cg.UserID) bool
	// Pusher delivers notifications to the devices of users with no socket open (Web Push).
	// Optional.
	Pusher cg.Pusher
	// QueueSize bounds the replies waiting to be notified; past it a reply is not notified, and
	// logged. Default: 10,000.
	QueueSize int
	// Batch is the most replies notified in one statement. Default: 64.
	Batch int
	// Timeout bounds storing one batch. Default: 5 s.
	Timeout time.Duration
	Logger  *slog.Logger

	queue chan *cg.Message
	mu    sync.RWMutex
	done  bool // guarded by mu: Close was called
	wg    sync.WaitGroup
}

var _ rooms.ReplyNotifier = (*Notifier)(nil)

// Start starts the worker.
func (n *Notifier) Start() {
	if n.QueueSize <= 0 {
		n.QueueSize = 10000
	}
	if n.Batch <= 0 {
		n.Batch = 64
	}
	if n.Timeout <= 0 {
		n.Timeout = 5 * time.Second
	}
	if n.Logger == nil {
		n.Logger = slog.Default()
	}
	n.mu.Lock()
	n.queue = make(chan *cg.Message, n.QueueSize)
	n.mu.Unlock()
	n.wg.Add(1)
	go n.work()
}

// Replied queues a committed reply for its notifications, without blocking.
func (n *Notifier) Replied(reply *cg.Message) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.done || n.queue == nil {
		return
	}
	select {
	case n.queue <- reply:
	default:
		n.Logger.Warn("notification queue full: reply not notified", "message_id", reply.ID)
	}
}

// Close stops taking replies, notifies those queued (until ctx ends) and stops the worker.
func (n *Notifier) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.done || n.queue == nil {
		n.mu.Unlock()
		return nil
	}
	n.done = true
	close(n.queue)
	n.mu.Unlock()
	stopped := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// work notifies the queued replies, those that queued up together at once.
func (n *Notifier) work() {
	defer n.wg.Done()
	for first := range n.queue {
		batch := map[cg.MessageID]*cg.Message{first.ID: first}
	more:
		for len(batch) < n.Batch {
			select {
			case m, ok := <-n.queue:
				if !ok {
					break more
				}
				batch[m.ID] = m
			default:
				break more
			}
		}
		n.notify(batch)
	}
}

// notify stores the notifications of a batch of replies and delivers them.
func (n *Notifier) notify(replies map[cg.MessageID]*cg.Message) {
	ctx, cancel := context.WithTimeout(context.Background(), n.Timeout)
	defer cancel()
	ids := make([]cg.MessageID, 0, len(replies))
	for id := range replies {
		ids = append(ids, id)
	}
	stored, err := n.Store.NotifyReplies(ctx, ids)
	if err != nil {
		n.Logger.Error("store notifications", "replies", len(ids), "err", err)
		return
	}
	for _, s := range stored {
		reply := replies[s.MessageID]
		if reply == nil {
			continue
		}
		note := rooms.NotificationOf(s, reply)
		n.Service.AnnounceUser(s.User, rooms.UserEvent{Frame: rooms.NotificationFrame(note)})
		if n.Pusher != nil && n.Online != nil && !n.Online(ctx, s.User) {
			n.Pusher.Push(s.User, note)
		}
	}
}
