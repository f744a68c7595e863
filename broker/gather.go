package broker

import (
	"context"
	"sync"
	"time"
)

// roundTimeout bounds one round trip of gathered calls, as one call was bounded before they
// went together: an unresponsive Redis holds the caller sending the rounds up for a second a
// round.
const roundTimeout = time.Second

// gather sends the calls that arrive while a round trip is under way together, in the next
// one: when thousands of sockets open or close at once, one round trip each timed out by the
// thousand. A call that finds no round under way starts a goroutine that sends rounds until no
// call is left, so that no caller waits for more than the round it is in and the one before.
type gather[C any] struct {
	send func(ctx context.Context, calls []C) error // one round trip; sets each call's result

	mu       sync.Mutex
	pending  []C    // guarded by mu: calls for the next round
	next     *round // guarded by mu: the round pending goes in
	sending  *round // guarded by mu: the round under way, if any
	flushing bool   // guarded by mu: a goroutine is sending rounds
}

// round is one round trip; err is set before done closes.
type round struct {
	done chan struct{}
	err  error
}

// do adds c to the next round and waits until that round has been sent or ctx ends. A caller
// whose ctx ends stops waiting; its call still goes.
func (g *gather[C]) do(ctx context.Context, c C) error {
	g.mu.Lock()
	if g.next == nil {
		g.next = &round{done: make(chan struct{})}
	}
	g.pending = append(g.pending, c)
	r := g.next
	lead := !g.flushing
	g.flushing = true
	g.mu.Unlock()
	if lead {
		go g.flush()
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait returns once every call made before it has been sent, with the last round's error, or
// with ctx's error if it ends first. Rounds go one after another, so the last is enough.
func (g *gather[C]) wait(ctx context.Context) error {
	g.mu.Lock()
	r := g.sending
	if len(g.pending) > 0 {
		r = g.next
	}
	g.mu.Unlock()
	if r == nil {
		return nil
	}
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush sends rounds until no call is pending.
func (g *gather[C]) flush() {
	for {
		g.mu.Lock()
		batch, r := g.pending, g.next
		if len(batch) == 0 {
			g.flushing, g.sending = false, nil
			g.mu.Unlock()
			return
		}
		g.pending, g.next, g.sending = nil, &round{done: make(chan struct{})}, r
		g.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), roundTimeout)
		r.err = g.send(ctx, batch)
		cancel()
		close(r.done)
	}
}
