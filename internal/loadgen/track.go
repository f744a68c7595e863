package loadgen

import (
	"sync/atomic"
	"time"
)

// roomTrack follows one room on one socket. The socket's reader goroutine owns every field
// but last, which the drain check reads concurrently.
type roomTrack struct {
	room string
	// known: a subscribed reply has given the baseline, so seqs after last are expected.
	known bool
	last  atomic.Int64 // the highest seq received in order
	// subscribed: the current connection's subscribe succeeded.
	subscribed bool
	// liveFrom is the room's last seq when the current subscription began; later seqs are
	// live and their latency counts.
	liveFrom int64
	// catchUp, while waiting is true, is the seq that must arrive before the room counts as
	// caught up after a reconnect.
	catchUp int64
	waiting bool
	// stormDone: the room caught up after the storm's reconnect and was counted.
	stormDone bool
}

// observe takes the next seq of the room and returns how many seqs were skipped before it and
// whether it was already received. The first seq after the baseline must be last+1.
func (t *roomTrack) observe(seq int64) (skipped int64, duplicate bool) {
	last := t.last.Load()
	switch {
	case seq <= last:
		return 0, true
	case seq > last+1:
		skipped = seq - last - 1
	}
	t.last.Store(seq)
	return skipped, false
}

// subscribed records a subscribed reply: the baseline on the first one, the catch-up target on
// later ones. It reports whether the room is caught up already.
func (t *roomTrack) onSubscribed(lastSeq int64) (caughtUp bool) {
	t.subscribed = true
	t.liveFrom = lastSeq
	if !t.known {
		t.known = true
		t.last.Store(lastSeq)
	}
	t.catchUp = lastSeq
	return t.last.Load() >= lastSeq
}

// since is the since_seq to resubscribe with, or -1 before the first subscription.
func (t *roomTrack) since() int64 {
	if !t.known {
		return -1
	}
	return t.last.Load()
}

// stopwatch records when a count of pending things reaches zero.
type stopwatch struct {
	pending atomic.Int64
	doneAt  atomic.Int64 // Unix ns; 0 while pending
}

func (s *stopwatch) start(n int64) {
	s.doneAt.Store(0)
	s.pending.Store(n)
	if n == 0 {
		s.doneAt.Store(time.Now().UnixNano())
	}
}

func (s *stopwatch) done() {
	if s.pending.Add(-1) == 0 {
		s.doneAt.Store(time.Now().UnixNano())
	}
}
