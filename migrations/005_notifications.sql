-- Common Grounds schema, version 5: read markers, reply notifications and mutes.
--
-- * read_markers: per user and room, the position (a seq of the room's order, as rooms.last_seq
--   counts it) of the last thing the user read. It only moves forward (GREATEST on update) and
--   never past the room's last position (the server clamps it). Unread counts are computed from
--   it by an index range scan of class_messages (class_id, seq) after the marker, which stops at
--   the cap (persistence.MarkerStore), so no count reads a room's whole history.
--
-- * notifications: one row per reply and user told of it, written without waiting for the disk
--   (persistence.NotificationStore.NotifyReplies). The pseudonym and the excerpt are not
--   copied: they are read from the reply when the inbox is read, so a reply hidden, deleted or
--   erased afterwards shows none of its content there (the message row decides). Rows go after
--   30 days (the cleanup job), or with their user, class or reply.
--
-- * thread_participants: who has replied in each thread, so that the recipients of a reply are
--   found without reading the thread's earlier replies (a thread of n replies would cost each
--   reply n rows, n squared in all). The notifier adds each replier as it notifies their reply;
--   the rows of replies written before this version are filled in here. The root's author is
--   read from the root itself.
--
-- * room_mutes and thread_mutes: what a user does not want to be notified of.

CREATE TABLE read_markers (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    class_id   uuid NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
    seq        bigint NOT NULL CHECK (seq >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, class_id)
);

CREATE TABLE notifications (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- No foreign key: the class goes with the reply (class -> rooms -> class_messages), whose
    -- key takes its notifications.
    class_id   uuid NOT NULL,
    thread_id  uuid NOT NULL,
    message_id uuid NOT NULL REFERENCES class_messages (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz,
    -- A reply is notified to a user once, however often its notification job runs; the index
    -- also serves the cascade from a deleted reply.
    UNIQUE (message_id, user_id)
);
-- The inbox, newest first, in keyset pages (and the cascade from a deleted user).
CREATE INDEX notifications_inbox ON notifications (user_id, created_at DESC, id DESC);
-- The unread count.
CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL;
-- The 30-day cleanup: rows arrive in created_at order, so a block range index finds the old ones
-- at a fraction of a b-tree's cost to every insert.
CREATE INDEX notifications_created_at ON notifications USING brin (created_at);

CREATE TABLE thread_participants (
    thread_id uuid NOT NULL REFERENCES class_messages (id) ON DELETE CASCADE,
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (thread_id, user_id)
);
INSERT INTO thread_participants (thread_id, user_id)
SELECT DISTINCT parent_id, user_id FROM class_messages
 WHERE parent_id IS NOT NULL AND user_id IS NOT NULL;

CREATE TABLE room_mutes (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    class_id   uuid NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, class_id)
);

CREATE TABLE thread_mutes (
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    thread_id  uuid NOT NULL REFERENCES class_messages (id) ON DELETE CASCADE,
    class_id   uuid NOT NULL REFERENCES classes (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, thread_id)
);
CREATE INDEX thread_mutes_thread_id ON thread_mutes (thread_id);
