package persistence

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"

	cg "github.com/commongrounds/commongrounds"
)

// batchInsertSQL stores a batch of messages in one statement. It locks the authors' rows FOR KEY
// SHARE, in id order (see CreateMessage for why; the order is the one VerifyPhone locks in, so
// the two cannot deadlock), and keeps only the messages whose author is enrolled and has a
// pseudonym, whose parent is a root of the same room, and whose client_msg_id is new; numbers
// them per room in arrival order; takes each room's seqs from its row in one step (rooms are
// locked in id order, so concurrent batches cannot deadlock); inserts them under the ids the
// caller chose; and raises the parents' reply counts. The messages it leaves out are retried one
// by one, which reports why (or returns the earlier message of a repeated client_msg_id).
//
// Every step is linear in the batch: no step joins two of the statement's own intermediate
// results, which PostgreSQL's generic plan (it cannot know the arrays' lengths) would join by
// comparing every row with every other. A message finds its room's new last_seq by the room's
// rank among the batch's rooms, and the caller finds its messages by id. Should a rank ever
// point at another room, the seq is NULL and the statement fails (seq is NOT NULL) rather than
// number a message into the wrong room.
const batchInsertSQL = `
WITH input AS (
	SELECT t.id::uuid AS id, t.class_id::uuid AS class_id, t.user_id::uuid AS user_id, t.content,
	       t.parent_id::uuid AS parent_id, t.client_msg_id, t.ord
	  FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY
	       AS t(id, class_id, user_id, content, parent_id, client_msg_id, ord)),
authors AS MATERIALIZED (
	SELECT id FROM users WHERE id IN (SELECT user_id FROM input) ORDER BY id FOR KEY SHARE),
valid AS (
	SELECT i.*, p.anon_id
	  FROM input i
	  JOIN authors u ON u.id = i.user_id
	  JOIN user_classes uc ON uc.user_id = i.user_id AND uc.class_id = i.class_id
	  JOIN class_pseudonyms p ON p.class_id = i.class_id AND p.user_id = i.user_id
	 WHERE (i.parent_id IS NULL OR EXISTS (
	            SELECT 1 FROM class_messages pm WHERE pm.id = i.parent_id AND pm.class_id = i.class_id AND pm.parent_id IS NULL))
	   AND (i.client_msg_id IS NULL OR NOT EXISTS (
	            SELECT 1 FROM class_messages e WHERE e.class_id = i.class_id AND e.user_id = i.user_id AND e.client_msg_id = i.client_msg_id))),
numbered AS (
	SELECT v.*, row_number() OVER (PARTITION BY v.class_id ORDER BY v.ord) AS rn,
	       count(*) OVER (PARTITION BY v.class_id) AS n,
	       dense_rank() OVER (ORDER BY v.class_id) AS room_rank
	  FROM valid v),
room AS (
	INSERT INTO rooms AS r (class_id, last_seq)
	SELECT class_id, max(n) FROM numbered GROUP BY class_id ORDER BY class_id
	ON CONFLICT (class_id) DO UPDATE SET last_seq = r.last_seq + EXCLUDED.last_seq
	RETURNING class_id, last_seq),
last AS MATERIALIZED (
	SELECT array_agg(class_id ORDER BY class_id) AS ids, array_agg(last_seq ORDER BY class_id) AS seqs FROM room),
msg AS (
	INSERT INTO class_messages (id, class_id, seq, user_id, anon_id, content, parent_id, client_msg_id)
	SELECT nb.id, nb.class_id, CASE WHEN last.ids[nb.room_rank] = nb.class_id THEN last.seqs[nb.room_rank] - nb.n + nb.rn END, nb.user_id, nb.anon_id, nb.content, nb.parent_id, nb.client_msg_id
	  FROM numbered nb, last
	RETURNING ` + messageColumns + `),
parent AS (
	UPDATE class_messages cm SET reply_count = cm.reply_count + x.k
	  FROM (SELECT parent_id, count(*) AS k FROM numbered WHERE parent_id IS NOT NULL GROUP BY parent_id) x
	 WHERE cm.id = x.parent_id)
SELECT * FROM msg`

// BatchResult is the outcome of one message of a batch.
type BatchResult struct {
	Msg     *cg.Message
	Created bool
	Err     error
}

// CreateMessages stores a batch of messages, in one statement where it can. Results are in the
// order of nms. Within a room, messages get seqs in the order of nms.
func (s *MessageStore) CreateMessages(ctx context.Context, nms []cg.NewMessage) []BatchResult {
	if len(nms) == 1 {
		out := make([]BatchResult, 1)
		out[0].Msg, out[0].Created, out[0].Err = s.CreateMessage(ctx, nms[0])
		return out
	}
	out, err := s.insertBatch(ctx, nms)
	if err != nil {
		var unknown outcomeUnknown
		if isUnavailable(err) || errors.As(err, &unknown) {
			// Whether the statement committed is not known, so nothing is tried again here: the
			// clients' retries find their messages by client_msg_id.
			werr := wrap("insert messages", err)
			for i := range out {
				out[i] = BatchResult{Err: werr}
			}
			return out
		}
		// A repeated client_msg_id within the batch, or a race with another batch: nothing of
		// the statement was stored; every message goes the single way.
		clear(out)
	}
	for i, nm := range nms {
		if out[i].Msg == nil {
			out[i].Msg, out[i].Created, out[i].Err = s.CreateMessage(ctx, nm)
		}
	}
	return out
}

// insertBatch runs batchInsertSQL for nms. The results of the messages it stored have their
// Msg; the others are zero. On an error nothing was stored, unless it is an outcomeUnknown.
func (s *MessageStore) insertBatch(ctx context.Context, nms []cg.NewMessage) ([]BatchResult, error) {
	n := len(nms)
	out := make([]BatchResult, n)
	ids, classes, users, contents, parents, cmids := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]*string, n), make([]*string, n)
	at := make(map[cg.MessageID]int, n) // where each id's message is in nms
	for i, nm := range nms {
		id := newMessageID()
		ids[i] = string(id)
		at[id] = i
		if !cg.ValidUUID(string(nm.Class)) || !cg.ValidUUID(string(nm.User)) || (nm.ParentID != nil && !cg.ValidUUID(string(*nm.ParentID))) {
			// Left to the single path, which reports the error.
			classes[i], users[i] = "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"
			continue
		}
		classes[i], users[i], contents[i] = string(nm.Class), string(nm.User), nm.Content
		if nm.ParentID != nil {
			p := string(*nm.ParentID)
			parents[i] = &p
		}
		if nm.ClientMsgID != "" {
			c := nm.ClientMsgID
			cmids[i] = &c
		}
	}
	rows, err := s.db.Pool.Query(ctx, batchInsertSQL, ids, classes, users, contents, parents, cmids)
	if err != nil {
		return out, err
	}
	defer rows.Close()
	for rows.Next() {
		var m cg.Message
		if err := rows.Scan(&m.ID, &m.Room, &m.Seq, &m.AnonID, &m.Content, &m.ParentID, &m.ReplyCount, &m.CreatedAt, &m.Hidden, &m.Deleted, &m.EditedAt, &m.HiddenBy); err != nil {
			return out, outcomeUnknown{err}
		}
		m.CreatedAt = m.CreatedAt.UTC()
		i, ok := at[m.ID]
		if !ok {
			return out, outcomeUnknown{fmt.Errorf("batch returned a message it was not given: %s", m.ID)}
		}
		out[i] = BatchResult{Msg: &m, Created: true}
	}
	return out, rows.Err()
}

// outcomeUnknown is an error in reading the batch's results: the statement runs to its end on
// the server whatever the client does with its rows, so it may have committed.
type outcomeUnknown struct{ err error }

func (e outcomeUnknown) Error() string { return e.err.Error() }
func (e outcomeUnknown) Unwrap() error { return e.err }

// newMessageID returns a time-ordered id: the primary key grows at its right edge instead of
// everywhere.
func newMessageID() cg.MessageID { return cg.MessageID(uuid.Must(uuid.NewV7()).String()) }

// BatchingStore is a MessageStore whose CreateMessage and RoomAccess join concurrent calls
// into batches: while a batch is under way, the calls that arrive wait and go together in the
// next one, as one statement. A lone call does not wait. Everything else is the wrapped store's.
type BatchingStore struct {
	*MessageStore
	creates  *batcher[cg.NewMessage, BatchResult]
	accesses *batcher[cg.AccessRequest, cg.AccessResult]
}

var _ cg.MessageStore = (*BatchingStore)(nil)

// NewBatchingStore starts committers committers, each taking up to max queued messages at a time,
// and readers room-access readers, each taking up to max queued lookups. Close stops them.
//
// Concurrent commits into the same rooms queue on the rooms' row locks, so more committers make
// smaller batches, not more throughput: BenchmarkBatchingStore100Rooms commits as much with one as
// with two. More than one keeps a batch that is stuck (waiting on a lock, or retried one message
// at a time) from holding up every room.
func NewBatchingStore(s *MessageStore, committers, readers, max int) *BatchingStore {
	return &BatchingStore{
		MessageStore: s,
		creates: newBatcher(committers, max, s.CreateMessages, func(err error) BatchResult {
			return BatchResult{Err: wrap("queue message", err)}
		}),
		accesses: newBatcher(readers, max, s.RoomAccesses, func(err error) cg.AccessResult {
			return cg.AccessResult{Err: wrap("queue room access", err)}
		}),
	}
}

var errClosed = &cg.Error{Code: cg.EUNAVAILABLE, Message: "The server is shutting down; try again.", RetryAfterMs: 1000}

// CreateMessage stores a message in the next batch.
func (b *BatchingStore) CreateMessage(ctx context.Context, nm cg.NewMessage) (*cg.Message, bool, error) {
	res, err := b.creates.do(ctx, nm)
	if err != nil {
		return nil, false, err
	}
	return res.Msg, res.Created, res.Err
}

// RoomAccess checks the room and the enrollment and returns the pseudonym, in the next batch.
func (b *BatchingStore) RoomAccess(ctx context.Context, user cg.UserID, class cg.ClassID) (cg.AnonID, error) {
	res, err := b.accesses.do(ctx, cg.AccessRequest{User: user, Class: class})
	if err != nil {
		return "", err
	}
	return res.Anon, res.Err
}

// RoomAccesses looks the pairs up in the next batch, all in the same one.
func (b *BatchingStore) RoomAccesses(ctx context.Context, reqs []cg.AccessRequest) []cg.AccessResult {
	if len(reqs) == 0 {
		return nil
	}
	out, err := b.accesses.doAll(ctx, reqs)
	if err != nil {
		out = make([]cg.AccessResult, len(reqs))
		for i := range out {
			out[i].Err = err
		}
	}
	return out
}

// Close stops the workers after the batches under way.
func (b *BatchingStore) Close() { closeTogether(b.creates.close, b.accesses.close) }

// eachByOrdinal runs a statement over arrays of inputs whose rows begin with the ordinality of
// the input they answer (1-based, WITH ORDINALITY), scans the rest of each row into dest and
// calls row with index[ordinality-1]: the caller's position of that input.
func (db *DB) eachByOrdinal(ctx context.Context, query string, args []any, index []int, dest []any, row func(i int)) error {
	rows, err := db.Pool.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var ord int64
	dest = append([]any{&ord}, dest...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		row(index[ord-1])
	}
	return rows.Err()
}

// batcher runs calls in batches on a few workers: a worker takes the first waiting call and
// whatever else is waiting, up to max inputs, and runs them together with run, which returns one
// result per input, in order. A call may bring several inputs; they stay in one batch.
type batcher[In, Out any] struct {
	calls chan *batchCall[In, Out]
	max   int
	run   func(context.Context, []In) []Out
	fail  func(error) Out // the result of a call whose caller gave up before its batch ran
	wg    sync.WaitGroup
	stop  chan struct{}
	once  sync.Once
}

type batchCall[In, Out any] struct {
	ctx  context.Context
	ins  []In
	outs []Out         // set by the worker before done closes
	done chan struct{} // closed when outs is set
}

func newBatcher[In, Out any](workers, max int, run func(context.Context, []In) []Out, fail func(error) Out) *batcher[In, Out] {
	b := &batcher[In, Out]{calls: make(chan *batchCall[In, Out]), max: max, run: run, fail: fail, stop: make(chan struct{})}
	for range workers {
		b.wg.Add(1)
		go b.work()
	}
	return b
}

// do runs in in the next batch. The error is for a call that never joined one.
func (b *batcher[In, Out]) do(ctx context.Context, in In) (Out, error) {
	outs, err := b.doAll(ctx, []In{in})
	if err != nil {
		var zero Out
		return zero, err
	}
	return outs[0], nil
}

// doAll runs ins in the next batch, all in the same one; the results are in the order of ins.
// The error is for a call that never joined a batch.
func (b *batcher[In, Out]) doAll(ctx context.Context, ins []In) ([]Out, error) {
	c := &batchCall[In, Out]{ctx: ctx, ins: ins, done: make(chan struct{})}
	select {
	case b.calls <- c:
	case <-b.stop:
		return nil, errClosed
	case <-ctx.Done():
		b.failCall(c, ctx.Err())
		return c.outs, nil
	}
	<-c.done // always answered: a taken call is run or failed
	return c.outs, nil
}

// failCall answers every input of c with err.
func (b *batcher[In, Out]) failCall(c *batchCall[In, Out], err error) {
	c.outs = make([]Out, len(c.ins))
	for i := range c.outs {
		c.outs[i] = b.fail(err)
	}
}

func (b *batcher[In, Out]) work() {
	defer b.wg.Done()
	for {
		var first *batchCall[In, Out]
		select {
		case first = <-b.calls:
		case <-b.stop:
			return
		}
		batch, n := []*batchCall[In, Out]{first}, len(first.ins)
	fill:
		for n < b.max {
			select {
			case c := <-b.calls:
				batch, n = append(batch, c), n+len(c.ins)
			default:
				break fill
			}
		}
		// Calls whose callers gave up are left out; the others share one deadline.
		ins := make([]In, 0, n)
		live := batch[:0]
		for _, c := range batch {
			if err := c.ctx.Err(); err != nil {
				b.failCall(c, err)
				close(c.done)
				continue
			}
			live = append(live, c)
			ins = append(ins, c.ins...)
		}
		if len(live) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		results := b.run(ctx, ins)
		cancel()
		for _, c := range live {
			c.outs, results = results[:len(c.ins):len(c.ins)], results[len(c.ins):]
			close(c.done)
		}
	}
}

// closeTogether closes batchers at once, so that shutdown waits for the longest batch under way,
// not for their sum.
func closeTogether(closes ...func()) {
	var wg sync.WaitGroup
	for _, c := range closes {
		wg.Go(c)
	}
	wg.Wait()
}

func (b *batcher[In, Out]) close() {
	b.once.Do(func() { close(b.stop) })
	b.wg.Wait()
}
