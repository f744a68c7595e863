package loadgen

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
)

// Change operations mixed into the publishes (Config.ChangeMix), in turn: its author edits a
// message, its author deletes one, or other members flag one until it is hidden. Each is an
// event of the room's order, which the sockets check for gaps and duplicates as they check new
// messages.
const (
	changeEdit = iota
	changeDelete
	changeHide
	changeKinds
)

var changeNames = [changeKinds]string{"edit", "delete", "hide"}

// ownMessage is a message a publisher published (acknowledged), which a change may pick.
type ownMessage struct {
	room, id string
}

// maxOwn bounds the messages a publisher keeps to choose changes from.
const maxOwn = 64

// changer makes the changes of a run over HTTP, at most changeWorkers at once.
type changer struct {
	r     *runner
	slots chan struct{}
	wg    sync.WaitGroup
	n     atomic.Int64 // changes started, which picks their kind in turn
	done  atomic.Int64 // changes made
	// byRoom counts the changes made per room (events the room gained besides messages).
	byRoom map[string]*atomic.Int64
	errors Reasons
}

const changeWorkers = 16

func newChanger(r *runner) *changer {
	c := &changer{r: r, slots: make(chan struct{}, changeWorkers), byRoom: make(map[string]*atomic.Int64)}
	for room := range r.roomAcks {
		c.byRoom[room] = new(atomic.Int64)
	}
	return c
}

// remember keeps an acknowledged message of s as one a change may pick.
func (s *socket) remember(room, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.own) >= maxOwn {
		s.own = s.own[1:]
	}
	s.own = append(s.own, ownMessage{room, id})
}

// pickOwn takes one of s's messages out of those a change may pick.
func (s *socket) pickOwn() (ownMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.own) == 0 {
		return ownMessage{}, false
	}
	i := rand.IntN(len(s.own))
	m := s.own[i]
	s.own = append(s.own[:i], s.own[i+1:]...)
	return m, true
}

// start makes one change on a message of the publisher s, in the background; false when there
// is no message to change or every worker is busy (the slot is then a publish after all).
func (c *changer) start(ctx context.Context, s *socket) bool {
	kind := int(c.n.Load() % changeKinds)
	// Taken while the change is under way, so that no other change picks it meanwhile (an edit
	// of a message being deleted would be refused); an edited message is put back.
	m, ok := s.pickOwn()
	if !ok {
		return false
	}
	select {
	case c.slots <- struct{}{}:
	default:
		s.remember(m.room, m.id)
		return false
	}
	n := c.n.Add(1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer func() { <-c.slots }()
		if err := c.change(ctx, kind, s, m, n); err != nil {
			c.errors.Add(changeNames[kind] + ": " + err.Error())
			return
		}
		c.done.Add(1)
		if k := c.byRoom[m.room]; k != nil {
			k.Add(1)
		}
		if kind == changeEdit {
			s.remember(m.room, m.id)
		}
	}()
	return true
}

// change makes one change of the kind to m, whose author is s.
func (c *changer) change(ctx context.Context, kind int, s *socket, m ownMessage, n int64) error {
	path := "/api/v1/messages/" + url.PathEscape(m.id)
	switch kind {
	case changeEdit:
		return c.do(ctx, http.MethodPatch, path, s.token, fmt.Sprintf(`{"content":"cgload edit %d"}`, n), http.StatusOK)
	case changeDelete:
		return c.do(ctx, http.MethodDelete, path, s.token, "", http.StatusNoContent)
	}
	// Hide: other members of the room flag it, as many as the server's FLAG_HIDE_THRESHOLD.
	flagged := 0
	for _, o := range c.r.publishers {
		if flagged == c.r.cfg.HideFlags {
			break
		}
		if o == s || o.byRoom[m.room] == nil {
			continue
		}
		if err := c.do(ctx, http.MethodPost, path+"/flag", o.token, `{"reason":"cgload"}`, http.StatusNoContent); err != nil {
			return err
		}
		flagged++
	}
	if flagged < c.r.cfg.HideFlags {
		return fmt.Errorf("%d members to flag, %d needed", flagged, c.r.cfg.HideFlags)
	}
	return nil
}

func (c *changer) do(ctx context.Context, method, path, token, body string, want int) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.r.apiBase+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.r.apiClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != want {
		return httpError(resp.StatusCode)
	}
	return nil
}

// wait waits for the changes under way.
func (c *changer) wait() { c.wg.Wait() }
