package persistence

import (
	"context"

	cg "github.com/commongrounds/commongrounds"
)

// InsertBatch runs the batch statement alone, without CreateMessages' retries one by one, so
// that a test sees whether the statement itself stored what it should.
func (s *MessageStore) InsertBatch(ctx context.Context, nms []cg.NewMessage) ([]BatchResult, error) {
	return s.insertBatch(ctx, nms)
}

// PhoneLockSQL is the statement that makes the verifications of one number take turns.
const PhoneLockSQL = phoneLockSQL
