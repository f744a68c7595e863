-- Common Grounds schema, version 4: one ordered stream of room events, and authors who edit and
-- delete their own messages.
--
-- * rooms.last_seq now numbers every event of a room, not only its messages: a new message takes
--   the next position as before (its seq), and so does every later change to a message (an edit,
--   its author's deletion, a hide, a restore, the erasure of a deleted account's message). A
--   change is a row of room_events at its own position, written in the transaction that makes the
--   change, which holds the room row for update as a publish does: positions are contiguous and in
--   commit order, whatever kind of event holds them. Publishing writes no room_events row: the
--   message row is its own event. A client resumes from the highest position it saw and is sent
--   every event after it, changes to messages it saw long ago included.
--
-- * An author's deletion leaves a tombstone that keeps its pseudonym (the thread still reads) and
--   its author and client_msg_id (a second deletion is recognised as the author's, and a publish
--   retried with the same client_msg_id finds the tombstone instead of posting again). Only an
--   erased tombstone (a deleted account's, erasure asked) has no pseudonym; it still has no
--   author, content or client_msg_id. The constraints say so; they are added NOT VALID and then
--   validated, which scans the table without stopping writes.
--
-- * A deletion of an account that asks for erasure now also schedules the erasure of the
--   tombstones its author had deleted: they still show the pseudonym, which erasure removes.
--
-- * Deploying: not a rolling deploy. A server of the release before this one reads only messages
--   when it repairs a gap, and a room's messages are no longer contiguous once a message has
--   changed: such a server would wait for the change's position for good and stall the room.
--   Stop every server of the release before, migrate, then start this release's servers.
--
-- * message_versions keeps the earlier contents of edited messages, and the last content of a
--   flagged message its author deleted, for moderators only. A deletion of a message nobody
--   flagged drops its versions with its content.

ALTER TABLE class_messages
    ADD COLUMN edited_at timestamptz,
    DROP CONSTRAINT class_messages_check2,
    DROP CONSTRAINT class_messages_tombstone_no_author,
    ADD CONSTRAINT class_messages_tombstone_no_content CHECK (deleted_at IS NULL OR content IS NULL) NOT VALID,
    ADD CONSTRAINT class_messages_erased_no_author
        CHECK (deleted_at IS NULL OR anon_id IS NOT NULL OR (user_id IS NULL AND client_msg_id IS NULL)) NOT VALID;

ALTER TABLE class_messages VALIDATE CONSTRAINT class_messages_tombstone_no_content;
ALTER TABLE class_messages VALIDATE CONSTRAINT class_messages_erased_no_author;

-- Only a message without an author waits for its erasure, and only one that still has its
-- pseudonym (a live message, or its author's tombstone).
ALTER TABLE class_messages
    DROP CONSTRAINT class_messages_erase_detached,
    ADD CONSTRAINT class_messages_erase_detached
        CHECK (erase_at IS NULL OR (user_id IS NULL AND anon_id IS NOT NULL)) NOT VALID;
ALTER TABLE class_messages VALIDATE CONSTRAINT class_messages_erase_detached;

CREATE OR REPLACE FUNCTION tombstone_user_messages() RETURNS trigger AS $$
DECLARE
    spread interval := nullif(current_setting('commongrounds.erase_spread', true), '')::interval;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'users can only be deleted at READ COMMITTED'
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'At a higher level the deletion may not see a message committed while it waited, and would leave it linked to nobody unnoticed.';
    END IF;
    UPDATE class_messages
       SET user_id = NULL, client_msg_id = NULL,
           erase_at = CASE WHEN spread IS NOT NULL AND anon_id IS NOT NULL THEN now() + random() * spread END
     WHERE class_id IN (SELECT class_id FROM class_pseudonyms WHERE user_id = OLD.id)
       AND user_id = OLD.id;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

CREATE TABLE room_events (
    class_id   uuid NOT NULL REFERENCES rooms (class_id) ON DELETE CASCADE,
    seq        bigint NOT NULL CHECK (seq > 0),
    kind       text NOT NULL CHECK (kind IN ('edited', 'deleted', 'hidden', 'restored', 'erased')),
    message_id uuid NOT NULL REFERENCES class_messages (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (class_id, seq)
);
CREATE INDEX room_events_message_id ON room_events (message_id);

CREATE TABLE message_versions (
    message_id  uuid NOT NULL REFERENCES class_messages (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version > 0),
    content     text NOT NULL,
    -- When this content was written (the message's creation or an earlier edit) and when it was
    -- replaced (by an edit) or removed (by its author's deletion: reason 'deleted').
    written_at  timestamptz NOT NULL,
    replaced_at timestamptz NOT NULL DEFAULT now(),
    reason      text NOT NULL CHECK (reason IN ('edited', 'deleted')),
    PRIMARY KEY (message_id, version)
);
