// Package broker carries room events between server instances: Memory within one process, and
// Redis across processes.
package broker

import (
	"context"
	"sync"

	cg "github.com/commongrounds/commongrounds"
)

// Memory is the in-process broker of a single instance: a publication reaches the handler
// directly, when its room is subscribed.
type Memory struct {
	mu      sync.RWMutex
	handler cg.BrokerHandler   // guarded by mu
	rooms   map[cg.ClassID]int // guarded by mu: Subscribe calls not yet undone
	users   map[cg.UserID]int  // guarded by mu: SubscribeUser calls not yet undone
}

var _ cg.Broker = (*Memory)(nil)

// NewMemory returns an in-process broker.
func NewMemory() *Memory {
	return &Memory{rooms: make(map[cg.ClassID]int), users: make(map[cg.UserID]int)}
}

// SetHandler sets the receiver of events.
func (m *Memory) SetHandler(h cg.BrokerHandler) {
	m.mu.Lock()
	m.handler = h
	m.mu.Unlock()
}

// Publish hands the event to the handler if the room is subscribed.
func (m *Memory) Publish(_ context.Context, room cg.ClassID, payload []byte) error {
	m.mu.RLock()
	ok := m.rooms[room] > 0
	h := m.handler
	m.mu.RUnlock()
	if ok && h != nil {
		h.HandleRoomEvent(room, payload)
	}
	return nil
}

// PublishControl hands the control event to the handler.
func (m *Memory) PublishControl(_ context.Context, payload []byte) error {
	m.mu.RLock()
	h := m.handler
	m.mu.RUnlock()
	if h != nil {
		h.HandleControl(payload)
	}
	return nil
}

// Subscribe starts delivering the room's events. Subscriptions are counted.
func (m *Memory) Subscribe(_ context.Context, room cg.ClassID) error {
	m.mu.Lock()
	m.rooms[room]++
	m.mu.Unlock()
	return nil
}

// Unsubscribe undoes one Subscribe; the last one stops delivering the room's events.
func (m *Memory) Unsubscribe(_ context.Context, room cg.ClassID) error {
	m.mu.Lock()
	if m.rooms[room]--; m.rooms[room] <= 0 {
		delete(m.rooms, room)
	}
	m.mu.Unlock()
	return nil
}
