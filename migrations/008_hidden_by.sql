-- Common Grounds schema, version 8: who hid a hidden message.
--
-- Students are shown "hidden after reports" or "hidden by a moderator": the two mean different
-- things to the author and to the room. hidden_by is 'flags' when enough distinct students
-- flagged the message, 'moderator' when a moderator hid it, and null while it is not hidden. It
-- names a kind of actor, never a person.
--
-- Messages hidden before this version take the kind of the last hide in the moderation audit
-- (every hide, automatic or not, is audited there).

ALTER TABLE class_messages ADD COLUMN hidden_by text CHECK (hidden_by IN ('flags', 'moderator'));

UPDATE class_messages m
   SET hidden_by = CASE
       WHEN (SELECT a.action FROM moderation_audit a
              WHERE a.message_id = m.id AND a.action IN ('hide', 'auto_hide')
              ORDER BY a.created_at DESC LIMIT 1) = 'hide' THEN 'moderator'
       ELSE 'flags' END
 WHERE m.hidden;

ALTER TABLE class_messages ADD CONSTRAINT class_messages_hidden_by
    CHECK ((hidden_by IS NOT NULL) = hidden) NOT VALID;
ALTER TABLE class_messages VALIDATE CONSTRAINT class_messages_hidden_by;
