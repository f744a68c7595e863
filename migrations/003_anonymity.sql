-- Common Grounds schema, version 3: deletion without a tell, and an audit that cannot be erased.
--
-- * Deleting an account no longer turns its messages into tombstones at that moment. All of a
--   user's messages flipping at once, as the user left friend lists, told a friend who compared
--   snapshots which pseudonyms had been the user's, and linked them across classes. Now the
--   messages keep their content and pseudonym and only lose their author (user_id and
--   client_msg_id become NULL): nothing another student sees changes. A deletion that asks for
--   its messages to be erased also gives each of them an erase_at, an independent random time
--   within the spread it asks for; the erasure job tombstones each one when its time comes
--   (persistence.CleanupStore.EraseDue). The trigger keeps running inside the deletion, after it
--   holds the users row, so the concurrency argument of version 2 still holds: a message
--   committed while the deletion waited is detached (and scheduled) with the others.
--
--   The deletion says whether to erase through the transaction-local setting
--   commongrounds.erase_spread (an interval; unset or empty means keep the messages). A setting
--   rather than a second statement, so that the choice is applied by the same UPDATE that the
--   row lock orders.
--
-- * An audit row keeps what it says even when the moderator's account is gone: it snapshots the
--   moderator's e-mail address and computing id at the time of the act (a trigger fills them
--   from users), its moderator_id no longer references users (ON DELETE SET NULL erased the
--   name), and rows are append-only: a trigger refuses UPDATE and DELETE. The audit also outlives
--   the message it is about (no foreign key to class_messages, whose class may be deleted).
--   TRUNCATE, which only the owner of the table can run, is refused as well.

ALTER TABLE class_messages
    ADD COLUMN erase_at timestamptz,
    DROP CONSTRAINT class_messages_check,
    -- A tombstone has no author; a live message may have lost its author (a deleted account).
    ADD CONSTRAINT class_messages_tombstone_no_author CHECK (deleted_at IS NULL OR user_id IS NULL),
    -- Only a message without an author waits for its erasure.
    ADD CONSTRAINT class_messages_erase_detached CHECK (erase_at IS NULL OR (user_id IS NULL AND deleted_at IS NULL));

CREATE INDEX class_messages_erase_at ON class_messages (erase_at) WHERE erase_at IS NOT NULL;

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
           erase_at = CASE WHEN spread IS NOT NULL AND deleted_at IS NULL THEN now() + random() * spread END
     WHERE class_id IN (SELECT class_id FROM class_pseudonyms WHERE user_id = OLD.id)
       AND user_id = OLD.id;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;

ALTER TABLE moderation_audit
    DROP CONSTRAINT moderation_audit_moderator_id_fkey,
    DROP CONSTRAINT moderation_audit_message_id_fkey,
    ADD COLUMN moderator_email text,
    ADD COLUMN moderator_computing_id text;

UPDATE moderation_audit a
   SET moderator_email = u.email, moderator_computing_id = u.computing_id
  FROM users u
 WHERE u.id = a.moderator_id;

CREATE FUNCTION snapshot_audit_moderator() RETURNS trigger AS $$
BEGIN
    IF NEW.moderator_id IS NOT NULL THEN
        SELECT email, computing_id INTO NEW.moderator_email, NEW.moderator_computing_id
          FROM users WHERE id = NEW.moderator_id;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'the moderator of an audit row must exist'
                USING ERRCODE = 'foreign_key_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER moderation_audit_snapshot BEFORE INSERT ON moderation_audit
    FOR EACH ROW EXECUTE FUNCTION snapshot_audit_moderator();

CREATE FUNCTION refuse_audit_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'moderation_audit is append-only'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER moderation_audit_append_only BEFORE UPDATE OR DELETE ON moderation_audit
    FOR EACH ROW EXECUTE FUNCTION refuse_audit_change();
CREATE TRIGGER moderation_audit_no_truncate BEFORE TRUNCATE ON moderation_audit
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_audit_change();
