package hub

import (
	"hash/maphash"
	"sync"

	cg "github.com/commongrounds/commongrounds"
)

const numShards = 32

type shard struct {
	mu    sync.RWMutex
	rooms map[cg.ClassID]*room // guarded by mu
}

// roomTable holds the rooms active on this instance, sharded by id. A room is active while a
// session holds a reference to it (acquire, release).
type roomTable struct {
	d      *delivery // what every room shares
	seed   maphash.Seed
	shards [numShards]shard
}

func (t *roomTable) init(d *delivery) {
	t.d = d
	t.seed = maphash.MakeSeed()
	for i := range t.shards {
		t.shards[i].rooms = make(map[cg.ClassID]*room)
	}
}

func (t *roomTable) shard(id cg.ClassID) *shard {
	return &t.shards[maphash.String(t.seed, string(id))%numShards]
}

// acquire returns the room id with one more reference, creating it when missing. The caller
// must call ready on it before use and release it when done.
func (t *roomTable) acquire(id cg.ClassID) *room {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rooms[id]
	if !ok {
		r = newRoom(t.d, id)
		s.rooms[id] = r
	}
	r.refs++ // guarded by the shard lock
	return r
}

// release drops a reference; the last one removes the room and unsubscribes the broker.
func (t *roomTable) release(r *room) {
	s := t.shard(r.id)
	s.mu.Lock()
	r.refs--
	last := r.refs == 0
	if last {
		delete(s.rooms, r.id)
	}
	s.mu.Unlock()
	if last {
		r.close()
	}
}

// lookup returns the active room id, or nil.
func (t *roomTable) lookup(id cg.ClassID) *room {
	s := t.shard(id)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rooms[id]
}

// activeRooms returns every active room.
func (t *roomTable) activeRooms() []*room {
	var out []*room
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for _, r := range s.rooms {
			out = append(out, r)
		}
		s.mu.RUnlock()
	}
	return out
}
