-- Common Grounds schema, version 2: cheaper integrity for the hot table.
--
-- Every message used to run two foreign-key checks as it was inserted: class_id against classes
-- and user_id against users. Each is a query of its own per row that locks the referenced row
-- FOR KEY SHARE, and the class rows are the same hundred rows that every concurrent commit locks,
-- so the locks pile up into multixacts. Measured with BenchmarkBatchingStore100Rooms (100 rooms,
-- 128 publishers, batched commits, the batch statement of version 1): 15,000-16,000 messages/s
-- with both checks, 22,000-25,000 without either, 18,700-18,900 with class_id checked against
-- rooms instead. The guarantees stay:
--
-- * class_id now references rooms (class_id), which references classes. Every insert of a
--   message already takes its room row FOR UPDATE (that lock is what orders the seqs), so the
--   check finds a row this transaction holds and contends with nobody. Deleting a class still
--   takes its room and then its messages with it (classes -> rooms -> class_messages, CASCADE).
--
-- * user_id has no foreign key. A message is only ever written by the two statements in
--   persistence (one message, a batch), and both lock the author's users row FOR KEY SHARE once
--   per author while they check the enrollment, so an account deleted at the same moment either
--   is gone before the insert looks (the message is refused) or waits for the insert to commit.
--   The tombstone trigger (BEFORE DELETE, version 1) runs only once the deletion holds the row,
--   so after that commit, and finds the new message. persistence/integrity_test.go puts the two
--   against each other in both orders.
--
--   That argument needs the deletion to run at READ COMMITTED, where the trigger's UPDATE sees
--   what committed before the deletion took the row. At REPEATABLE READ or SERIALIZABLE it would
--   see its transaction's first snapshot and miss the new message, which would keep its content
--   with no author; so the trigger now refuses to delete a user at any other level.
--
-- * The author index (class_messages_user_id) goes. It served only the tombstone trigger, and
--   its insertion cost every commit: without it BenchmarkBatchingStore100Rooms committed 18,700-
--   22,700 messages/s against 15,800-18,800 with it (one committer, same machine, same hour).
--   The trigger now reaches the messages through the classes the user has a pseudonym in, and
--   in each through the unique key (class_id, user_id, client_msg_id) (EXPLAIN on 200,000
--   messages: a nested loop over those two indexes, 150 rows in 2.5 ms). That finds them all:
--   both statements that write a message read the author's pseudonym in the class in the same
--   statement, and a pseudonym is deleted only with its class (which takes its messages) or
--   with its user (by cascade, after this trigger has run).
--
-- Deploying: a rolling deploy is safe. Servers of the release before this one still insert
-- messages without locking the author, and without the foreign key nothing would lock it for
-- them: a deletion at that moment would not wait, and its trigger would miss the new message. So
-- the trigger class_messages_lock_author below does what the key did, for every insert of a row
-- whose id is not a UUIDv7. This release's two statements give every message a UUIDv7 id (for the
-- primary key's sake) and lock the author themselves, so they skip it; the previous release's
-- rows take the column default, gen_random_uuid() (version 4), and get the lock. The row decides,
-- not the connection, so nothing depends on how servers connect (a connection setting would not
-- survive a pooler such as PgBouncer, and set per role it would reach old servers too). The
-- WHEN costs nothing measurable (BenchmarkBatchingStore100Rooms, 1 and 2 committers: 21,700-22,400
-- and 20,800-21,800 messages/s with it, 19,700-23,200 and 15,500-21,500 without it, same day). A later release drops the insert trigger; the update trigger keeps
-- a changed author checked, as the key did (nothing changes an author but the tombstone, which
-- sets NULL). The new key on class_id is checked against every message while class_messages is
-- locked, so on a large table the migration pauses publishing for the length of that scan.

-- Rooms for any class that has messages but no room row (none are written that way; this keeps
-- the new key valid whatever the data).
INSERT INTO rooms (class_id, last_seq)
SELECT class_id, max(seq) FROM class_messages GROUP BY class_id
ON CONFLICT (class_id) DO NOTHING;

ALTER TABLE class_messages
    DROP CONSTRAINT class_messages_class_id_fkey,
    DROP CONSTRAINT class_messages_user_id_fkey,
    ADD CONSTRAINT class_messages_class_id_fkey
        FOREIGN KEY (class_id) REFERENCES rooms (class_id) ON DELETE CASCADE;

CREATE OR REPLACE FUNCTION tombstone_user_messages() RETURNS trigger AS $$
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'users can only be deleted at READ COMMITTED'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'At a higher level the deletion may not see a message committed while it waited, and would leave it with its content.';
    END IF;
    UPDATE class_messages
       SET content = NULL, anon_id = NULL, user_id = NULL, client_msg_id = NULL,
           deleted_at = now()
     WHERE class_id IN (SELECT class_id FROM class_pseudonyms WHERE user_id = OLD.id)
       AND user_id = OLD.id;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

DROP INDEX class_messages_user_id;

CREATE FUNCTION lock_message_author() RETURNS trigger AS $$
BEGIN
    PERFORM FROM users WHERE id = NEW.user_id FOR KEY SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the author of a message must exist'
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER class_messages_lock_author BEFORE INSERT ON class_messages
    FOR EACH ROW
    WHEN (NEW.user_id IS NOT NULL AND substr(NEW.id::text, 15, 1) <> '7')
    EXECUTE FUNCTION lock_message_author();
CREATE TRIGGER class_messages_check_author BEFORE UPDATE OF user_id ON class_messages
    FOR EACH ROW
    WHEN (NEW.user_id IS NOT NULL AND NEW.user_id IS DISTINCT FROM OLD.user_id)
    EXECUTE FUNCTION lock_message_author();
