package push

import (
	"sync"
	"time"

	cg "github.com/commongrounds/commongrounds"
)

// maxSlots bounds the (user, thread) pairs the coalescer remembers; past it, notifications go
// out uncoalesced rather than grow the map without end.
const maxSlots = 100_000

// coalescer lets through at most one notification per (user, thread) per window: the first at
// once, and of those that come while its window is open only the newest, when the window
// closes (which opens the next). Every device of the user gets the same pushes, so a device
// gets at most one push of a thread per window however many replies there are.
type coalescer struct {
	window time.Duration
	emit   func(job)
	folded func() // one notification was folded into a later one

	mu     sync.Mutex
	slots  map[slotKey]*slot // guarded by mu
	closed bool              // guarded by mu
}

type slotKey struct {
	user   cg.UserID
	thread cg.MessageID
}

// slot is an open window of one (user, thread).
type slot struct {
	pending *cg.Notification // the newest notification of the window not yet emitted
	timer   *time.Timer      // closes the window
}

func newCoalescer(window time.Duration, emit func(job), folded func()) *coalescer {
	return &coalescer{window: window, emit: emit, folded: folded, slots: make(map[slotKey]*slot)}
}

// offer emits n at once when its (user, thread) has no open window, and otherwise keeps it for
// the window's end in place of the one kept before. It never blocks.
func (c *coalescer) offer(user cg.UserID, n *cg.Notification) {
	if c.window <= 0 {
		c.emit(job{user: user, n: n})
		return
	}
	k := slotKey{user: user, thread: n.ThreadID}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	if sl, ok := c.slots[k]; ok {
		if sl.pending != nil {
			c.folded()
		}
		sl.pending = n
		c.mu.Unlock()
		return
	}
	if len(c.slots) >= maxSlots {
		c.mu.Unlock()
		c.emit(job{user: user, n: n})
		return
	}
	sl := &slot{}
	sl.timer = time.AfterFunc(c.window, func() { c.tick(k) })
	c.slots[k] = sl
	c.mu.Unlock()
	c.emit(job{user: user, n: n})
}

// tick closes the window of k: it emits the notification kept, which opens the next window,
// or forgets k when there is none.
func (c *coalescer) tick(k slotKey) {
	c.mu.Lock()
	sl := c.slots[k]
	if c.closed || sl == nil {
		c.mu.Unlock()
		return
	}
	if sl.pending == nil {
		delete(c.slots, k)
		c.mu.Unlock()
		return
	}
	n := sl.pending
	sl.pending = nil
	sl.timer.Reset(c.window)
	c.mu.Unlock()
	c.emit(job{user: k.user, n: n})
}

// close stops every window; what they kept is not sent.
func (c *coalescer) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for k, sl := range c.slots {
		sl.timer.Stop()
		delete(c.slots, k)
	}
}
